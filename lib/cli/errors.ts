import { CommanderError } from 'commander';
import { ApiError } from '../client/api-client.ts';
import { ConfigError } from '../client/config.ts';
import { TransferError } from '../client/transfer.ts';
import { VolsnapError } from '../core/shared/errors.ts';

/**
 * The CLI's exit codes, one per kind of failure, so that scripts can tell what to do: fix the
 * command (usage), give up (not found), look at the state (conflict), run it again later
 * (transient), or investigate the data (data). Documented in README's CLI section.
 */
export const EXIT_CODES = {
  /** Anything else: a refusal of the service (403, quota), a bug (`internal`). */
  failure: 1,
  /** The command line, its configuration or the input it names is wrong: fix it. */
  usage: 2,
  /** What the command names does not exist (or is not visible to this account). */
  notFound: 3,
  /** The thing is in a state that refuses this (a pending snapshot, a name taken, a token reused). */
  conflict: 4,
  /** The service, the network or object storage failed or throttled for now: run it again later. */
  transient: 5,
  /** Bytes failed verification (a manifest, a block, a corrupt object): the data needs a look. */
  data: 6,
} as const;

/** Codes whose kind is data whatever their HTTP status. */
const DATA_CODES = new Set(['snapshot.manifestInvalid', 'data.corrupt', 'transfer.corrupt']);

/**
 * The exit code of a failure with the API's `code` and HTTP `status` (0: none, as for a service
 * that cannot be reached or took too long to answer).
 */
export function exitCodeFor(code: string, status: number): number {
  if (DATA_CODES.has(code) || status === 422) return EXIT_CODES.data;
  if (code.startsWith('client.') || code.startsWith('transfer.') || status === 429 || status >= 500)
    return EXIT_CODES.transient;
  if (status === 404 || code.endsWith('.notFound')) return EXIT_CODES.notFound;
  if (status === 409) return EXIT_CODES.conflict;
  if (status === 400 || status === 415 || code === 'request.invalid' || code === 'config.invalid')
    return EXIT_CODES.usage;
  return EXIT_CODES.failure;
}

/**
 * A failure of the CLI as the user sees it: the API's error shape (`error` is the code), whatever
 * failed, and the exit code by kind ({@link EXIT_CODES}).
 */
export interface CliFailure {
  error: string;
  message: string;
  requestId?: string;
  details?: Record<string, unknown>;
  /** Only with `--debug` or `VOLSNAP_DEBUG=1`: the stack of whatever failed. */
  stack?: string;
  exitCode: number;
}

/** Commander's own exits that are not failures (help or the version was asked for). */
const QUIET = new Set(['commander.helpDisplayed', 'commander.version']);

/**
 * What to print for `error`, or undefined when it is no failure (help was asked for). `command` is
 * the command that failed (`volume create`), for a usage error to point at its help, and
 * `subcommands` its commands (a group given none: `volsnap volume`).
 */
export function describeFailure(
  error: unknown,
  options: { command?: string; subcommands?: string[]; verbose?: boolean } = {},
): CliFailure | undefined {
  if (error instanceof CommanderError) {
    if (QUIET.has(error.code) || error.exitCode === 0) return undefined;
    // A command's own argument check (InvalidArgumentError) is a usage error like Commander's.
    const name = `volsnap${options.command ? ` ${options.command}` : ''}`;
    const message =
      error.code === 'commander.help'
        ? `\`${name}\` needs a command: ${(options.subcommands ?? []).join(', ')}`
        : oneLine(error.message.replace(/^error: /, ''));
    return {
      error: 'request.invalid',
      message: `${message} (see \`${name} --help\`)`,
      exitCode: EXIT_CODES.usage,
    };
  }
  if (error instanceof ApiError) {
    return {
      error: error.code,
      message: oneLine(error.message),
      ...(error.requestId ? { requestId: error.requestId } : {}),
      ...(error.details ? { details: error.details } : {}),
      ...stackOf(error, options.verbose),
      exitCode: exitCodeFor(error.code, error.status),
    };
  }
  if (error instanceof VolsnapError) {
    return {
      error: error.code,
      message: oneLine(error.message),
      ...(error.details ? { details: error.details } : {}),
      ...stackOf(error, options.verbose),
      exitCode: exitCodeFor(error.code, error.status),
    };
  }
  if (error instanceof ConfigError)
    return { error: 'config.invalid', message: oneLine(error.message), exitCode: EXIT_CODES.usage };
  if (error instanceof TransferError) return describeTransfer(error, options.verbose);
  return describeUnexpected(error, options.verbose);
}

/**
 * Object storage that failed mid-transfer: transient (`transfer.failed`, `transfer.stalled`) unless
 * it refused the request for good (a 4xx: an expired or foreign URL) or sent wrong bytes (data).
 */
function describeTransfer(error: TransferError, verbose?: boolean): CliFailure {
  const status = error.status;
  const refused = status !== undefined && status >= 400 && status < 500 && status !== 429;
  return {
    error: error.code,
    message: oneLine(error.message),
    ...(status !== undefined ? { details: { status } } : {}),
    ...stackOf(error, verbose),
    exitCode: refused ? EXIT_CODES.failure : exitCodeFor(error.code, 0),
  };
}

/** Node's own errors (a file, a socket) and anything else the CLI did not expect. */
function describeUnexpected(error: unknown, verbose?: boolean): CliFailure {
  const system = error as NodeJS.ErrnoException | undefined;
  const code = error instanceof Error && typeof system?.code === 'string' ? system.code : undefined;
  // A file or device of the user's that cannot be read or written (ENOENT, EACCES, ENOSPC…).
  if (code && typeof system?.syscall === 'string' && !NETWORK_CODES.has(code)) {
    const kind = code === 'ENOENT' ? EXIT_CODES.notFound : EXIT_CODES.failure;
    return {
      error: 'io.failed',
      message: oneLine((error as Error).message),
      ...stackOf(error, verbose),
      exitCode: kind,
    };
  }
  // A connection that failed outside the API client and transfers (a reset, a refused connect).
  if (code && NETWORK_CODES.has(code)) {
    return {
      error: 'client.unreachable',
      message: oneLine((error as Error).message),
      ...stackOf(error, verbose),
      exitCode: EXIT_CODES.transient,
    };
  }
  return {
    error: 'internal',
    message: oneLine(error instanceof Error ? error.message : String(error)) || 'an unexpected error',
    ...stackOf(error, verbose),
    exitCode: EXIT_CODES.failure,
  };
}

/** Node's codes for a connection that failed: the network, not the user's files. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function stackOf(error: unknown, verbose?: boolean): { stack?: string } {
  return verbose && error instanceof Error && error.stack ? { stack: error.stack } : {};
}

/**
 * The failure as printed on stderr: one `error: <code>: <message>` line (the stack on the lines
 * after it, when asked for), or one JSON object with `--json`.
 */
export function formatFailure(failure: CliFailure, json: boolean): string {
  const { exitCode: _exitCode, ...body } = failure;
  if (json) return `${JSON.stringify(body)}\n`;
  const request = failure.requestId ? ` (request ${failure.requestId})` : '';
  return `error: ${failure.error}: ${failure.message}${request}\n${failure.stack ? `${failure.stack}\n` : ''}`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
