import type { Command } from 'commander';
import type { Snapshot } from '../../client/api-client.ts';
import type { CliContext, Session } from '../context.ts';
import { printAnswer } from '../output.ts';
import { snapshotRecord } from '../records.ts';

const ACCOUNT: [string, string] = ['<account>', "the other account's id or name"];

/** The sharing commands: each changes who may read a snapshot and prints the snapshot. */
const SHARING: {
  name: string;
  description: string;
  withAccount: boolean;
  change: (api: Session['api'], snapshotId: string, account?: string) => Promise<Snapshot>;
}[] = [
  {
    name: 'share',
    description: 'let another account read a completed snapshot: list, restore, make volumes from it',
    withAccount: true,
    change: (api, snapshotId, account = '') => api.shareSnapshot(snapshotId, account),
  },
  {
    name: 'unshare',
    description: 'take a share back: the account can no longer read the snapshot, from its next request on',
    withAccount: true,
    change: (api, snapshotId, account = '') => api.unshareSnapshot(snapshotId, account),
  },
  {
    name: 'publish',
    description: 'make a completed snapshot readable by every account',
    withAccount: false,
    change: (api, snapshotId) => api.publishSnapshot(snapshotId),
  },
  {
    name: 'unpublish',
    description: 'make a public snapshot private again (its shares with named accounts stay)',
    withAccount: false,
    change: (api, snapshotId) => api.unpublishSnapshot(snapshotId),
  },
];

/** `volsnap snapshot share|unshare|publish|unpublish`. */
export function addSharingCommands(snapshot: Command, ctx: CliContext): void {
  for (const { name, description, withAccount, change } of SHARING) {
    const command = snapshot.command(name).description(description).argument('<snapshot-id>');
    if (withAccount) command.argument(...ACCOUNT);
    // Commander passes the account, when the command takes one, then the options.
    command.action(async (snapshotId: string, account: unknown) => {
      const { api, json } = ctx.client();
      const changed = await change(api, snapshotId, withAccount ? (account as string) : undefined);
      printAnswer(ctx.io.out, json, changed, snapshotRecord);
    });
  }
}
