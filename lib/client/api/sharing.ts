import { snapshotPath } from './snapshots.ts';
import type { Requester } from './transport.ts';
import type { Snapshot } from './types.ts';

/** Who may read a snapshot: named accounts, or every account. */
export function sharingRequests<Base extends Requester>(base: Base) {
  return class SharingRequests extends base {
    shareSnapshot(snapshotId: string, accountId: string): Promise<Snapshot> {
      return this.request('POST', snapshotPath(snapshotId, '/shares'), { accountId });
    }

    unshareSnapshot(snapshotId: string, accountId: string): Promise<Snapshot> {
      return this.request('DELETE', snapshotPath(snapshotId, `/shares/${encodeURIComponent(accountId)}`));
    }

    publishSnapshot(snapshotId: string): Promise<Snapshot> {
      return this.request('PUT', snapshotPath(snapshotId, '/public'));
    }

    unpublishSnapshot(snapshotId: string): Promise<Snapshot> {
      return this.request('DELETE', snapshotPath(snapshotId, '/public'));
    }
  };
}
