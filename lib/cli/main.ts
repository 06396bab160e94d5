import { Command, CommanderError, Option } from 'commander';
import { ApiClient } from '../client/api-client.ts';
import { type ConfigFlags, resolveConfig } from '../client/config.ts';
import { watchTransfers } from '../client/transfer.ts';
import { VERSION } from '../config/runtime.ts';
import { terminalSafe } from '../core/shared/text.ts';
import { option, positiveInteger, wholeNumber } from './args.ts';
import { addAccountCommands } from './commands/account.ts';
import { addAdminCommands } from './commands/admin.ts';
import { addCheckCommand } from './commands/check.ts';
import { addExportCommands } from './commands/exports.ts';
import { addHealthCommand } from './commands/health.ts';
import { addImageCommands } from './commands/images.ts';
import { addInstanceCommands } from './commands/instances.ts';
import { addMaintenanceCommands } from './commands/maintenance.ts';
import { addPolicyCommands } from './commands/policies.ts';
import { addSnapshotCommands } from './commands/snapshots.ts';
import { addVolumeCommands } from './commands/volumes.ts';
import type { CliContext, Io, Session } from './context.ts';
import { describeFailure, formatFailure } from './errors.ts';
import { noteRetry, noteStall } from './progress.ts';

interface GlobalOptions extends ConfigFlags {
  json?: boolean;
  debug?: boolean;
  verbose?: boolean;
  stallTimeout: number;
  retryFor: number;
}

/** Builds the `volsnap` program. `io` is injectable so tests can run commands in-process. */
export function buildProgram(rawIo: Io = defaultIo()): Command {
  // What the CLI prints can hold other accounts' text (public snapshots, shared images): no control
  // character or bidi override reaches the terminal raw, in tables, `show` or JSON alike.
  const io = {
    out: (text: string) => rawIo.out(terminalSafe(text)),
    err: (text: string) => rawIo.err(terminalSafe(text)),
  };
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
    .option('--json', 'print JSON instead of tables (errors too)')
    .option('--debug', 'print the stack of a failure after its error line (or VOLSNAP_DEBUG=1)')
    .addOption(new Option('--verbose', 'the same as --debug').hideHelp())
    .addOption(
      new Option(
        '--stall-timeout <seconds>',
        'give a transfer up once object storage moved none of its bytes for this long',
      )
        .argParser(option(positiveInteger))
        .default(60),
    )
    .addOption(
      new Option(
        '--retry-for <seconds>',
        'send a request that is safe to repeat again for this long while the service fails for now (5xx, resets, throttling)',
      )
        .argParser(option(wholeNumber))
        .default(120),
    )
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    // Usage errors are thrown (to main), not printed and exited on: every failure prints one way.
    .exitOverride();

  const client = (): Session => {
    const options = program.opts<GlobalOptions>();
    const config = resolveConfig(options);
    watchTransfers({ stallTimeoutMs: options.stallTimeout * 1000, onStall: noteStall });
    return {
      api: new ApiClient({
        endpoint: config.endpoint,
        apiKey: config.apiKey,
        retryForMs: options.retryFor * 1000,
        // With --json, stderr carries one JSON error at most.
        ...(options.json ? {} : { onRetry: noteRetry }),
      }),
      config,
      json: options.json ?? false,
    };
  };
  const ctx: CliContext = { client, io };

  // The order here is the order `--help` lists the commands in.
  addHealthCommand(program, ctx);
  addVolumeCommands(program, ctx);
  const snapshot = addSnapshotCommands(program, ctx);
  addAccountCommands(program, ctx);
  const admin = addAdminCommands(program, ctx);
  addExportCommands(program, snapshot, ctx);
  addPolicyCommands(program, ctx);
  addMaintenanceCommands(program, admin, ctx);
  addCheckCommand(admin, ctx);
  addInstanceCommands(program, ctx);
  addImageCommands(program, ctx);
  return program;
}

function defaultIo() {
  return {
    out: (text: string) => process.stdout.write(text),
    err: (text: string) => process.stderr.write(text),
  };
}

/**
 * Ends the process once what it wrote is flushed. fetch keeps its kept-alive connection's timers
 * running for about half a second after the last request: a CLI that waited for them would spend
 * more time exiting than most commands take.
 */
export function exitWhenFlushed(): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit()));
}

/**
 * Runs the CLI. Every failure is one `error: <code>: <message>` line on stderr (a JSON object with
 * `--json`), never a stack trace unless `--debug` or `VOLSNAP_DEBUG=1` asks for it; the exit code
 * says its kind (EXIT_CODES in errors.ts: usage 2, not found 3, conflict 4, transient 5, data 6).
 */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  // The command that failed, for a usage error to point at its help.
  let failing: Command | undefined;
  const track = (command: Command) => {
    // Commander writes errors, and the help of a group given no command, here: main prints them.
    command.configureOutput({ outputError: () => (failing = command), writeErr: () => undefined });
    const help = command.help.bind(command);
    command.help = ((context?: { error: boolean }) => {
      if (context?.error) failing = command;
      return help(context);
    }) as Command['help'];
    for (const sub of command.commands) track(sub);
  };
  track(program);
  program.hook('preAction', (_program, action) => {
    failing = action;
  });
  const report = (error: unknown) => {
    const options = program.opts<GlobalOptions>();
    const json = options.json ?? argv.slice(2).includes('--json');
    const failure = describeFailure(error, {
      command: failing && failing !== program ? commandPath(failing) : undefined,
      subcommands: failing?.commands.map((c) => c.name()).filter((name) => name !== 'help'),
      verbose: options.debug === true || options.verbose === true || process.env.VOLSNAP_DEBUG === '1',
    });
    if (error instanceof CommanderError) process.exitCode = failure?.exitCode ?? error.exitCode;
    if (!failure) return;
    process.stderr.write(terminalSafe(formatFailure(failure, json)));
    process.exitCode = failure.exitCode;
  };
  // Work that outlives the command's promise (a stream's error) fails the same way.
  const late = (error: unknown) => {
    report(error);
    exitWhenFlushed();
  };
  process.on('uncaughtException', late);
  process.on('unhandledRejection', late);
  try {
    await program.parseAsync(argv);
  } catch (error) {
    report(error);
  }
}

/** `volume create` for that command. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
