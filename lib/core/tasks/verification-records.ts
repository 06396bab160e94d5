import type { Page } from '../shared/pagination.ts';
import type { BlockFinding } from '../snapshots/snapshot-verify.ts';

export type VerificationState = 'pending' | 'completed' | 'error';

/** A bad block as a verification reports it: where it is in the volume and in its segment. */
export interface BadBlock extends Omit<BlockFinding, 'message'> {
  /** Where the block starts in the volume (blockIndex × block size). */
  volumeOffset: number;
  /** The segment's object key in the region's bucket. */
  segmentKey: string;
  /** What is wrong, in a sentence. */
  reason: string;
}

/** What a verification (or one of its parts) read, and what it found. */
export interface VerificationResult {
  segments: number;
  blocks: number;
  /** Stored bytes read. */
  bytes: number;
  /** Every bad block found; `badBlocks` lists the first {@link MAX_REPORTED_BAD_BLOCKS} of them. */
  badBlockCount: number;
  badBlocks: BadBlock[];
}

/** Bad blocks a verification's record names (the count covers them all): the record stays small. */
export const MAX_REPORTED_BAD_BLOCKS = 100;

/**
 * A re-read of every block of a completed snapshot on the server (`volsnap snapshot verify`, or the
 * daily scrub), by workers in parts: part `p` reads segments `[p × segmentsPerPart, (p+1) ×
 * segmentsPerPart)` of the manifest's segment list. It ends `completed` with its `result` (damage
 * found or not), or `error` with the reason when it could not be done.
 */
export interface Verification {
  verificationId: string;
  snapshotId: string;
  accountId: string;
  region: string;
  state: VerificationState;
  /** 0–100. */
  progress: number;
  stateReason?: string;
  /** Who asked: the snapshot's owner, or the scheduled scrub. */
  origin: 'request' | 'scrub';
  parts: number;
  segmentsPerPart: number;
  /** Stored bytes of the segments it reads (its progress is a share of them). */
  totalBytes: number;
  partsDone?: number[];
  createdAt: string;
  completedAt?: string;
  /** A pending verification not completed by then is failed by the reaper. */
  deadline: string;
  /** The workers' lease, as an export's (see `Export.leaseUntil`). */
  leaseUntil?: string;
  leaseParts?: number;
  dispatches?: number;
  result?: VerificationResult;
}

/**
 * Where verification records are kept (the region's table, or memory). Reads by id; the service
 * decides who sees what. Records expire by themselves some time after they end (the snapshot keeps
 * the last one's outcome in its `integrity`).
 */
export interface VerificationRepository {
  /** Stores a new verification; fails if its id exists. */
  create(record: Verification): Promise<void>;
  get(verificationId: string): Promise<Verification | undefined>;
  /** Marks part `part` done (twice counts once); the parts done, or undefined if no longer pending. */
  completePart(verificationId: string, part: number): Promise<number | undefined>;
  /** As `ExportRepository.renewLease`: only if the lease still is `expected`. */
  renewLease(
    verificationId: string,
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
  ): Promise<boolean>;
  /** Extends a pending verification's lease (a worker is on it); idempotent. */
  extendLease(verificationId: string, leaseUntil: string): Promise<void>;
  /** Moves it from one of `from` to `to` with `changes`; undefined if it was not in `from`. */
  transition(
    verificationId: string,
    from: readonly VerificationState[],
    to: VerificationState,
    changes?: Partial<Verification>,
  ): Promise<Verification | undefined>;
  /** Every verification of the region, a page at a time (for the reaper and the scrub). */
  listAll(page: { limit: number; nextToken?: string }): Promise<Page<Verification>>;
}
