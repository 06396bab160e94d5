import { CommanderError } from 'commander';
import { ApiError } from '../client/api-client.ts';
import { ConfigError } from '../client/config.ts';
import { TransferError } from '../client/transfer.ts';
import { VolsnapError } from '../core/shared/errors.ts';

/**
 * A failure of the CLI as the user sees it: the API's error shape (`error` is the code), whatever
 * failed, and the exit code: 2 for a command line or configuration to fix, 1 for everything else.
 */
export interface CliFailure {
  error: string;
  message: string;
  requestId?: string;
  details?: Record<string, unknown>;
  /** Only with `--verbose` or `VOLSNAP_DEBUG=1`, for an error the CLI did not expect. */
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
    const name = `volsnap${options.command ? ` ${options.command}` : ''}`;
    const message =
      error.code === 'commander.help'
        ? `\`${name}\` needs a command: ${(options.subcommands ?? []).join(', ')}`
        : oneLine(error.message.replace(/^error: /, ''));
    return { error: 'request.invalid', message: `${message} (see \`${name} --help\`)`, exitCode: 2 };
  }
  if (error instanceof ApiError) {
    return {
      error: error.code,
      message: oneLine(error.message),
      ...(error.requestId ? { requestId: error.requestId } : {}),
      ...(error.details ? { details: error.details } : {}),
      exitCode: 1,
    };
  }
  if (error instanceof VolsnapError) {
    return {
      error: error.code,
      message: oneLine(error.message),
      ...(error.details ? { details: error.details } : {}),
      exitCode: 1,
    };
  }
  if (error instanceof ConfigError)
    return { error: 'config.invalid', message: oneLine(error.message), exitCode: 2 };
  if (error instanceof TransferError) {
    return {
      error: 'transfer.failed',
      message: oneLine(error.message),
      ...(error.status !== undefined ? { details: { status: error.status } } : {}),
      exitCode: 1,
    };
  }
  // A file or device of the user's that cannot be read or written (ENOENT, EACCES, ENOSPC…).
  const system = error as NodeJS.ErrnoException | undefined;
  if (error instanceof Error && typeof system?.code === 'string' && typeof system.syscall === 'string') {
    return { error: 'io.failed', message: oneLine(error.message), exitCode: 1 };
  }
  return {
    error: 'internal',
    message: oneLine(error instanceof Error ? error.message : String(error)) || 'an unexpected error',
    ...(options.verbose && error instanceof Error && error.stack ? { stack: error.stack } : {}),
    exitCode: 1,
  };
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
