import { Command, Option } from 'commander';
import { ApiClient, ApiError } from '../client/api-client.ts';
import { ConfigError, type ConfigFlags, resolveConfig } from '../client/config.ts';
import { VERSION } from '../config/runtime.ts';
import { printRecord } from './output.ts';

interface GlobalOptions extends ConfigFlags {
  json?: boolean;
}

/** Builds the `volsnap` program. `io` is injectable so tests can run commands in-process. */
export function buildProgram(
  io: { out: (text: string) => void; err: (text: string) => void } = defaultIo(),
): Command {
  const program = new Command('volsnap')
    .description('Volume snapshots: incremental, sparse, verifiable, across regions and accounts.')
    .version(VERSION)
    .addOption(new Option('--region <region>', 'region to talk to').env('VOLSNAP_REGION'))
    .addOption(
      new Option('--endpoint <url>', 'API endpoint (default: from the config file)').env('VOLSNAP_ENDPOINT'),
    )
    .addOption(
      new Option('--account <name>', 'account from the config file to act as').env('VOLSNAP_ACCOUNT'),
    )
    .option('--config <path>', 'config file (default: .volsnap/config.json, then ~/.volsnap/config.json)')
    .option('--json', 'print JSON instead of tables')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  const client = () => {
    const options = program.opts<GlobalOptions>();
    const config = resolveConfig(options);
    return {
      api: new ApiClient({ endpoint: config.endpoint, apiKey: config.apiKey }),
      config,
      json: options.json ?? false,
    };
  };

  program
    .command('health')
    .description("show which region answers and the service's version")
    .action(async () => {
      const { api, json } = client();
      printRecord(io.out, await api.health(), json);
    });

  return program;
}

function defaultIo() {
  return {
    out: (text: string) => process.stdout.write(text),
    err: (text: string) => process.stderr.write(text),
  };
}

/** Runs the CLI; exits 1 with the API's code and message on failure (2 for a configuration problem). */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const json = program.opts<GlobalOptions>().json ?? false;
    if (error instanceof ApiError) {
      if (json)
        process.stderr.write(
          `${JSON.stringify({ error: error.code, message: error.message, requestId: error.requestId, details: error.details })}\n`,
        );
      else
        process.stderr.write(
          `error: ${error.code}: ${error.message}${error.requestId ? ` (request ${error.requestId})` : ''}\n`,
        );
      process.exitCode = 1;
    } else if (error instanceof ConfigError) {
      process.stderr.write(`error: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      throw error;
    }
  }
}
