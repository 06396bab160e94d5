import { IN_FLIGHT_LIMITS, type InFlightCounter } from '../../core/identity/accounts.ts';
import {
  dueTimeOf,
  type Grantee,
  IN_FLIGHT_STATES,
  inFlightCounterOf,
  MAINTAINED_STATES,
  type Snapshot,
  type SnapshotLimits,
  type SnapshotState,
} from '../../core/snapshots/snapshots.ts';
import {
  absentOrBelow,
  all,
  checkItem,
  deleteItem,
  equals,
  exists,
  notExists,
  oneOf,
  putItem,
  type UpdateParams,
  updateItem,
} from './expressions.ts';
import {
  createdOrder,
  PUBLIC,
  sharedWithIndex,
  shareKey,
  snapshotKey,
  snapshotsOfVolumeIndex,
  usageKey,
  volumeKey,
} from './keys.ts';
import { leaseIndex, stateIndex } from './maintenance-index.ts';
import { completedIndex, granteeId, ownerIndex, tokenKey } from './snapshot-rows.ts';
import type { TransactItem } from './writes.ts';

/**
 * The transactions that write a snapshot with its counts, built pure (the repository sends them):
 * a create counted on its volume and in its account's usage, a state change that moves the counts
 * with it, a removal that gives them back.
 */

/** What a create counts, and the limits it is checked against. */
export interface CreateCounts {
  /** The in-flight counter a snapshot being written takes (its kind's), if it is being written. */
  inFlight?: InFlightCounter;
  maxInFlight?: number;
  maxPerVolume?: number;
}

/** A snapshot being written counts against its kind's limit, and on its volume. */
export function createCounts(snapshot: Snapshot, limits: SnapshotLimits | undefined): CreateCounts {
  const inFlight = IN_FLIGHT_STATES.includes(snapshot.state) ? inFlightCounterOf(snapshot) : undefined;
  if (!inFlight) return {};
  return {
    inFlight,
    maxInFlight: limits?.[IN_FLIGHT_LIMITS[inFlight]],
    maxPerVolume: limits?.maxPendingSnapshotsPerVolume,
  };
}

/**
 * The items of a create, in this order (the repository reads the cancellation reasons by index):
 * the snapshot, its volume's counts, the account's usage, and the client token if there is one.
 */
export function createItems(
  table: string,
  snapshot: Snapshot,
  counts: CreateCounts,
  limits: SnapshotLimits | undefined,
  clientToken: { token: string; requestHash: string; expiresAt: number } | undefined,
): TransactItem[] {
  const { inFlight, maxInFlight, maxPerVolume } = counts;
  const order = createdOrder(snapshot.createdAt, snapshot.snapshotId);
  const item = {
    ...snapshotKey(snapshot.snapshotId),
    type: 'snapshot',
    ...snapshot,
    gsi1pk: ownerIndex(snapshot.accountId),
    gsi1sk: order,
    gsi2pk: snapshotsOfVolumeIndex(snapshot.volumeId),
    gsi2sk: order,
    ...(snapshot.state === 'completed' ? completedIndex(snapshot) : {}),
    ...(snapshot.state === 'pending' && snapshot.leaseUntil
      ? leaseIndex(snapshot.snapshotId, snapshot.leaseUntil)
      : {}),
    ...stateIndex(snapshot.snapshotId, snapshot.state, snapshot),
    countedInFlight: inFlight,
  };
  return [
    { Put: putItem(table, item, notExists('pk')) },
    {
      // Counting the snapshot on its volume in the same transaction is what keeps a volume with
      // snapshots from being deleted (DynamoVolumeRepository.deleteUnlessSnapshots).
      Update: updateItem(
        table,
        volumeKey(snapshot.volumeId),
        { add: { snapshotCount: 1, pendingSnapshots: inFlight ? 1 : undefined } },
        all(
          exists('pk'),
          equals('accountId', snapshot.accountId),
          maxPerVolume !== undefined ? absentOrBelow('pendingSnapshots', maxPerVolume) : undefined,
        ),
      ),
    },
    {
      // The quota is checked and the count taken in the same write: two racing creates cannot both
      // take the last place.
      Update: updateItem(
        table,
        usageKey(snapshot.accountId),
        { add: { snapshots: 1, ...(inFlight ? { [inFlight]: 1 } : {}) } },
        all(
          limits ? absentOrBelow('snapshots', limits.maxSnapshots) : undefined,
          limits ? absentOrBelow('storedBytes', limits.maxStoredBytes) : undefined,
          inFlight && maxInFlight !== undefined ? absentOrBelow(inFlight, maxInFlight) : undefined,
        ),
      ),
    },
    ...(clientToken
      ? [
          {
            Put: putItem(
              table,
              {
                ...tokenKey(snapshot.accountId, clientToken.token),
                type: 'clientToken',
                snapshotId: snapshot.snapshotId,
                requestHash: clientToken.requestHash,
                expiresAt: clientToken.expiresAt,
              },
              notExists('pk'),
            ),
          },
        ]
      : []),
  ];
}

/** The stored item a transition reads first, when its counts or the completed index depend on it. */
export interface TransitionRead {
  current: Snapshot;
  /** The counter the create took (absent on snapshots stored before counting began: nothing to give back). */
  counted?: string;
}

/** A transition's write: the snapshot's update, and what else must change in the same transaction. */
export interface TransitionWrite {
  update: UpdateParams;
  /** Usage, volume counts and the parent's check: when there are any, one transaction writes all. */
  others: TransactItem[];
}

/**
 * The write of a move from one of `from` to `to` with `changes` (the port's meaning: a field given
 * as undefined is removed). With `read`, the write is conditional on the very state read, so a
 * concurrent move makes it fail rather than count wrong.
 */
export function transitionWrite(
  table: string,
  snapshotId: string,
  move: { from: readonly SnapshotState[]; to: SnapshotState; changes: Partial<Snapshot> },
  read: TransitionRead | undefined,
  parent: { snapshotId: string; states: readonly SnapshotState[] } | undefined,
): TransitionWrite {
  const { from, to, changes } = move;
  const current = read?.current;
  const leavesInFlight =
    !IN_FLIGHT_STATES.includes(to) && from.some((state) => IN_FLIGHT_STATES.includes(state));
  const completes = changes.stats !== undefined && to === 'completed' && from.includes('pending');
  const releases =
    current !== undefined &&
    read?.counted !== undefined &&
    leavesInFlight &&
    IN_FLIGHT_STATES.includes(current.state);
  const addsBytes = current !== undefined && completes && current.state === 'pending';
  const leavesCompleted = to !== 'completed' && from.includes('completed');
  // Out of `pending` its lease leaves the lease index (into `completed`, the entry is replaced).
  const leavesLease = to !== 'pending' && to !== 'completed' && from.includes('pending');
  const set: Record<string, unknown> = {
    // The port's undefined is the builder's null: REMOVE.
    ...Object.fromEntries(Object.entries(changes).map(([k, v]) => [k, v === undefined ? null : v])),
    // Into `completed`, into the index of completed snapshots; out of it, out of the index.
    ...(to === 'completed' && current ? completedIndex(current) : {}),
    ...(leavesCompleted || leavesLease ? { gsi3pk: null, gsi3sk: null } : {}),
    ...leaseChange(snapshotId, to, changes),
    ...stateIndexChange(snapshotId, from, to, current, changes),
    ...(releases ? { countedInFlight: null } : {}),
    state: to,
  };
  const update = updateItem(
    table,
    snapshotKey(snapshotId),
    { set },
    all(exists('pk'), oneOf('state', current ? [current.state] : from)),
  );
  const others: TransactItem[] = [];
  // Completing counts the bytes the snapshot added, and leaving `pending` gives back its place in
  // flight, in the same write as the state change; the parent's state is checked in it too.
  if (current && (addsBytes || releases)) {
    const add: Record<string, number> = {};
    if (addsBytes) add.storedBytes = changes.stats?.newBytes ?? 0;
    if (releases && read?.counted) add[read.counted] = -1;
    others.push({ Update: updateItem(table, usageKey(current.accountId), { add }) });
  }
  if (current && releases) {
    others.push({
      // The volume cannot be deleted while it has snapshots: this never creates one.
      Update: updateItem(table, volumeKey(current.volumeId), { add: { pendingSnapshots: -1 } }, exists('pk')),
    });
  }
  if (parent) {
    others.push({
      ConditionCheck: checkItem(table, snapshotKey(parent.snapshotId), oneOf('state', parent.states)),
    });
  }
  return { update, others };
}

/** Whether a transition must read the snapshot first (see {@link transitionWrite}). */
export function transitionReadsFirst(
  from: readonly SnapshotState[],
  to: SnapshotState,
  changes: Partial<Snapshot>,
): boolean {
  const leavesInFlight =
    !IN_FLIGHT_STATES.includes(to) && from.some((state) => IN_FLIGHT_STATES.includes(state));
  const completes = changes.stats !== undefined && to === 'completed' && from.includes('pending');
  // Into a maintained state whose due time the change does not carry: read it from the record.
  const dueUnknown =
    enters(from, to) &&
    (MAINTAINED_STATES as readonly SnapshotState[]).includes(to) &&
    dueTimeOf(to, changes) === undefined;
  return leavesInFlight || completes || to === 'completed' || dueUnknown;
}

/** Whether a move from one of `from` to `to` may change the state (a move within one state does not). */
const enters = (from: readonly SnapshotState[], to: SnapshotState) => from.some((state) => state !== to);

/**
 * The maintenance index entry a move writes: a new state's entry (its due time from the change or
 * the record read), or the same state's when the change moves its due time (a new deadline).
 */
function stateIndexChange(
  id: string,
  from: readonly SnapshotState[],
  to: SnapshotState,
  current: Snapshot | undefined,
  changes: Partial<Snapshot>,
): Record<string, unknown> {
  const entering = current ? current.state !== to : enters(from, to);
  const moved = stateIndex(id, to, changes).gsi4pk !== null;
  if (!entering && !moved) return {};
  return stateIndex(id, to, { ...current, ...changes });
}

/** A lease set or removed by a move within `pending` follows in the lease index. */
function leaseChange(id: string, to: SnapshotState, changes: Partial<Snapshot>): Record<string, unknown> {
  if (to !== 'pending' || !('leaseUntil' in changes)) return {};
  return changes.leaseUntil ? leaseIndex(id, changes.leaseUntil) : { gsi3pk: null, gsi3sk: null };
}

/**
 * The items of a removal: the record, its count on its volume (unless `counted` is false: a snapshot
 * in the recycle bin outlives its volume), its usage, and its grants (so no listing of another
 * account keeps pointing at it). The volume's update is item 1 when counted.
 */
export function removeItems(table: string, snapshot: Snapshot, counted: boolean): TransactItem[] {
  return [
    { Delete: deleteItem(table, snapshotKey(snapshot.snapshotId), exists('pk')) },
    ...(counted
      ? [
          {
            Update: updateItem(
              table,
              volumeKey(snapshot.volumeId),
              { add: { snapshotCount: -1 } },
              exists('pk'),
            ),
          },
        ]
      : []),
    {
      Update: updateItem(table, usageKey(snapshot.accountId), {
        // Stats exist once a snapshot completed, and only then were its bytes counted.
        add: { snapshots: -1, storedBytes: -(snapshot.stats?.newBytes ?? 0) },
      }),
    },
    ...[...(snapshot.sharedWith ?? []), ...(snapshot.public ? [PUBLIC] : [])].map((grantee) => ({
      Delete: deleteItem(table, shareKey(snapshot.snapshotId, grantee)),
    })),
  ];
}

/** Shares a completed snapshot: the grant on the record (while it is completed), and the share item in the grantee's index. */
export function shareItems(table: string, snapshot: Snapshot, grantee: Grantee): TransactItem[] {
  const id = granteeId(grantee);
  return [
    {
      Update: updateItem(
        table,
        snapshotKey(snapshot.snapshotId),
        grantee === 'public' ? { set: { public: true } } : { add: { sharedWith: new Set([id]) } },
        equals('state', 'completed'),
      ),
    },
    {
      Put: putItem(table, {
        ...shareKey(snapshot.snapshotId, id),
        type: 'share',
        snapshotId: snapshot.snapshotId,
        ownerAccountId: snapshot.accountId,
        grantee: id,
        gsi1pk: sharedWithIndex(id),
        gsi1sk: createdOrder(snapshot.createdAt, snapshot.snapshotId),
      }),
    },
  ];
}

/** Takes a grant back: off the record (if it exists), and its share item. */
export function unshareItems(table: string, snapshotId: string, grantee: Grantee): TransactItem[] {
  const id = granteeId(grantee);
  return [
    {
      Update: updateItem(
        table,
        snapshotKey(snapshotId),
        grantee === 'public' ? { set: { public: null } } : { delete: { sharedWith: new Set([id]) } },
        exists('pk'),
      ),
    },
    { Delete: deleteItem(table, shareKey(snapshotId, id)) },
  ];
}
