import { type DynamoDBDocumentClient, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { inFlightExceeded, quotaExceeded, type Usage } from '../../core/identity/accounts.ts';
import { VolsnapError } from '../../core/shared/errors.ts';
import type { Page } from '../../core/shared/pagination.ts';
import {
  type ClientTokenRecord,
  dueTimeOf,
  type Grantee,
  type MaintainedState,
  matchesFilter,
  type Snapshot,
  type SnapshotFilter,
  type SnapshotLimits,
  type SnapshotRepository,
  type SnapshotState,
  type StoredSegment,
} from '../../core/snapshots/snapshots.ts';
import { cancellationCodes, itemConditionFailed } from './errors.ts';
import { all, changesAnything, equals, exists, notEquals, notExists, updateItem } from './expressions.ts';
import {
  completedOfVolumeIndex,
  sharedWithIndex,
  snapshotKey,
  snapshotsOfVolumeIndex,
  volumeKey,
} from './keys.ts';
import {
  ensureMaintenanceIndexed,
  indexPage,
  LEASED_SNAPSHOTS,
  leaseIndex,
  snapshotsInState,
  stateIndex,
} from './maintenance-index.ts';
import { Filters, getItem, gsi1Page, queryPage, scanPage } from './query.ts';
import {
  completedIndex,
  granteeId,
  ownerIndex,
  TOKEN_TTL_SECONDS,
  tokenKey,
  toSnapshot,
} from './snapshot-rows.ts';
import { DynamoUploadSessions } from './snapshot-sessions.ts';
import {
  type CreateCounts,
  createCounts,
  createItems,
  removeItems,
  shareItems,
  transitionReadsFirst,
  transitionWrite,
  unshareItems,
} from './snapshot-writes.ts';
import { readUsage } from './usage.ts';
import { applyUpdate, type TransactItem, transact, updateReturning } from './writes.ts';

/** A transition whose write lost to a move between two states it may leave: tried again. */
const RACED = Symbol('raced');

/**
 * Snapshot records in the region table (key design in keys.ts; the stored item in
 * snapshot-rows.ts, the transactions that keep the counts in snapshot-writes.ts).
 */
export class DynamoSnapshotRepository implements SnapshotRepository {
  readonly #sessions: DynamoUploadSessions;

  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly nowSeconds: () => number,
  ) {
    this.#sessions = new DynamoUploadSessions(documents, table);
  }

  async create(
    snapshot: Snapshot,
    clientToken?: { token: string; requestHash: string },
    limits?: SnapshotLimits,
  ): Promise<ClientTokenRecord | undefined> {
    const counts = createCounts(snapshot, limits);
    const token = clientToken && { ...clientToken, expiresAt: this.nowSeconds() + TOKEN_TTL_SECONDS };
    try {
      await this.#transact(createItems(this.table, snapshot, counts, limits, token));
      return undefined;
    } catch (error) {
      return this.#createRefused(error, snapshot, counts, limits, clientToken);
    }
  }

  /**
   * Why a create was cancelled, by the item that failed (see createItems): the client token taken
   * (the earlier request's record), the volume (gone, another account's, or too many pending on
   * it), or the account's quota or in-flight limit.
   */
  async #createRefused(
    error: unknown,
    snapshot: Snapshot,
    counts: CreateCounts,
    limits: SnapshotLimits | undefined,
    clientToken: { token: string; requestHash: string } | undefined,
  ): Promise<ClientTokenRecord> {
    const reasons = cancellationCodes(error);
    if (clientToken && reasons[3] === 'ConditionalCheckFailed') {
      const Item = await this.#get(tokenKey(snapshot.accountId, clientToken.token));
      if (Item) return { snapshotId: String(Item.snapshotId), requestHash: String(Item.requestHash) };
    }
    const { inFlight, maxInFlight, maxPerVolume } = counts;
    if (reasons[1] === 'ConditionalCheckFailed') {
      const volume = await this.#get(volumeKey(snapshot.volumeId));
      if (maxPerVolume !== undefined && volume?.accountId === snapshot.accountId) {
        throw inFlightExceeded(
          snapshot.region,
          'pendingSnapshotsPerVolume',
          Number(volume.pendingSnapshots ?? 0),
          maxPerVolume,
        );
      }
      throw new VolsnapError(
        'volume.notFound',
        `No volume ${snapshot.volumeId} in this account and region.`,
        {
          details: { volumeId: snapshot.volumeId },
        },
      );
    }
    if (limits && reasons[2] === 'ConditionalCheckFailed') {
      const usage = await this.usage(snapshot.accountId);
      if (
        inFlight &&
        maxInFlight !== undefined &&
        usage.snapshots < limits.maxSnapshots &&
        usage.storedBytes < limits.maxStoredBytes
      ) {
        throw inFlightExceeded(snapshot.region, inFlight, usage[inFlight], maxInFlight);
      }
      throw quotaExceeded(snapshot.region, limits, usage);
    }
    throw error;
  }

  async get(snapshotId: string): Promise<Snapshot | undefined> {
    const item = await this.#item(snapshotId);
    return item ? toSnapshot(item) : undefined;
  }

  #item(snapshotId: string): Promise<Record<string, unknown> | undefined> {
    return this.#get(snapshotKey(snapshotId));
  }

  async #get(key: { pk: string; sk: string }): Promise<Record<string, unknown> | undefined> {
    return getItem(this.documents, this.table, key);
  }

  list(
    accountId: string,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Snapshot>> {
    const filters = new Filters()
      .equals('state', filter.state)
      .beginsWith('name', filter.name)
      .tags(filter.tags);
    // A volume's snapshots have their own index; the owner is then checked as a filter.
    const index = filter.volumeId
      ? { index: 'gsi2', partitionKey: 'gsi2pk', partition: snapshotsOfVolumeIndex(filter.volumeId) }
      : { index: 'gsi1', partitionKey: 'gsi1pk', partition: ownerIndex(accountId) };
    if (filter.volumeId) filters.equals('accountId', accountId);
    return queryPage(this.documents, { table: this.table, ...index, filters }, page, toSnapshot);
  }

  async listShared(
    grantee: Grantee,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Snapshot>> {
    // The grantee's index holds one share item per snapshot; the snapshots themselves are then read
    // by key (consistently: an unshared or deleted one drops out at once) and filtered here.
    const shares = await gsi1Page(
      this.documents,
      this.table,
      sharedWithIndex(granteeId(grantee)),
      page,
      (item) => String(item.snapshotId),
    );
    const found = await Promise.all(shares.items.map((id) => this.get(id)));
    const items = found.filter(
      (s): s is Snapshot =>
        s !== undefined &&
        s.state !== 'deleting' &&
        (grantee === 'public' ? s.public === true : (s.sharedWith ?? []).includes(grantee.accountId)) &&
        matchesFilter(s, filter),
    );
    return shares.nextToken ? { items, nextToken: shares.nextToken } : { items };
  }

  async share(snapshotId: string, grantee: Grantee): Promise<Snapshot | undefined> {
    const current = await this.get(snapshotId);
    if (current?.state !== 'completed') return undefined;
    const shared = await transact(this.documents, shareItems(this.table, current, grantee));
    return shared ? this.get(snapshotId) : undefined;
  }

  async unshare(snapshotId: string, grantee: Grantee): Promise<Snapshot | undefined> {
    const unshared = await transact(this.documents, unshareItems(this.table, snapshotId, grantee));
    return unshared ? this.get(snapshotId) : undefined;
  }

  usage(accountId: string): Promise<Usage> {
    return readUsage(this.documents, this.table, accountId);
  }

  async latestCompleted(volumeId: string): Promise<Snapshot | undefined> {
    // The sparse index holds only completed snapshots: the newest is its first key, whatever else
    // (pending, failed, recycled) the volume has. Its record is then read consistently: the index
    // lags, so a snapshot that just left `completed` is skipped for the next.
    const { Items = [] } = await this.documents.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'gsi3',
        KeyConditionExpression: 'gsi3pk = :pk',
        ExpressionAttributeValues: { ':pk': completedOfVolumeIndex(volumeId) },
        ScanIndexForward: false,
        Limit: 2,
      }),
    );
    for (const item of Items) {
      const snapshot = await this.get(String(item.pk).slice('SNAPSHOT#'.length));
      if (snapshot?.state === 'completed') return snapshot;
    }
    return undefined;
  }

  async transition(
    snapshotId: string,
    from: readonly SnapshotState[],
    to: SnapshotState,
    changes: Partial<Snapshot> = {},
    parent?: { snapshotId: string; states: readonly SnapshotState[] },
  ): Promise<Snapshot | undefined> {
    // A write conditional on the state read loses to a move between two of `from` (queued →
    // pending): then it is tried again from the new state.
    for (let attempt = 0; attempt < 3; attempt++) {
      const moved = await this.#transitionOnce(snapshotId, { from, to, changes }, parent);
      if (moved !== RACED) return moved;
    }
    return undefined;
  }

  async #transitionOnce(
    snapshotId: string,
    move: { from: readonly SnapshotState[]; to: SnapshotState; changes: Partial<Snapshot> },
    parent: { snapshotId: string; states: readonly SnapshotState[] } | undefined,
  ): Promise<Snapshot | undefined | typeof RACED> {
    // What the counters and the completed index need (the owner, the volume, the kind, the state
    // it leaves) is read first; the write is then conditional on that very state.
    const readsFirst = transitionReadsFirst(move.from, move.to, move.changes);
    const item = readsFirst ? await this.#item(snapshotId) : undefined;
    const current = item ? toSnapshot(item) : undefined;
    if (readsFirst && (!current || !move.from.includes(current.state))) return undefined;
    const counted = typeof item?.countedInFlight === 'string' ? item.countedInFlight : undefined;
    const read = current ? { current, counted } : undefined;
    const { update, others } = transitionWrite(this.table, snapshotId, move, read, parent);
    if (others.length > 0) {
      const moved = await transact(this.documents, [{ Update: update }, ...others]);
      return moved ? this.get(snapshotId) : this.#raced(snapshotId, current, move.from);
    }
    const moved = await updateReturning(this.documents, update);
    return moved ? toSnapshot(moved) : this.#raced(snapshotId, current, move.from);
  }

  /** After a refused write: RACED if the snapshot moved from the state read to another of `from`. */
  async #raced(
    snapshotId: string,
    read: Snapshot | undefined,
    from: readonly SnapshotState[],
  ): Promise<undefined | typeof RACED> {
    if (!read) return undefined;
    const now = await this.get(snapshotId);
    return now && now.state !== read.state && from.includes(now.state) ? RACED : undefined;
  }

  async updateMetadata(
    snapshotId: string,
    changes: Pick<Partial<Snapshot>, 'name' | 'description' | 'tags'>,
  ): Promise<Snapshot | undefined> {
    const change = { set: changes };
    if (!changesAnything(change)) return this.get(snapshotId);
    const updated = await updateReturning(
      this.documents,
      updateItem(
        this.table,
        snapshotKey(snapshotId),
        change,
        all(exists('pk'), notEquals('state', 'deleting')),
      ),
    );
    return updated ? toSnapshot(updated) : undefined;
  }

  async remove(snapshot: Snapshot): Promise<void> {
    try {
      await this.#transact(removeItems(this.table, snapshot, true));
    } catch (error) {
      // A snapshot in the recycle bin outlives its volume: with the volume gone, there is no count.
      const volumeGone = cancellationCodes(error)[0] === 'None' && itemConditionFailed(error, 1);
      if (!volumeGone) throw error;
      await this.#transact(removeItems(this.table, snapshot, false));
    }
    // The upload session's records go with it (best effort: they only matter while it is pending).
    await this.#sessions.remove(snapshot.snapshotId);
  }

  async completePart(snapshotId: string, part: number): Promise<number | undefined> {
    const updated = await updateReturning(
      this.documents,
      // A set: marking a part twice (a redelivered message) counts it once.
      updateItem(
        this.table,
        snapshotKey(snapshotId),
        { add: { partsDone: new Set([part]) } },
        equals('state', 'pending'),
      ),
      'UPDATED_NEW',
    );
    return (updated?.partsDone as Set<number> | undefined)?.size;
  }

  listAll(page: { limit: number; nextToken?: string }): Promise<Page<Snapshot>> {
    return scanPage(this.documents, this.table, 'snapshot', page, toSnapshot);
  }

  async listInState(
    state: MaintainedState,
    page: { limit: number; nextToken?: string },
    dueBefore?: string,
  ): Promise<Page<Snapshot>> {
    await ensureMaintenanceIndexed(this.documents, this.table);
    return indexPage(
      this.documents,
      { table: this.table, index: 'gsi4', partition: snapshotsInState(state), before: dueBefore },
      page,
      (item) => {
        const snapshot = toSnapshot(item);
        const due = dueTimeOf(state, snapshot);
        const inState = snapshot.state === state && due !== undefined;
        return inState && (dueBefore === undefined || due < dueBefore) ? snapshot : undefined;
      },
    );
  }

  async listLapsed(before: string, page: { limit: number; nextToken?: string }): Promise<Page<Snapshot>> {
    await ensureMaintenanceIndexed(this.documents, this.table);
    return indexPage(
      this.documents,
      { table: this.table, index: 'gsi3', partition: LEASED_SNAPSHOTS, before },
      page,
      (item) => {
        const snapshot = toSnapshot(item);
        const lapsed = snapshot.state === 'pending' && snapshot.leaseUntil && snapshot.leaseUntil < before;
        return lapsed ? snapshot : undefined;
      },
    );
  }

  /**
   * Puts completed snapshots stored before the index of completed snapshots existed into it (one
   * page of the table at a time; idempotent, safe beside live traffic: each write is conditional on
   * the snapshot still being completed and not yet indexed). Without it, a volume's first snapshot
   * after the upgrade finds no parent and is written in full. Returns how many it indexed.
   */
  async indexCompleted(page: {
    limit: number;
    nextToken?: string;
  }): Promise<{ indexed: number; nextToken?: string }> {
    const found = await scanPage(this.documents, this.table, 'snapshot', page, (item) => item);
    let indexed = 0;
    for (const item of found.items) {
      if (item.state !== 'completed' || item.gsi3pk !== undefined) continue;
      const snapshot = toSnapshot(item);
      const index = completedIndex(snapshot);
      const written = await applyUpdate(
        this.documents,
        updateItem(
          this.table,
          snapshotKey(snapshot.snapshotId),
          { set: index },
          all(equals('state', 'completed'), notExists('gsi3pk')),
        ),
      );
      if (written) indexed++;
    }
    return { indexed, ...(found.nextToken ? { nextToken: found.nextToken } : {}) };
  }

  async hold(snapshotId: string, holder: string, until: string): Promise<boolean> {
    const key = snapshotKey(snapshotId);
    const completed = equals('state', 'completed');
    // A map of holders: one SET of the map first if absent, then of the holder's entry.
    return (
      (await applyUpdate(
        this.documents,
        updateItem(this.table, key, { setIfAbsent: { holds: {} } }, completed),
      )) &&
      applyUpdate(
        this.documents,
        updateItem(this.table, key, { setEntries: { holds: { [holder]: until } } }, completed),
      )
    );
  }

  async release(snapshotId: string, holder: string): Promise<void> {
    // Refused: there are no holds at all, so nothing to release.
    await applyUpdate(
      this.documents,
      updateItem(
        this.table,
        snapshotKey(snapshotId),
        { setEntries: { holds: { [holder]: null } } },
        exists('holds'),
      ),
    );
  }

  async renewLease(
    snapshotId: string,
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
    claim?: Required<Pick<Snapshot, 'verification' | 'parts' | 'deadline'>>,
  ): Promise<boolean> {
    return applyUpdate(
      this.documents,
      updateItem(
        this.table,
        snapshotKey(snapshotId),
        {
          set: {
            ...lease,
            ...claim,
            ...leaseIndex(snapshotId, lease.leaseUntil),
            ...(claim ? stateIndex(snapshotId, 'pending', claim) : {}),
          },
        },
        all(
          equals('state', 'pending'),
          expected === undefined ? notExists('leaseUntil') : equals('leaseUntil', expected),
        ),
      ),
    );
  }

  async extendLease(snapshotId: string, leaseUntil: string): Promise<void> {
    await applyUpdate(
      this.documents,
      updateItem(
        this.table,
        snapshotKey(snapshotId),
        { set: { leaseUntil, ...leaseIndex(snapshotId, leaseUntil) } },
        all(equals('state', 'pending'), exists('leaseUntil')),
      ),
    );
  }

  addSessionSegments(snapshotId: string, segmentIds: readonly string[]): Promise<void> {
    return this.#sessions.addSegments(snapshotId, segmentIds);
  }

  issueSessionUploads(
    snapshotId: string,
    uploads: { segmentIds: readonly string[]; manifestUploadIds: readonly string[] },
    limits: { segments: number; manifests: number },
  ): Promise<boolean> {
    return this.#sessions.issue(snapshotId, uploads, limits);
  }

  sessionManifestUploads(snapshotId: string): Promise<Set<string>> {
    return this.#sessions.manifestUploads(snapshotId);
  }

  sessionSegments(snapshotId: string): Promise<Set<string>> {
    return this.#sessions.segments(snapshotId);
  }

  recordStoredSegments(snapshotId: string, stored: readonly StoredSegment[]): Promise<void> {
    return this.#sessions.recordStored(snapshotId, stored);
  }

  storedSegments(snapshotId: string, limit: number): Promise<StoredSegment[]> {
    return this.#sessions.stored(snapshotId, limit);
  }

  async #transact(items: TransactItem[]): Promise<void> {
    await this.documents.send(new TransactWriteCommand({ TransactItems: items }));
  }
}
