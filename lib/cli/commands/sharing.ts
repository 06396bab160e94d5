import type { Command } from 'commander';
import type { ApiClient, Snapshot } from '../../client/api-client.ts';
import type { CliContext } from '../context.ts';
import { accountArgument, addRecordCommand } from '../record-commands.ts';
import { snapshotRecord } from '../records.ts';

/** The sharing commands: each changes who may read a snapshot, and prints the snapshot. */
const SHARING: {
  name: string;
  description: string;
  withAccount: boolean;
  change: (api: ApiClient, snapshotId: string, account?: string) => Promise<Snapshot>;
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
    addRecordCommand(snapshot, ctx, {
      name,
      description,
      args: withAccount ? ['<snapshot-id>', accountArgument()] : ['<snapshot-id>'],
      call: change,
      view: snapshotRecord,
    });
  }
}
