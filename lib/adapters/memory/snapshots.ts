import {
  IN_FLIGHT_LIMITS,
  inFlightExceeded,
  NO_USAGE,
  quotaExceeded,
  type Usage,
} from '../../core/identity/accounts.ts';
import { VolsnapError } from '../../core/shared/errors.ts';
import type { Page } from '../../core/shared/pagination.ts';
import {
  type ClientTokenRecord,
  dueTimeOf,
  type Grantee,
  IN_FLIGHT_STATES,
  inFlightCounterOf,
  type MaintainedState,
  matchesFilter,
  type Snapshot,
  type SnapshotFilter,
  type SnapshotLimits,
  type SnapshotRepository,
  type SnapshotState,
  type StoredSegment,
} from '../../core/snapshots/snapshots.ts';
import { orderedPage, pageOf } from './paging.ts';
import type { MemoryVolumeRepository } from './volumes.ts';

const newestFirst = (a: Snapshot, b: Snapshot) =>
  `${b.createdAt}#${b.snapshotId}`.localeCompare(`${a.createdAt}#${a.snapshotId}`);

/** An account's usage counters, which the in-memory stores share as the table's usage item is shared. */
export interface UsageCounters {
  get(accountId: string): Usage;
  add(accountId: string, changes: Partial<Usage>): void;
}

/** Snapshot records in memory, for unit tests: the same contract as the DynamoDB repository. */
export class MemorySnapshotRepository implements SnapshotRepository {
  readonly #snapshots = new Map<string, Snapshot>();
  readonly #tokens = new Map<string, ClientTokenRecord>();
  readonly #segments = new Map<string, Set<string>>();
  readonly #manifestUploads = new Map<string, Set<string>>();
  readonly #stored = new Map<string, Map<string, StoredSegment>>();
  /** Keys issued to clients per session: segments and manifests (they only grow). */
  readonly #issued = new Map<string, { segments: number; manifests: number }>();
  readonly #parts = new Map<string, Set<number>>();
  readonly #usage = new Map<string, Usage>();
  /** Share order per grantee (`*` for public), as the table's index keeps it. */
  readonly #shares = new Map<string, string[]>();

  /** Shares the volumes' snapshot count, as the table's transactions do. */
  constructor(private readonly volumes: MemoryVolumeRepository) {
    volumes.snapshotRecord = (snapshotId) => this.#snapshots.get(snapshotId);
  }

  async create(
    snapshot: Snapshot,
    clientToken?: { token: string; requestHash: string },
    limits?: SnapshotLimits,
  ): Promise<ClientTokenRecord | undefined> {
    const tokenKey = clientToken ? `${snapshot.accountId}#${clientToken.token}` : undefined;
    const known = tokenKey ? this.#tokens.get(tokenKey) : undefined;
    if (known) return known;
    if (!(await this.volumes.get(snapshot.accountId, snapshot.volumeId))) {
      throw new VolsnapError(
        'volume.notFound',
        `No volume ${snapshot.volumeId} in this account and region.`,
        { details: { volumeId: snapshot.volumeId } },
      );
    }
    if (this.#snapshots.has(snapshot.snapshotId)) throw new Error(`snapshot ${snapshot.snapshotId} exists`);
    const usage = await this.usage(snapshot.accountId);
    if (limits && (usage.snapshots >= limits.maxSnapshots || usage.storedBytes >= limits.maxStoredBytes)) {
      throw quotaExceeded(snapshot.region, limits, usage);
    }
    if (IN_FLIGHT_STATES.includes(snapshot.state)) {
      const counter = inFlightCounterOf(snapshot);
      const max = limits?.[IN_FLIGHT_LIMITS[counter]];
      if (max !== undefined && usage[counter] >= max)
        throw inFlightExceeded(snapshot.region, counter, usage[counter], max);
      const onVolume = [...this.#snapshots.values()].filter(
        (s) => s.volumeId === snapshot.volumeId && IN_FLIGHT_STATES.includes(s.state),
      ).length;
      const perVolume = limits?.maxPendingSnapshotsPerVolume;
      if (perVolume !== undefined && onVolume >= perVolume)
        throw inFlightExceeded(snapshot.region, 'pendingSnapshotsPerVolume', onVolume, perVolume);
    }
    this.#usage.set(snapshot.accountId, { ...usage, snapshots: usage.snapshots + 1 });
    this.#snapshots.set(snapshot.snapshotId, structuredClone(snapshot));
    const held = this.volumes.snapshotsOf.get(snapshot.volumeId) ?? new Set<string>();
    this.volumes.snapshotsOf.set(snapshot.volumeId, held.add(snapshot.snapshotId));
    if (tokenKey && clientToken)
      this.#tokens.set(tokenKey, { snapshotId: snapshot.snapshotId, requestHash: clientToken.requestHash });
    return undefined;
  }

  async get(snapshotId: string): Promise<Snapshot | undefined> {
    const found = this.#snapshots.get(snapshotId);
    return found ? structuredClone(found) : undefined;
  }

  async list(
    accountId: string,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Snapshot>> {
    const all = [...this.#snapshots.values()]
      .filter((s) => s.accountId === accountId && matchesFilter(s, filter))
      .sort(newestFirst);
    return pageOf(all, page);
  }

  async listShared(
    grantee: Grantee,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Snapshot>> {
    const id = grantee === 'public' ? '*' : grantee.accountId;
    const all = (this.#shares.get(id) ?? [])
      .map((snapshotId) => this.#snapshots.get(snapshotId))
      .filter((s): s is Snapshot => s !== undefined && s.state !== 'deleting' && matchesFilter(s, filter))
      .sort(newestFirst);
    return pageOf(all, page);
  }

  async share(snapshotId: string, grantee: Grantee): Promise<Snapshot | undefined> {
    const snapshot = this.#snapshots.get(snapshotId);
    if (snapshot?.state !== 'completed') return undefined;
    const id = grantee === 'public' ? '*' : grantee.accountId;
    if (grantee === 'public') snapshot.public = true;
    else snapshot.sharedWith = [...new Set([...(snapshot.sharedWith ?? []), id])].sort();
    const list = this.#shares.get(id) ?? [];
    if (!list.includes(snapshotId)) list.push(snapshotId);
    this.#shares.set(id, list);
    return structuredClone(snapshot);
  }

  async unshare(snapshotId: string, grantee: Grantee): Promise<Snapshot | undefined> {
    const snapshot = this.#snapshots.get(snapshotId);
    if (!snapshot) return undefined;
    const id = grantee === 'public' ? '*' : grantee.accountId;
    if (grantee === 'public') delete snapshot.public;
    else {
      snapshot.sharedWith = (snapshot.sharedWith ?? []).filter((a) => a !== id);
      if (snapshot.sharedWith.length === 0) delete snapshot.sharedWith;
    }
    this.#shares.set(
      id,
      (this.#shares.get(id) ?? []).filter((s) => s !== snapshotId),
    );
    return structuredClone(snapshot);
  }

  async usage(accountId: string): Promise<Usage> {
    // Snapshots in flight are counted from the records; the rest are counters.
    const usage = {
      ...this.counters.get(accountId),
      pendingSnapshots: 0,
      copiesInFlight: 0,
      importsInFlight: 0,
    };
    for (const s of this.#snapshots.values())
      if (s.accountId === accountId && IN_FLIGHT_STATES.includes(s.state)) usage[inFlightCounterOf(s)]++;
    return usage;
  }

  /** The counters, for the in-memory export store: exports count in the same stored bytes. */
  readonly counters: UsageCounters = {
    get: (accountId) => ({ ...NO_USAGE, ...this.#usage.get(accountId) }),
    add: (accountId, changes) => {
      const usage = this.counters.get(accountId);
      for (const [counter, delta] of Object.entries(changes)) usage[counter as keyof Usage] += delta;
      this.#usage.set(accountId, usage);
    },
  };

  async latestCompleted(volumeId: string): Promise<Snapshot | undefined> {
    const found = [...this.#snapshots.values()]
      .filter((s) => s.volumeId === volumeId && s.state === 'completed')
      .sort(newestFirst)[0];
    return found ? structuredClone(found) : undefined;
  }

  async transition(
    snapshotId: string,
    from: readonly SnapshotState[],
    to: SnapshotState,
    changes: Partial<Snapshot> = {},
    parent?: { snapshotId: string; states: readonly SnapshotState[] },
  ) {
    const current = this.#snapshots.get(snapshotId);
    if (!current || !from.includes(current.state)) return undefined;
    if (parent) {
      const state = this.#snapshots.get(parent.snapshotId)?.state;
      if (!state || !parent.states.includes(state)) return undefined;
    }
    if (to === 'completed' && changes.stats) {
      const usage = await this.usage(current.accountId);
      this.#usage.set(current.accountId, {
        ...usage,
        storedBytes: usage.storedBytes + changes.stats.newBytes,
      });
    }
    const next: Snapshot = { ...current, ...structuredClone(changes), state: to };
    for (const [key, value] of Object.entries(changes))
      if (value === undefined) delete next[key as keyof Snapshot];
    this.#snapshots.set(snapshotId, next);
    return structuredClone(next);
  }

  async listAll(page: { limit: number; nextToken?: string }): Promise<Page<Snapshot>> {
    return pageOf(
      [...this.#snapshots.values()].sort(newestFirst).map((s) => structuredClone(s)),
      page,
    );
  }

  async listInState(
    state: MaintainedState,
    page: { limit: number; nextToken?: string },
    dueBefore?: string,
  ): Promise<Page<Snapshot>> {
    const due = (s: Snapshot) => (s.state === state ? dueTimeOf(state, s) : undefined);
    return this.#inOrder((s) => {
      const time = due(s);
      return time !== undefined && (dueBefore === undefined || time < dueBefore) ? time : undefined;
    }, page);
  }

  async listLapsed(before: string, page: { limit: number; nextToken?: string }): Promise<Page<Snapshot>> {
    return this.#inOrder(
      (s) => (s.state === 'pending' && s.leaseUntil && s.leaseUntil < before ? s.leaseUntil : undefined),
      page,
    );
  }

  /** The snapshots `orderOf` gives a time, in that time's order then by id (see {@link orderedPage}). */
  #inOrder(orderOf: (s: Snapshot) => string | undefined, page: { limit: number; nextToken?: string }) {
    return orderedPage(
      [...this.#snapshots.values()].flatMap((item) => {
        const time = orderOf(item);
        return time === undefined ? [] : [{ item, order: `${time}#${item.snapshotId}` }];
      }),
      page,
    );
  }

  async hold(snapshotId: string, holder: string, until: string): Promise<boolean> {
    const snapshot = this.#snapshots.get(snapshotId);
    if (snapshot?.state !== 'completed') return false;
    snapshot.holds = { ...snapshot.holds, [holder]: until };
    return true;
  }

  async release(snapshotId: string, holder: string): Promise<void> {
    const snapshot = this.#snapshots.get(snapshotId);
    if (!snapshot?.holds) return;
    delete snapshot.holds[holder];
    if (Object.keys(snapshot.holds).length === 0) delete snapshot.holds;
  }

  async renewLease(
    snapshotId: string,
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
    claim?: Required<Pick<Snapshot, 'verification' | 'parts' | 'deadline'>>,
  ): Promise<boolean> {
    const snapshot = this.#snapshots.get(snapshotId);
    if (snapshot?.state !== 'pending' || snapshot.leaseUntil !== expected) return false;
    Object.assign(snapshot, lease, structuredClone(claim ?? {}));
    return true;
  }

  async extendLease(snapshotId: string, leaseUntil: string): Promise<void> {
    const snapshot = this.#snapshots.get(snapshotId);
    if (snapshot?.state === 'pending' && snapshot.leaseUntil !== undefined) snapshot.leaseUntil = leaseUntil;
  }

  async updateMetadata(
    snapshotId: string,
    changes: Pick<Partial<Snapshot>, 'name' | 'description' | 'tags'>,
  ) {
    const current = this.#snapshots.get(snapshotId);
    if (!current || current.state === 'deleting') return undefined;
    const defined = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
    const next = { ...current, ...structuredClone(defined) };
    this.#snapshots.set(snapshotId, next);
    return structuredClone(next);
  }

  async remove(snapshot: Snapshot): Promise<void> {
    if (!this.#snapshots.delete(snapshot.snapshotId))
      throw new Error(`snapshot ${snapshot.snapshotId} does not exist`);
    this.volumes.snapshotsOf.get(snapshot.volumeId)?.delete(snapshot.snapshotId);
    this.#segments.delete(snapshot.snapshotId);
    this.#manifestUploads.delete(snapshot.snapshotId);
    this.#stored.delete(snapshot.snapshotId);
    this.#issued.delete(snapshot.snapshotId);
    const usage = await this.usage(snapshot.accountId);
    this.#usage.set(snapshot.accountId, {
      ...usage,
      snapshots: usage.snapshots - 1,
      storedBytes: usage.storedBytes - (snapshot.stats?.newBytes ?? 0),
    });
    for (const [id, list] of this.#shares)
      this.#shares.set(
        id,
        list.filter((s) => s !== snapshot.snapshotId),
      );
  }

  async completePart(snapshotId: string, part: number): Promise<number | undefined> {
    if (this.#snapshots.get(snapshotId)?.state !== 'pending') return undefined;
    const done = this.#parts.get(snapshotId) ?? new Set<number>();
    done.add(part);
    this.#parts.set(snapshotId, done);
    const snapshot = this.#snapshots.get(snapshotId);
    if (snapshot) snapshot.partsDone = [...done].sort((a, b) => a - b);
    return done.size;
  }

  async addSessionSegments(snapshotId: string, segmentIds: readonly string[]): Promise<void> {
    const set = this.#segments.get(snapshotId) ?? new Set<string>();
    for (const id of segmentIds) set.add(id);
    this.#segments.set(snapshotId, set);
  }

  async sessionSegments(snapshotId: string): Promise<Set<string>> {
    return new Set(this.#segments.get(snapshotId) ?? []);
  }

  async issueSessionUploads(
    snapshotId: string,
    uploads: { segmentIds: readonly string[]; manifestUploadIds: readonly string[] },
    limits: { segments: number; manifests: number },
  ): Promise<boolean> {
    const issued = this.#issued.get(snapshotId) ?? { segments: 0, manifests: 0 };
    const next = {
      segments: issued.segments + uploads.segmentIds.length,
      manifests: issued.manifests + uploads.manifestUploadIds.length,
    };
    if (next.segments > limits.segments || next.manifests > limits.manifests) return false;
    this.#issued.set(snapshotId, next);
    await this.addSessionSegments(snapshotId, uploads.segmentIds);
    const manifests = this.#manifestUploads.get(snapshotId) ?? new Set<string>();
    for (const id of uploads.manifestUploadIds) manifests.add(id);
    this.#manifestUploads.set(snapshotId, manifests);
    return true;
  }

  async sessionManifestUploads(snapshotId: string): Promise<Set<string>> {
    return new Set(this.#manifestUploads.get(snapshotId) ?? []);
  }

  async recordStoredSegments(snapshotId: string, stored: readonly StoredSegment[]): Promise<void> {
    const issued = this.#segments.get(snapshotId) ?? new Set<string>();
    const known = this.#stored.get(snapshotId) ?? new Map<string, StoredSegment>();
    for (const segment of stored)
      if (issued.has(segment.segmentId)) known.set(segment.segmentId, { ...segment });
    this.#stored.set(snapshotId, known);
  }

  async storedSegments(snapshotId: string, limit: number): Promise<StoredSegment[]> {
    return [...(this.#stored.get(snapshotId)?.values() ?? [])].slice(0, limit).map((s) => ({ ...s }));
  }
}
