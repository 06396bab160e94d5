import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { printRecord } from '../output.ts';

/** `volsnap health`. */
export function addHealthCommand(program: Command, ctx: CliContext): void {
  program
    .command('health')
    .description("show which region answers and the service's version")
    .action(async () => {
      const { api, json } = ctx.client();
      printRecord(ctx.io.out, await api.health(), json);
    });
}
