import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import * as z from '../core/shared/schema.ts';

/** The CLI's config file: the local cloud writes one to `.volsnap/config.json`. */
export const CliConfigFileSchema = z.object({
  defaultRegion: z.string(),
  regions: z.record(z.string(), z.object({ endpoint: z.url() })),
  defaultAccount: z.optional(z.string()),
  accounts: z._default(z.record(z.string(), z.object({ accountId: z.string(), apiKey: z.string() })), {}),
});
export type CliConfigFile = z.infer<typeof CliConfigFileSchema>;

/** What a CLI command talks to, once flags, environment and config file are merged. */
export interface ResolvedConfig {
  /** Undefined when only an endpoint was given (`volsnap health --endpoint URL`): it is that endpoint's. */
  region: string | undefined;
  endpoint: string;
  apiKey: string | undefined;
  account: string | undefined;
  /** Where the config came from, for error messages. */
  source: string;
}

export interface ConfigFlags {
  region?: string;
  endpoint?: string;
  account?: string;
  config?: string;
}

/**
 * Finds the config file: `--config`, else `$VOLSNAP_CONFIG`, else `.volsnap/config.json` in this
 * directory or the nearest parent, else `~/.volsnap/config.json`.
 */
export function findConfigFile(flags: ConfigFlags, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  if (flags.config) return resolve(cwd, flags.config);
  if (env.VOLSNAP_CONFIG) return resolve(cwd, env.VOLSNAP_CONFIG);
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const candidate = join(dir, '.volsnap', 'config.json');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  const home = join(homedir(), '.volsnap', 'config.json');
  return existsSync(home) ? home : undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Resolves region, endpoint and key. Precedence: flags, then environment (`VOLSNAP_REGION`,
 * `VOLSNAP_ENDPOINT`, `VOLSNAP_API_KEY`, `VOLSNAP_ACCOUNT`), then the config file.
 */
export function resolveConfig(
  flags: ConfigFlags,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): ResolvedConfig {
  const path = findConfigFile(flags, env, cwd);
  let file: CliConfigFile | undefined;
  if (path) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (cause) {
      throw new ConfigError(`Cannot read the config file ${path}: ${(cause as Error).message}`);
    }
    const parsed = CliConfigFileSchema.safeParse(raw);
    if (!parsed.success)
      throw new ConfigError(`The config file ${path} is invalid: ${z.describeIssues(parsed.error)}`);
    file = parsed.data;
  }
  const region = flags.region ?? env.VOLSNAP_REGION ?? file?.defaultRegion;
  const given = flags.endpoint ?? env.VOLSNAP_ENDPOINT;
  // An endpoint given on its own is enough: it is one region's API.
  if (!region && !given) {
    throw new ConfigError(
      'No region: pass --region (or --endpoint), set VOLSNAP_REGION, or start the local cloud (npm start) to write a config file.',
    );
  }
  const endpoint = given ?? (region ? file?.regions[region]?.endpoint : undefined);
  if (!endpoint) {
    const known = file ? Object.keys(file.regions).join(', ') : 'none (no config file found)';
    throw new ConfigError(
      `No endpoint for region '${region}': pass --endpoint or set VOLSNAP_ENDPOINT. Regions in the config: ${known}.`,
    );
  }
  const account = flags.account ?? env.VOLSNAP_ACCOUNT ?? file?.defaultAccount;
  if (flags.account && file && !file.accounts[flags.account]) {
    throw new ConfigError(
      `No account '${flags.account}' in ${path}. Accounts there: ${Object.keys(file.accounts).join(', ') || 'none'}.`,
    );
  }
  const apiKey = env.VOLSNAP_API_KEY ?? (account ? file?.accounts[account]?.apiKey : undefined);
  return { region, endpoint, apiKey, account, source: path ?? 'flags and environment' };
}
