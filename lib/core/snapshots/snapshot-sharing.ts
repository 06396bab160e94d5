import type { Caller } from '../identity/identity.ts';
import { VolsnapError } from '../shared/errors.ts';
import { notFound, type SnapshotAccess } from './snapshot-access.ts';
import { type Grantee, MAX_SHARES, type Snapshot } from './snapshots.ts';

/**
 * Who else may read a snapshot: shares with named accounts, publishing, and the holds that work
 * reading it (a copy, an export) keeps on it.
 */
export class SnapshotSharing {
  readonly #a: SnapshotAccess;

  constructor(access: SnapshotAccess) {
    this.#a = access;
  }

  /**
   * Lets another account (by id or name) read a completed snapshot: list it under `--shared`,
   * restore it, make volumes from it. It stays the owner's: the grantee cannot change, share or
   * delete it. Idempotent.
   */
  async share(caller: Caller, snapshotId: string, accountRef: string): Promise<Snapshot> {
    const snapshot = await this.#a.owned(caller, snapshotId, 'snapshot:share', 'share');
    const grantee = await this.#a.options.accounts.resolveAccount(accountRef);
    if (grantee.accountId === caller.accountId) {
      throw new VolsnapError(
        'request.invalid',
        'A snapshot is always readable by its own account: share it with another.',
      );
    }
    if (
      !(snapshot.sharedWith ?? []).includes(grantee.accountId) &&
      (snapshot.sharedWith?.length ?? 0) >= MAX_SHARES
    ) {
      throw new VolsnapError(
        'request.invalid',
        `Snapshot ${snapshotId} is shared with ${MAX_SHARES} accounts already, the most there can be; publish it instead.`,
      );
    }
    return this.#grant(caller, snapshot, { accountId: grantee.accountId });
  }

  /** Takes a share back: the account's next request for the snapshot is a 404. Idempotent. */
  async unshare(caller: Caller, snapshotId: string, accountRef: string): Promise<Snapshot> {
    await this.#a.owned(caller, snapshotId, 'snapshot:share', 'share');
    const grantee = await this.#a.options.accounts.resolveAccount(accountRef);
    const updated = await this.#a.options.snapshots.unshare(snapshotId, { accountId: grantee.accountId });
    if (!updated) throw notFound(snapshotId);
    return updated;
  }

  /** Makes a completed snapshot readable by every account, unless its account blocks public sharing. */
  async publish(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.#a.owned(caller, snapshotId, 'snapshot:share', 'publish');
    const account = await this.#a.options.accounts.resolveAccount(caller.accountId);
    if (account.blockPublicSharing) {
      throw new VolsnapError(
        'snapshot.publicSharingBlocked',
        'This account blocks public sharing; an admin can lift it with `volsnap account settings --allow-public-sharing`.',
      );
    }
    return this.#grant(caller, snapshot, 'public');
  }

  /** Makes a public snapshot private again (shares with named accounts stay). Idempotent. */
  async unpublish(caller: Caller, snapshotId: string): Promise<Snapshot> {
    await this.#a.owned(caller, snapshotId, 'snapshot:share', 'unpublish');
    const updated = await this.#a.options.snapshots.unshare(snapshotId, 'public');
    if (!updated) throw notFound(snapshotId);
    return updated;
  }

  async #grant(caller: Caller, snapshot: Snapshot, grantee: Grantee): Promise<Snapshot> {
    if (snapshot.state !== 'completed') {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshot.snapshotId} is ${snapshot.state}; only completed snapshots can be shared.`,
        { details: { snapshotId: snapshot.snapshotId, state: snapshot.state } },
      );
    }
    const updated = await this.#a.options.snapshots.share(snapshot.snapshotId, grantee);
    if (!updated) return this.#a.owned(caller, snapshot.snapshotId, 'snapshot:share', 'share');
    return updated;
  }

  /**
   * Work reading a completed snapshot (a copy, an export) holds it until `until` or its release, so
   * retention leaves it alone meanwhile. Holding one that is not completed is a 409.
   */
  async hold(snapshotId: string, holder: string, until: string): Promise<void> {
    if (!(await this.#a.options.snapshots.hold(snapshotId, holder, until))) {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is no longer completed; it cannot be read.`,
        { details: { snapshotId } },
      );
    }
  }

  /** Releases a hold (idempotent). */
  release(snapshotId: string, holder: string): Promise<void> {
    return this.#a.options.snapshots.release(snapshotId, holder);
  }
}
