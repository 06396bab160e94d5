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
      const health = await api.health();
      // The table shows the function's runtime as one field (`Node v22.…`); JSON keeps the object.
      const { runtime, ...fields } = health;
      printRecord(
        ctx.io.out,
        json ? health : { ...fields, ...(runtime ? { runtime: `Node ${runtime.node}` } : {}) },
        json,
      );
    });
}
