import { type Account, recycleBinDaysOf } from '../identity/accounts.ts';
import type { Caller } from '../identity/identity.ts';
import { ObjectLayout } from '../ports/objects.ts';
import { isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import type { Page } from '../shared/pagination.ts';
import { isReservedTag, type Tags, validateTags, withoutReserved } from '../shared/tags.ts';
import { requirePrintable } from '../shared/text.ts';
import { notFound, type SnapshotAccess, viewFor } from './snapshot-access.ts';
import { retireSession } from './snapshot-verify.ts';
import { assertTransition, type Snapshot, type SnapshotFilter, type SnapshotScope } from './snapshots.ts';

const DAY_MS = 24 * 3600 * 1000;

/** What deleting a snapshot did: into the recycle bin (`recycled`) or gone; who lost access to it. */
export interface SnapshotDeletion {
  recycled?: Snapshot;
  /** Set when other accounts could read it: they cannot from now on (undelete gives their access back). */
  accessLost?: { accountIds: string[]; public: boolean; message: string };
}

/** Reading, listing and changing snapshot records, and deleting them (through the recycle bin). */
export class SnapshotRecords {
  readonly #a: SnapshotAccess;

  constructor(access: SnapshotAccess) {
    this.#a = access;
  }

  /**
   * A snapshot the caller may read: its own, one shared with its account, or a public one. Any other
   * answers `snapshot.notFound`, exactly as a missing one does. Whom it is shared with is shown to its
   * owner only.
   */
  async get(caller: Caller, snapshotId: string): Promise<Snapshot> {
    return viewFor(caller, await this.#a.visible(caller, snapshotId));
  }

  /** The caller's own snapshots, those shared with its account, or public ones (of any account). */
  async list(
    caller: Caller,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
    scope: SnapshotScope = 'own',
  ): Promise<Page<Snapshot>> {
    // Filtering by the service's own tags (`volsnap:policy=…`) is fine; setting them is not.
    if (filter.tags) validateTags(withoutReserved(filter.tags));
    if (scope === 'own') {
      // The recycle bin is listed on its own (`state: recycled`), as EC2 lists it apart.
      const own = await this.#a.options.snapshots.list(caller.accountId, filter, page);
      return filter.state ? own : { ...own, items: own.items.filter((s) => s.state !== 'recycled') };
    }
    const listed = await this.#a.options.snapshots.listShared(
      scope === 'public' ? 'public' : { accountId: caller.accountId },
      filter,
      page,
    );
    // The same rule as reading one: a public snapshot of an account that blocks public sharing is not.
    const owners = new Map<string, Promise<Account | undefined>>();
    const readable = await Promise.all(listed.items.map((s) => this.#a.mayRead(caller, s, owners)));
    const items = listed.items.filter((_, i) => readable[i]).map((s) => viewFor(caller, s));
    return { ...listed, items };
  }

  async update(
    caller: Caller,
    snapshotId: string,
    changes: { name?: string; description?: string; tags?: Tags },
  ): Promise<Snapshot> {
    const current = await this.#a.owned(caller, snapshotId, 'snapshot:update', 'change');
    if (changes.tags) {
      validateTags(changes.tags);
      // The service's own tags (a policy's mark) stay whatever the user sets.
      const reserved = Object.entries(current.tags).filter(([key]) => isReservedTag(key));
      changes = { ...changes, tags: { ...changes.tags, ...Object.fromEntries(reserved) } };
    }
    if (changes.name !== undefined) requirePrintable('The snapshot name', changes.name);
    if (changes.description !== undefined) requirePrintable('The snapshot description', changes.description);
    if ((changes.name?.length ?? 0) > 255 || (changes.description?.length ?? 0) > 1024) {
      throw new VolsnapError(
        'request.invalid',
        'A snapshot name is at most 255 characters and a description at most 1024.',
      );
    }
    const updated = await this.#a.options.snapshots.updateMetadata(snapshotId, changes);
    if (!updated) throw notFound(snapshotId);
    return updated;
  }

  /**
   * Deletes a snapshot. A completed one goes to the recycle bin for the account's retention (returned,
   * `recycled`, with when it will be purged): unreadable by anyone, recoverable whole with
   * {@link undelete}. Otherwise (retention 0, or not completed) its record and manifest go at once
   * and undefined is returned. Its segments stay while other snapshots use them (deleting an older
   * snapshot never harms a newer one); garbage collection reclaims the rest.
   */
  async delete(caller: Caller, snapshotId: string): Promise<Snapshot | undefined> {
    return (await this.deleteReporting(caller, snapshotId)).recycled;
  }

  /** {@link delete}, also saying who could read the snapshot and no longer can (the API's answer). */
  async deleteReporting(caller: Caller, snapshotId: string): Promise<SnapshotDeletion> {
    const snapshot = await this.#a.owned(caller, snapshotId, 'snapshot:delete', 'delete');
    if (snapshot.state === 'recycled') {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is already in the recycle bin until ${snapshot.purgeAt}; \`volsnap snapshot undelete ${snapshotId}\` recovers it.`,
        { details: { snapshotId, state: snapshot.state, purgeAt: snapshot.purgeAt } },
      );
    }
    const days =
      snapshot.state === 'completed'
        ? recycleBinDaysOf(
            await this.#a.options.accounts.resolveAccount(caller.accountId).catch(() => undefined),
          )
        : 0;
    if (days > 0) {
      const now = this.#a.options.clock.now();
      const recycled = await this.#a.options.snapshots.transition(snapshotId, ['completed'], 'recycled', {
        deletedAt: isoTime(now),
        purgeAt: isoTime(now + days * DAY_MS),
      });
      if (!recycled)
        throw new VolsnapError(
          'snapshot.invalidState',
          `Snapshot ${snapshotId} changed state meanwhile; retry.`,
        );
      return { recycled, ...accessLost(recycled) };
    }
    return accessLost(await this.#destroy(snapshot));
  }

  /** Takes a snapshot out of the recycle bin: `completed` again, as it was, shares included. */
  async undelete(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.#a.owned(caller, snapshotId, 'snapshot:delete', 'undelete');
    if (snapshot.state !== 'recycled') {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is ${snapshot.state}, not in the recycle bin: there is nothing to undelete.`,
        { details: { snapshotId, state: snapshot.state } },
      );
    }
    const restored = await this.#a.options.snapshots.transition(snapshotId, ['recycled'], 'completed', {
      deletedAt: undefined,
      purgeAt: undefined,
    });
    if (!restored)
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} changed state meanwhile; retry.`,
      );
    return restored;
  }

  /**
   * Deletes a snapshot for good, whatever its state (the reaper and expiry: a purged recycle-bin
   * entry, a failed snapshot). Idempotent: one already gone is fine.
   */
  async purge(snapshot: Snapshot): Promise<void> {
    if (snapshot.state === 'deleting') {
      // A deletion interrupted half-way: finish it.
      await this.#a.options.objects.delete(ObjectLayout.manifest(snapshot.snapshotId));
      await this.#a.options.objects.delete(ObjectLayout.manifestUpload(snapshot.snapshotId));
      await this.#a.options.snapshots.remove(snapshot).catch(() => undefined);
      return;
    }
    await this.#destroy(snapshot).catch((error) => {
      if (!(error instanceof VolsnapError && error.code === 'snapshot.invalidState')) throw error;
    });
  }

  /** Deletes a snapshot's record and manifest for good; returns the record as it was last. */
  async #destroy(snapshot: Snapshot): Promise<Snapshot> {
    assertTransition(snapshot, 'deleting');
    const deleting = await this.#a.options.snapshots.transition(
      snapshot.snapshotId,
      [snapshot.state],
      'deleting',
      {
        deletedAt: isoTime(this.#a.options.clock.now()),
      },
    );
    if (!deleting)
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshot.snapshotId} changed state meanwhile; retry.`,
      );
    // Marked `deleting`, it is gone for its owner (404) and for workers: the rest is cleanup, which
    // the reaper finishes when the store refuses it now (the delete still succeeds).
    try {
      // Deleted while being written: its upload URLs die with it (before its session records go).
      if (snapshot.state === 'pending' || snapshot.state === 'queued')
        await retireSession(this.#a.options.objects, this.#a.options.snapshots, snapshot);
      await this.#a.options.objects.delete(ObjectLayout.manifest(snapshot.snapshotId));
      await this.#a.options.objects.delete(ObjectLayout.manifestUpload(snapshot.snapshotId));
      await this.#a.options.snapshots.remove(deleting);
    } catch {
      // The reaper's `purge` of a snapshot left `deleting` finishes it.
    }
    return deleting;
  }
}

function accessLost(snapshot: Snapshot): Pick<SnapshotDeletion, 'accessLost'> {
  const accountIds = [...(snapshot.sharedWith ?? [])].sort();
  const isPublic = snapshot.public === true;
  if (accountIds.length === 0 && !isPublic) return {};
  const readers = [
    ...(accountIds.length > 0
      ? [`shared with ${accountIds.length} account(s) (${accountIds.join(', ')})`]
      : []),
    ...(isPublic ? ['public'] : []),
  ].join(' and ');
  const back =
    snapshot.state === 'recycled'
      ? `; \`volsnap snapshot undelete ${snapshot.snapshotId}\` before ${snapshot.purgeAt} gives it back to them`
      : '';
  return {
    accessLost: {
      accountIds,
      public: isPublic,
      message: `${snapshot.snapshotId} is ${readers}: they lose access now${back}.`,
    },
  };
}
