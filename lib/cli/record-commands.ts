import { Argument, type Command } from 'commander';
import type { ApiClient } from '../client/api-client.ts';
import type { CliContext, Io } from './context.ts';
import { deletedRecord, printRecord } from './output.ts';

/** A positional argument: its name (`<snapshot-id>`), or an Argument with a description or choices. */
type Positional = string | Argument;

/**
 * The commands that take only arguments, make one call and print what it answered: `show`,
 * `share`, `mark`, `detach`… `view` gives the fields printed without `--json` (which prints the
 * API's record); `print` prints the answer itself.
 */
export function addRecordCommand<T extends object>(
  parent: Command,
  ctx: CliContext,
  spec: {
    name: string;
    description: string;
    args: Positional[];
    call: (api: ApiClient, ...args: string[]) => Promise<T>;
  } & ({ view: (answer: T) => object } | { print: (io: Io, json: boolean, answer: T) => void }),
): void {
  const command = withArguments(parent.command(spec.name).description(spec.description), spec.args);
  command.action(async (...given: unknown[]) => {
    const { api, json } = ctx.client();
    const answer = await spec.call(api, ...(given.slice(0, spec.args.length) as string[]));
    if ('view' in spec) printRecord(ctx.io.out, json ? answer : spec.view(answer), json);
    else spec.print(ctx.io, json, answer);
  });
}

/**
 * `… delete <id>` of a thing of which nothing remains: `{<idField>: id, deleted: true}` on one line
 * with `--json` (as the API's DELETE answers), else `done(id)`.
 */
export function addDeleteCommand(
  parent: Command,
  ctx: CliContext,
  spec: {
    description: string;
    arg: string;
    idField: string;
    remove: (api: ApiClient, id: string) => Promise<void>;
    done: (id: string) => string;
  },
): void {
  withArguments(parent.command('delete').description(spec.description), [spec.arg]).action(
    async (id: string) => {
      const { api, json } = ctx.client();
      await spec.remove(api, id);
      ctx.io.out(json ? `${JSON.stringify(deletedRecord(spec.idField, id))}\n` : spec.done(id));
    },
  );
}

function withArguments(command: Command, args: Positional[]): Command {
  for (const arg of args) command.addArgument(typeof arg === 'string' ? new Argument(arg) : arg);
  return command;
}

/** `<account>`, of the share commands. */
export function accountArgument(): Argument {
  return new Argument('<account>', "the other account's id or name");
}
