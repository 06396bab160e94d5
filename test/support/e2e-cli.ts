import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from './processes.ts';

/**
 * The CLI as the e2e tests drive it: `run` answers the exit code and output; `json` runs with
 * `--json` as an account in a region and fails the test with the CLI's stderr.
 */
export function cliFor(configPath: string) {
  const run = (account: string, region: string, ...args: string[]) =>
    cli(['--config', configPath, '--account', account, '--region', region, ...args]);
  const json = async (account: string, region: string, ...args: string[]) => {
    const result = await run(account, region, '--json', ...args);
    if (result.code !== 0) throw new Error(`volsnap ${args.join(' ')} failed: ${result.stderr}`);
    return JSON.parse(result.stdout);
  };
  return { run, json };
}

/** Bytes of the segments a region's bucket holds for an account, as s3rver stores them on disk. */
export function storedSegmentBytes(dataDir: string, region: string, accountId: string): number {
  let total = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('._S3rver_object') && path.includes(`segments/${accountId}/`))
        total += statSync(path).size;
    }
  };
  walk(join(dataDir, region, 's3'));
  return total;
}
