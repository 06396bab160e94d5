import type { DiskFormat } from '../format/disk-format.ts';
import type { InFlightCounter, QuotaLimits, Usage } from '../identity/accounts.ts';
import { VolsnapError } from '../shared/errors.ts';
import type { Page } from '../shared/pagination.ts';
import { matchesTags, type Tags } from '../shared/tags.ts';

/**
 * A snapshot's life: `queued` (waiting for an agent) → `pending` (blocks being written) →
 * `completed` | `error`; a deleted completed snapshot waits in the recycle bin (`recycled`) until it
 * is undeleted (`completed` again) or purged; any of them → `deleting`. Every change is a
 * conditional write that names the states it may leave, so no two writers can both move a snapshot.
 */
export type SnapshotState = 'queued' | 'pending' | 'completed' | 'error' | 'recycled' | 'deleting';

export const SNAPSHOT_TRANSITIONS: Record<SnapshotState, readonly SnapshotState[]> = {
  queued: ['pending', 'error', 'deleting'],
  pending: ['completed', 'error', 'deleting'],
  completed: ['recycled', 'deleting'],
  error: ['deleting'],
  recycled: ['completed', 'deleting'],
  deleting: [],
};

/** States whose manifest is kept and whose blocks garbage collection must not reclaim. */
export const LIVE_MANIFEST_STATES: readonly SnapshotState[] = ['completed', 'recycled'];

/**
 * States maintenance lists by state (through a sparse index on a table): every state but `error`,
 * which is nobody's work. Queued and pending snapshots are due at their deadline, deleting ones at
 * their deletion, recycled ones at their purge; completed ones are never due (GC reads them all).
 */
export const MAINTAINED_STATES = ['queued', 'pending', 'deleting', 'recycled', 'completed'] as const;
export type MaintainedState = (typeof MAINTAINED_STATES)[number];

/** When a snapshot in `state` with these fields is due for maintenance (ISO time); undefined if not known. */
export function dueTimeOf(
  state: SnapshotState,
  fields: Partial<Pick<Snapshot, 'deadline' | 'deletedAt' | 'purgeAt' | 'createdAt'>>,
): string | undefined {
  switch (state) {
    case 'queued':
    case 'pending':
      return fields.deadline;
    case 'deleting':
      return fields.deletedAt ?? fields.createdAt;
    case 'recycled':
      return fields.purgeAt;
    case 'completed':
      return fields.createdAt;
    default:
      return undefined;
  }
}

/** States of a snapshot being written: each counts against a limit on work in flight. */
export const IN_FLIGHT_STATES: readonly SnapshotState[] = ['queued', 'pending'];

/** Which in-flight limit a snapshot being written counts against: copies and imports have their own. */
export function inFlightCounterOf(snapshot: Pick<Snapshot, 'copiedFrom' | 'importedFrom'>): InFlightCounter {
  return snapshot.copiedFrom
    ? 'copiesInFlight'
    : snapshot.importedFrom
      ? 'importsInFlight'
      : 'pendingSnapshots';
}

/** The limits a repository checks when it stores a snapshot (the rest of {@link QuotaLimits} optional). */
export type SnapshotLimits = Pick<QuotaLimits, 'maxSnapshots' | 'maxStoredBytes'> & Partial<QuotaLimits>;

export function canTransition(from: SnapshotState, to: SnapshotState): boolean {
  return SNAPSHOT_TRANSITIONS[from].includes(to);
}

/** How the blocks of a completed snapshot were written. */
export interface SnapshotStats {
  /** Non-zero blocks in the snapshot. */
  blockCount: number;
  /** Stored (compressed) bytes its manifest references, shared ones included. */
  storedBytes: number;
  /** Blocks and stored bytes written for this snapshot (the rest were reused from its parent). */
  newBlocks: number;
  newBytes: number;
  reusedBlocks: number;
  /** Zero blocks: part of the volume's size, never stored. */
  zeroBlocks: number;
}

export interface Snapshot {
  snapshotId: string;
  accountId: string;
  volumeId: string;
  /** The volume's size when the snapshot was taken: the snapshot's size. */
  volumeSize: number;
  blockSize: number;
  name: string;
  description: string;
  tags: Tags;
  state: SnapshotState;
  /** 0–100. */
  progress: number;
  /** Why the snapshot is in `error`. */
  stateReason?: string;
  /** The snapshot it is written against: unchanged blocks are its parent's. */
  parentSnapshotId?: string;
  region: string;
  createdAt: string;
  completedAt?: string;
  /** A pending snapshot not completed by then goes to `error` (the reaper enforces it). */
  deadline: string;
  stats?: SnapshotStats;
  /** For a snapshot written by several workers: how many parts it was split into. */
  parts?: number;
  /** Of those, the parts already written (each a checkpoint a resumed worker skips). */
  partsDone?: number[];
  /** For an import: where it came from (the URL's origin and path only: never its query, which may sign it). */
  importedFrom?: { source: string; format: DiskFormat; ref: string };
  /** For a copy: the snapshot it was copied from. */
  copiedFrom?: { region: string; snapshotId: string; accountId: string };
  /** For a snapshot of an instance's volume: the image it belongs to, and the group of snapshots taken with it. */
  imageId?: string;
  groupId?: string;
  /** The one point in time every snapshot of the group stands for. */
  takenAt?: string;
  /** Readable by every account (until unpublished, or the owner's account blocks public sharing). */
  public?: boolean;
  /** Accounts it is shared with (shown to its owner only). */
  sharedWith?: string[];
  /** In the recycle bin: when it was deleted, and when it will be purged for good. */
  deletedAt?: string;
  purgeAt?: string;
  /**
   * Work that reads this snapshot (a copy, an export) by holder id → until when (ISO). Retention
   * never deletes a held snapshot; a holder releases its hold when done, or it lapses.
   */
  holds?: Record<string, string>;
  /**
   * Server-side work (parts, image reads) carries a lease. When it lapses, the reaper renews it if
   * parts were finished since (`leaseParts` counts them at the last renewal), and otherwise sends the
   * unfinished parts again (`dispatches` counts those times) up to a bound, then fails the snapshot.
   */
  leaseUntil?: string;
  leaseParts?: number;
  dispatches?: number;
  /**
   * An upload being verified by workers (too large to verify in the completing request): the
   * staged manifest's key, and segments per part (`parts` of them; the last one done completes it).
   */
  verification?: { manifestUploadId?: string; segmentsPerPart: number };
  /** The outcome of the last re-read of its stored blocks (`volsnap snapshot verify`, the daily scrub). */
  integrity?: SnapshotIntegrity;
  /** For a snapshot written through the EBS direct API: its blocks are staged one by one. */
  direct?: DirectSession;
}

/** What a snapshot started with the EBS direct API's StartSnapshot carries until it is packed. */
export interface DirectSession {
  /** StartSnapshot's `Timeout`: the snapshot is cancelled after this long without a block written. */
  timeoutMinutes: number;
  /**
   * Set by CompleteSnapshot, checked when the staged blocks are packed: how many blocks were PUT
   * and, when given, the LINEAR aggregate checksum over their SHA-256 digests (base64).
   */
  completion?: { changedBlocksCount: number; checksum?: string };
}

/** What the last verification of a completed snapshot's stored blocks found (docs/formats.md, "Verification"). */
export interface SnapshotIntegrity {
  state: 'ok' | 'damaged';
  checkedAt: string;
  verificationId: string;
  badBlockCount: number;
  /** The first bad blocks (the verification's record names more). */
  badBlocks: { blockIndex: number; segmentId: string; problem: string }[];
}

/** Whether a hold on the snapshot is still in force at `nowIso`. */
export function isHeld(snapshot: Snapshot, nowIso: string): boolean {
  return Object.values(snapshot.holds ?? {}).some((until) => until > nowIso);
}

/** Whom a listing is about: the caller's own snapshots, those shared with it, or public ones. */
export type SnapshotScope = 'own' | 'shared' | 'public';

/** Who may also read a snapshot: an account id, or everyone. */
export type Grantee = { accountId: string } | 'public';

/** At most this many accounts per snapshot (sharing with more is what publishing is for). */
export const MAX_SHARES = 50;

export interface SnapshotFilter {
  volumeId?: string;
  state?: SnapshotState;
  name?: string;
  tags?: Tags;
}

/** Whether a snapshot passes a list filter (for stores that filter after reading). */
export function matchesFilter(snapshot: Snapshot, filter: SnapshotFilter): boolean {
  return (
    (!filter.volumeId || snapshot.volumeId === filter.volumeId) &&
    (!filter.state || snapshot.state === filter.state) &&
    (!filter.name || snapshot.name.startsWith(filter.name)) &&
    matchesTags(snapshot.tags, filter.tags)
  );
}

/** What idempotent creation remembers of a clientToken. */
export interface ClientTokenRecord {
  snapshotId: string;
  /** A digest of the request's parameters: the same token with other parameters is a conflict. */
  requestHash: string;
}

/**
 * Where snapshot records are kept. Implementations: DynamoDB and in memory, one contract suite.
 * Reads are by id (any account); the service decides who may see what.
 */
export interface SnapshotRepository {
  /**
   * Stores a new snapshot and counts it on its volume, atomically; with a client token, also
   * remembers the token. If the token is already known, stores nothing and returns its record.
   * Fails with `volume.notFound` if the volume is gone or not the snapshot's owner's, with
   * `quota.exceeded` (storing nothing) if the account is at `limits` in this region, and with
   * `quota.inFlight` if it is at the limit of snapshots being written of its kind
   * ({@link inFlightCounterOf}), or its volume at `maxPendingSnapshotsPerVolume`. The counts are
   * taken in the same atomic write as the snapshot: racing creates cannot both take the last place.
   */
  create(
    snapshot: Snapshot,
    clientToken?: { token: string; requestHash: string },
    limits?: SnapshotLimits,
  ): Promise<ClientTokenRecord | undefined>;
  get(snapshotId: string): Promise<Snapshot | undefined>;
  list(
    accountId: string,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Snapshot>>;
  /** Snapshots shared with an account, or public ones, newest first (by when they were taken). */
  listShared(
    grantee: Grantee,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Snapshot>>;
  /**
   * Lets `grantee` read a completed snapshot (atomically on the record and the grantee's listing);
   * returns the updated snapshot, or undefined if it is not completed (or gone). Idempotent.
   */
  share(snapshotId: string, grantee: Grantee): Promise<Snapshot | undefined>;
  /** Takes the grant back; idempotent. Returns the updated snapshot, or undefined if it is gone. */
  unshare(snapshotId: string, grantee: Grantee): Promise<Snapshot | undefined>;
  /** This region's counters of an account: snapshots and bytes they added. */
  usage(accountId: string): Promise<Usage>;
  /** The newest completed snapshot of a volume, if any: one read, however many others the volume has. */
  latestCompleted(volumeId: string): Promise<Snapshot | undefined>;
  /**
   * Moves a snapshot from one of `from` to `to` and applies `changes` (a field given as undefined is
   * removed); returns the updated snapshot, or undefined if it was not in one of `from` (someone else
   * moved it first). Completing with `stats` from `pending` adds its new bytes to the account's usage
   * in the same write. With `parent`, the move happens only if that snapshot is, at that instant, in
   * one of `parent.states` (undefined otherwise): a child completes only while the parent whose
   * blocks it inherits still keeps them, so garbage collection can trust what it reads. A move out
   * of `queued`/`pending` to another state releases the snapshot's in-flight counts in the same write.
   */
  transition(
    snapshotId: string,
    from: readonly SnapshotState[],
    to: SnapshotState,
    changes?: Partial<Snapshot>,
    parent?: { snapshotId: string; states: readonly SnapshotState[] },
  ): Promise<Snapshot | undefined>;
  /** Changes name, description or tags of an existing snapshot. */
  updateMetadata(
    snapshotId: string,
    changes: Pick<Partial<Snapshot>, 'name' | 'description' | 'tags'>,
  ): Promise<Snapshot | undefined>;
  /**
   * Removes the record, its shares and its counts (on its volume, unless the volume is gone: one in
   * the recycle bin outlives it; in usage), atomically.
   */
  remove(snapshot: Snapshot): Promise<void>;
  /**
   * Marks part `part` of a pending snapshot done; returns how many distinct parts are done (a part
   * marked twice counts once), or undefined if the snapshot is no longer pending.
   */
  completePart(snapshotId: string, part: number): Promise<number | undefined>;
  /**
   * Every snapshot of the region, of every account, one page at a time (for maintenance: garbage
   * collection, the reaper, expiry). Consistent: a snapshot that existed when the listing started
   * and still exists is in it.
   */
  listAll(page: { limit: number; nextToken?: string }): Promise<Page<Snapshot>>;
  /**
   * The snapshots in `state`, of every account, in due order ({@link dueTimeOf}, then id); with
   * `dueBefore`, only those due before it. Reads only snapshots in that state (a sparse index, not
   * the table): a listing's cost follows the work in that state, not the region's snapshots. Each
   * snapshot is read again before it is returned (it is in `state` and due now); one that entered
   * the state a moment ago may be missing (the index lags), so callers run again rather than rely
   * on one listing. Pages may hold fewer than `limit` items before the end.
   */
  listInState(
    state: MaintainedState,
    page: { limit: number; nextToken?: string },
    dueBefore?: string,
  ): Promise<Page<Snapshot>>;
  /** Pending snapshots whose lease lapsed before `before`, in lease order (as {@link listInState}). */
  listLapsed(before: string, page: { limit: number; nextToken?: string }): Promise<Page<Snapshot>>;
  /** Puts (or extends) a hold on a completed snapshot; false if it is not completed. Idempotent. */
  hold(snapshotId: string, holder: string, until: string): Promise<boolean>;
  /** Releases a hold; idempotent (a missing snapshot or hold is fine). */
  release(snapshotId: string, holder: string): Promise<void>;
  /**
   * Renews the lease of pending server-side work only if it still is `expected` (absent: undefined);
   * false if another reaper moved it first (so overlapping reapers never both dispatch). `claim`
   * fields are set in the same write (a completion claiming verification: only one wins).
   */
  renewLease(
    snapshotId: string,
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
    claim?: Required<Pick<Snapshot, 'verification' | 'parts' | 'deadline'>>,
  ): Promise<boolean>;
  /**
   * Extends the lease of pending work that has one to `leaseUntil` (a worker starting or finishing
   * a part: the work is alive). Unconditional on the lease's value, so a reaper that read the old
   * one loses its renewal and sends nothing; a no-op for work without a lease or no longer pending.
   * Idempotent.
   */
  extendLease(snapshotId: string, leaseUntil: string): Promise<void>;
  /** Records segments issued to a snapshot's upload session (they belong to it and its account). */
  addSessionSegments(snapshotId: string, segmentIds: readonly string[]): Promise<void>;
  sessionSegments(snapshotId: string): Promise<Set<string>>;
  /**
   * Issues upload keys to a client's session: segment ids (as {@link addSessionSegments}) and
   * manifest upload ids, counted on the session. Atomic on the counts: when they would pass
   * `limits`, records nothing and returns false (the counts only grow: a key once issued stays
   * counted). Not idempotent: a retried call counts again, which errs on the safe side.
   */
  issueSessionUploads(
    snapshotId: string,
    uploads: { segmentIds: readonly string[]; manifestUploadIds: readonly string[] },
    limits: { segments: number; manifests: number },
  ): Promise<boolean>;
  /** Manifest upload ids issued to a snapshot's session. */
  sessionManifestUploads(snapshotId: string): Promise<Set<string>>;
  /**
   * Records what a client reports it stored at segments of its session (what the bytes were, so
   * that a rerun with the same client token from any host can skip them). A segment not issued to
   * the session is ignored. Idempotent (a second report of a segment overwrites the first).
   */
  recordStoredSegments(snapshotId: string, stored: readonly StoredSegment[]): Promise<void>;
  /** The segments reported stored for a snapshot's session (any order), at most `limit` of them. */
  storedSegments(snapshotId: string, limit: number): Promise<StoredSegment[]>;
}

/** A segment a client stored for a pending snapshot, as it reported it: where, and what the bytes were. */
export interface StoredSegment {
  segmentId: string;
  /** SHA-256 of the segment object's bytes, hex. */
  sha256: string;
  size: number;
}

export function assertTransition(snapshot: Snapshot, to: SnapshotState): void {
  if (!canTransition(snapshot.state, to)) {
    throw new VolsnapError(
      'snapshot.invalidState',
      `Snapshot ${snapshot.snapshotId} is ${snapshot.state}; it cannot become ${to}.`,
      {
        details: { snapshotId: snapshot.snapshotId, state: snapshot.state },
      },
    );
  }
}
