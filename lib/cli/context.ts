import type { ApiClient } from '../client/api-client.ts';
import type { ResolvedConfig } from '../client/config.ts';

/** Where commands print: stdout and stderr, made terminal-safe by the program. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** What a command acts with, from the global options. */
export interface Session {
  api: ApiClient;
  config: ResolvedConfig;
  /** `--json`: print JSON instead of tables. */
  json: boolean;
}

/**
 * What every command group is registered with. `client` reads the global options, so a command
 * calls it when it runs, not when it is registered.
 */
export interface CliContext {
  client: () => Session;
  io: Io;
}
