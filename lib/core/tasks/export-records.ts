import type { DiskFormat } from '../format/disk-format.ts';
import type { QuotaLimits } from '../identity/accounts.ts';
import type { Page } from '../shared/pagination.ts';

export type ExportState = 'pending' | 'completed' | 'error';

/** A snapshot written out as one object in the region's bucket, for download through presigned URLs. */
export interface Export {
  exportId: string;
  accountId: string;
  snapshotId: string;
  format: DiskFormat;
  state: ExportState;
  /** 0–100. */
  progress: number;
  stateReason?: string;
  region: string;
  /** The bucket the object is written to, when not the region's own. */
  bucket?: string;
  /** The object's key (in `bucket`, or the region's bucket), and its size once known. */
  key: string;
  size: number;
  /** Written in parts of `partSize` bytes, one worker each. */
  parts: number;
  partSize: number;
  uploadId: string;
  partsDone?: number[];
  createdAt: string;
  completedAt?: string;
  /** A pending export not completed by then is failed by the reaper (its upload aborted). */
  deadline?: string;
  /** When the export and its object are deleted (the expiry schedule does it). */
  expiresAt?: string;
  /**
   * The workers' lease, as a snapshot's (see `Snapshot.leaseUntil`): extended by every part a
   * worker starts or finishes; when it lapses the reaper sends the unfinished parts again
   * (`dispatches` times without a part finished, `leaseParts` counting those done at the last
   * renewal), then fails the export.
   */
  leaseUntil?: string;
  leaseParts?: number;
  dispatches?: number;
  /**
   * Deleted by its owner: the export answers 404 from then on, and what it still holds in the store
   * (the object, an unfinished upload) is removed, by the delete or, when the store refused, by the
   * reaper.
   */
  deletedAt?: string;
}

/**
 * Where export records are kept. Reads by id; the service decides who sees what. An export counts
 * in its account's usage from its creation: its whole `size` in the stored bytes (reserved before
 * a byte is written), and one export in flight while it is `pending`. Leaving `pending` gives back
 * the place in flight (to `error`, the bytes too: nothing is kept); removing gives back what is
 * left. Each count changes in the same atomic write as the record.
 */
export interface ExportRepository {
  /**
   * Stores a new export and its counts; with `limits`, fails with `quota.exceeded` if its size would
   * take the account's stored bytes past `maxStoredBytes`, or `quota.inFlight` at `maxExportsInFlight`,
   * storing nothing.
   */
  create(record: Export, limits?: Pick<QuotaLimits, 'maxStoredBytes' | 'maxExportsInFlight'>): Promise<void>;
  get(exportId: string): Promise<Export | undefined>;
  /** The account's exports, newest first. */
  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Export>>;
  /**
   * Records part `part`'s ETag and marks it done (a part done twice counts once, its last ETag
   * kept); returns the ETags of the parts done, or undefined if the export is no longer pending.
   */
  completePart(exportId: string, part: number, etag: string): Promise<Map<number, string> | undefined>;
  /**
   * The ETags of the parts done, as {@link completePart} returns them, or undefined if the export
   * is no longer pending: a redelivered last part joins the object with them.
   */
  partETags(exportId: string): Promise<Map<number, string> | undefined>;
  /**
   * Renews the lease of a pending export only if it still is `expected`; false if it moved first
   * (a worker extended it, or another reaper renewed it): overlapping reapers never both dispatch.
   */
  renewLease(
    exportId: string,
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
  ): Promise<boolean>;
  /** Extends a pending export's lease to `leaseUntil` (a worker is on it); idempotent. */
  extendLease(exportId: string, leaseUntil: string): Promise<void>;
  transition(
    exportId: string,
    from: readonly ExportState[],
    to: ExportState,
    changes?: Partial<Export>,
  ): Promise<Export | undefined>;
  /** Deletes the record and gives back what it counted; idempotent. */
  remove(exportId: string): Promise<void>;
  /**
   * Every export of the region, of every account, a page at a time (for the reaper). Reads exports
   * only (an index of them, not the table): every export is deleted at its expiry, so this follows
   * the exports kept, not the region's snapshots.
   */
  listAll(page: { limit: number; nextToken?: string }): Promise<Page<Export>>;
  /**
   * Exports whose `expiresAt` is before `before`, in expiry order, each read again before it is
   * returned (for expiry: it reads only what is due). Pages may hold fewer than `limit` items.
   */
  listExpired(before: string, page: { limit: number; nextToken?: string }): Promise<Page<Export>>;
}
