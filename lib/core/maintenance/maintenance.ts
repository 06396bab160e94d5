import { decodeManifest } from '../format/manifest.ts';
import { type Caller, requireOperator } from '../identity/identity.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import type { WorkQueue } from '../ports/queue.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import {
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_DISPATCHES,
  type SnapshotService,
} from '../snapshots/snapshot-service.ts';
import { retireSession } from '../snapshots/snapshot-verify.ts';
import {
  LIVE_MANIFEST_STATES,
  type MaintainedState,
  type Snapshot,
  type SnapshotRepository,
  type SnapshotState,
} from '../snapshots/snapshots.ts';
import type { Export, ExportRepository, ExportService } from '../tasks/exports.ts';
import { forgetImportSource } from '../tasks/imports.ts';
import { deleteParts, failSnapshotWork } from '../tasks/parts.ts';
import type { Verification, VerificationRepository, VerificationService } from '../tasks/verifications.ts';
import { type LeasedWork, redispatchLapsed } from './leases.ts';
import { isServerWork, pages, unfinished, workOf } from './work.ts';

export { pages, workOf };

/** What garbage collection found and did. */
export interface GcReport {
  /** Segments listed, and those old enough to be considered (older than the grace period). */
  segmentsListed: number;
  segmentsConsidered: number;
  /** Segments a live snapshot (completed, in the recycle bin, or being written) references. */
  segmentsLive: number;
  segmentsDeleted: number;
  bytesReclaimed: number;
  /** Manifests and uploads of snapshots that no longer exist. */
  objectsDeleted: number;
  /** Accounts left alone because a live snapshot's manifest could not be read (never guess). */
  accountsSkipped: string[];
  graceMs: number;
}

export interface ReapReport {
  /** Pending snapshots past their deadline, now `error`, their partial data deleted. */
  snapshotsFailed: string[];
  /** Queued snapshots no agent took in time, now `error`. */
  queuedExpired: string[];
  /** Server-side snapshots and exports whose lease lapsed without progress: their unfinished parts sent again. */
  redispatched: string[];
  /** Pending exports past their deadline or out of attempts, now `error`, their uploads aborted. */
  exportsFailed: string[];
  /** Pending verifications past their deadline or out of attempts, now `error`. */
  verificationsFailed: string[];
  /** Deletions interrupted half-way (snapshots), or refused by the store (exports), finished. */
  deletionsFinished: string[];
  /** Unfinished multipart uploads older than the grace period, aborted. */
  uploadsAborted: number;
  /** What could not be done, and why (the run goes on). */
  notes: string[];
}

export interface ExpiryReport {
  /** Exports past their `expiresAt`, deleted with their objects. */
  exportsDeleted: string[];
  /** Snapshots whose recycle-bin retention ended, deleted for good. */
  snapshotsPurged: string[];
}

export interface MaintenanceOptions {
  snapshots: SnapshotRepository;
  service: SnapshotService;
  objects: ObjectStore;
  exports: ExportRepository;
  exportService: ExportService;
  /** Re-reads of stored snapshots under a lease, reaped like exports (none to reap without them). */
  verifications?: { records: VerificationRepository; service: VerificationService };
  queue: WorkQueue;
  clock: Clock;
  /**
   * Garbage younger than this is never deleted. Longer than any upload session (6 h) by default, so
   * clock skew between the store and the functions cannot matter.
   */
  gcGraceMs?: number;
  /** Lease of server-side work (see SnapshotService's `leaseMs`): the same for every kind. */
  leaseMs?: number;
  /** How many times in a row the reaper sends lapsed work again, without a part finished, before it fails it. */
  maxDispatches?: number;
  /** Unfinished multipart uploads older than this are aborted. */
  uploadGraceMs?: number;
}

const HOUR_MS = 3600 * 1000;
export const DEFAULT_GC_GRACE_MS = 24 * HOUR_MS;
/**
 * A deletion takes seconds; one still `deleting` this much later was interrupted, or its cleanup
 * was refused by the store: the reaper finishes it (finishing is idempotent, so overlapping the
 * deletion itself is harmless).
 */
const DELETING_STUCK_MS = 5 * 60 * 1000;

/**
 * The region's scheduled maintenance: garbage collection, the reaper, and expiry. Every run is
 * idempotent and safe when two overlap: each change is a conditional transition (the loser's is a
 * no-op), deleting something already deleted is harmless, and GC decides from facts that only grow
 * safer with time (a segment it saw unreferenced and old stays so).
 */
export class Maintenance {
  readonly #o: Required<Omit<MaintenanceOptions, 'verifications'>> &
    Pick<MaintenanceOptions, 'verifications'>;

  constructor(options: MaintenanceOptions) {
    this.#o = {
      gcGraceMs: DEFAULT_GC_GRACE_MS,
      leaseMs: DEFAULT_LEASE_MS,
      maxDispatches: DEFAULT_MAX_DISPATCHES,
      uploadGraceMs: 2 * 24 * HOUR_MS,
      ...options,
    };
  }

  /**
   * Mark and sweep. Lists the segments first, keeping those older than the grace period, then marks
   * every segment a live snapshot references: the manifests of completed and recycled snapshots,
   * the upload sessions of queued and pending ones. Anything considered and unmarked is deleted.
   * Listing before marking is what makes a concurrent snapshot safe: a segment it uploads after the
   * listing is not considered, and one uploaded before was issued to its session before that, so
   * the marking (which starts later) sees it, or sees the completed manifest naming it. The
   * snapshots are listed through an index that may lag; the bucket's manifests, listed last, are
   * what the marking finally trusts (a manifest not marked is read against the table by id).
   */
  async gc(options: { graceMs?: number } = {}): Promise<GcReport> {
    const graceMs = options.graceMs ?? this.#o.gcGraceMs;
    const cutoff = this.#o.clock.now() - graceMs;
    const report: GcReport = {
      segmentsListed: 0,
      segmentsConsidered: 0,
      segmentsLive: 0,
      segmentsDeleted: 0,
      bytesReclaimed: 0,
      objectsDeleted: 0,
      accountsSkipped: [],
      graceMs,
    };
    const candidates = new Map<string, number>();
    for await (const object of this.#o.objects.list('segments/')) {
      report.segmentsListed++;
      if (object.lastModified < cutoff) candidates.set(object.key, object.size);
    }
    const leftovers: string[] = [];
    // Manifests are listed after the marking (below), their old ones taken as leftovers there.
    for (const prefix of [
      'uploads/manifests/',
      'uploads/parts/',
      'uploads/blocks/',
      'uploads/digests/',
      'uploads/checks/',
    ]) {
      for await (const object of this.#o.objects.list(prefix))
        if (object.lastModified < cutoff) leftovers.push(object.key);
    }
    report.segmentsConsidered = candidates.size;

    const live = new Set<string>();
    const skipped = new Set<string>();
    const known = new Map<string, Snapshot['state']>();
    const marked = new Set<string>();
    const markManifest = async (snapshot: Snapshot) => {
      marked.add(snapshot.snapshotId);
      const bytes = await this.#o.objects.get(ObjectLayout.manifest(snapshot.snapshotId));
      if (bytes) {
        for (const segmentId of decodeManifest(bytes).segments.keys())
          live.add(ObjectLayout.segment(snapshot.accountId, segmentId));
      } else {
        // Gone since the listing (deleted meanwhile) is fine; still live without a manifest is not.
        const now = await this.#o.snapshots.get(snapshot.snapshotId);
        if (now && LIVE_MANIFEST_STATES.includes(now.state)) skipped.add(snapshot.accountId);
      }
    };
    for await (const snapshot of this.#inStates([...LIVE_MANIFEST_STATES, 'pending', 'queued'])) {
      known.set(snapshot.snapshotId, snapshot.state);
      if (LIVE_MANIFEST_STATES.includes(snapshot.state)) {
        await markManifest(snapshot);
      } else if (snapshot.state === 'pending' || snapshot.state === 'queued') {
        for (const segmentId of await this.#o.snapshots.sessionSegments(snapshot.snapshotId))
          live.add(ObjectLayout.segment(snapshot.accountId, segmentId));
        // What it may inherit: its parent's blocks, read now. A parent whose manifest is gone is
        // being deleted, and a child completes only while its parent still keeps its blocks.
        if (snapshot.parentSnapshotId) {
          const bytes = await this.#o.objects.get(ObjectLayout.manifest(snapshot.parentSnapshotId));
          if (bytes)
            for (const segmentId of decodeManifest(bytes).segments.keys())
              live.add(ObjectLayout.segment(snapshot.accountId, segmentId));
        }
      }
    }
    // A snapshot that completed while the marking ran (pending when listed, or not listed at all)
    // names the blocks it inherits from its parent, which may have been deleted before the marking
    // read the parent's manifest: a second listing marks the manifests of those.
    for await (const snapshot of this.#inStates(LIVE_MANIFEST_STATES)) {
      if (!marked.has(snapshot.snapshotId)) await markManifest(snapshot);
    }
    // Both listings read an index that lags the table: a snapshot that completed a moment ago, its
    // parent deleted since, may be in neither. Its manifest is in the bucket, whose listing is
    // consistent and comes after the completion: every manifest not marked yet is checked against
    // the table, read by id. Only those (garbage, or what the index has not caught up with) cost a read.
    for await (const object of this.#o.objects.list('manifests/')) {
      if (object.lastModified < cutoff) leftovers.push(object.key);
      const snapshotId = object.key.slice('manifests/'.length);
      if (marked.has(snapshotId)) continue;
      const snapshot = await this.#o.snapshots.get(snapshotId);
      if (snapshot) known.set(snapshotId, snapshot.state);
      if (snapshot && LIVE_MANIFEST_STATES.includes(snapshot.state)) await markManifest(snapshot);
    }

    for (const [key, size] of candidates) {
      const accountId = key.split('/')[1] ?? '';
      if (live.has(key)) {
        report.segmentsLive++;
        continue;
      }
      if (skipped.has(accountId)) continue;
      await this.#o.objects.delete(key);
      report.segmentsDeleted++;
      report.bytesReclaimed += size;
    }
    // Manifests and uploads whose snapshot is gone (or failed: its upload is no use any more).
    for (const key of leftovers) {
      // manifests/{id}, uploads/manifests/{id}[/{manifestUploadId}], uploads/parts/{id}/{part},
      // uploads/blocks/{id}/{part}/{index}, uploads/digests/{id}/{part}, uploads/checks/{id}/{segmentId}
      // A snapshot not listed (failed, being deleted, gone, or created since) is read by id: only
      // garbage costs a read, never the snapshots of the region.
      const snapshotId = key.split('/')[key.startsWith('manifests/') ? 1 : 2];
      const state = snapshotId
        ? (known.get(snapshotId) ?? (await this.#o.snapshots.get(snapshotId))?.state)
        : undefined;
      const keep = key.startsWith('manifests/')
        ? state !== undefined && state !== 'deleting' && state !== 'error'
        : state === 'pending' || state === 'queued';
      if (keep) continue;
      await this.#o.objects.delete(key);
      report.objectsDeleted++;
    }
    report.accountsSkipped = [...skipped].sort();
    return report;
  }

  /**
   * Ends work that will not end by itself: pending snapshots and exports past their deadline fail
   * (with the reason, their partial data deleted); queued snapshots no agent took fail; server-side
   * work whose lease lapsed without progress is sent again, a bounded number of times; deletions
   * interrupted half-way are finished; unfinished multipart uploads are aborted.
   */
  async reap(): Promise<ReapReport> {
    const nowMs = this.#o.clock.now();
    const now = isoTime(nowMs);
    const report: ReapReport = {
      snapshotsFailed: [],
      queuedExpired: [],
      redispatched: [],
      exportsFailed: [],
      verificationsFailed: [],
      deletionsFinished: [],
      uploadsAborted: 0,
      notes: [],
    };
    await this.#reapSnapshots(nowMs, report);
    for await (const record of pages((page) => this.#o.exports.listAll(page))) {
      if (record.deletedAt) {
        // Deleted by its owner, the store refused the cleanup then: done now, or noted and retried.
        await this.#o.exportService
          .finishDeletion(record, { skipAbort: record.createdAt < isoTime(nowMs - this.#o.uploadGraceMs) })
          .then(() => report.deletionsFinished.push(record.exportId))
          .catch((error: Error) =>
            report.notes.push(
              `Export ${record.exportId} is deleted; its cleanup is retried: ${error.message}`,
            ),
          );
      } else if (record.state === 'pending' && record.deadline && record.deadline < now) {
        await this.#o.exportService.fail(
          record,
          `It did not complete before its deadline (${record.deadline}).`,
        );
        report.exportsFailed.push(record.exportId);
      } else if (record.state === 'pending' && record.leaseUntil && record.leaseUntil < now) {
        const outcome = await this.#lapsed(this.#leasedExport(record), nowMs);
        if (outcome === 'redispatched') report.redispatched.push(record.exportId);
        if (outcome === 'failed') report.exportsFailed.push(record.exportId);
      }
    }
    await this.#reapVerifications(nowMs, report);
    try {
      for await (const upload of this.#o.objects.listIncompleteUploads('')) {
        if (upload.initiated < nowMs - this.#o.uploadGraceMs) {
          await this.#o.objects.abortMultipart(upload.key, upload.uploadId);
          report.uploadsAborted++;
        }
      }
    } catch (error) {
      report.notes.push(`Unfinished multipart uploads were not listed: ${(error as Error).message}`);
    }
    return report;
  }

  /**
   * Deletes exports past their expiry and purges snapshots whose recycle-bin retention ended. Reads
   * only those (the repositories' listings of what is due), however many the region keeps.
   */
  async expire(): Promise<ExpiryReport> {
    const now = isoTime(this.#o.clock.now());
    const report: ExpiryReport = { exportsDeleted: [], snapshotsPurged: [] };
    for await (const record of pages((page) => this.#o.exports.listExpired(now, page))) {
      await this.#o.exportService.expire(record);
      report.exportsDeleted.push(record.exportId);
    }
    for await (const snapshot of this.#due('recycled', now)) {
      await this.#o.service.purge(snapshot);
      report.snapshotsPurged.push(snapshot.snapshotId);
    }
    return report;
  }

  /**
   * The reaper's snapshots, each read from a listing of what is due (never every snapshot): queued
   * and pending ones past their deadline, pending ones whose lease lapsed, stuck deletions.
   */
  async #reapSnapshots(nowMs: number, report: ReapReport): Promise<void> {
    const now = isoTime(nowMs);
    for await (const snapshot of this.#due('queued', now)) {
      const failed = await this.#o.snapshots.transition(snapshot.snapshotId, ['queued'], 'error', {
        stateReason: `No agent took this queued snapshot before ${snapshot.deadline}: run \`volsnap agent --volume ${snapshot.volumeId}=<device or file>\` on the volume's host.`,
      });
      if (failed) report.queuedExpired.push(snapshot.snapshotId);
    }
    const late = async (snapshot: Snapshot) => {
      if (
        await this.#failPending(snapshot, `It did not complete before its deadline (${snapshot.deadline}).`)
      )
        report.snapshotsFailed.push(snapshot.snapshotId);
    };
    const seen = new Set<string>();
    for await (const snapshot of this.#due('pending', now)) {
      seen.add(snapshot.snapshotId);
      await late(snapshot);
    }
    for await (const snapshot of pages((page) => this.#o.snapshots.listLapsed(now, page))) {
      if (seen.has(snapshot.snapshotId)) continue;
      if (snapshot.deadline < now) {
        await late(snapshot);
        continue;
      }
      const outcome = await this.#lapsed(this.#leasedSnapshot(snapshot), nowMs);
      if (outcome === 'redispatched') report.redispatched.push(snapshot.snapshotId);
      if (outcome === 'failed') report.snapshotsFailed.push(snapshot.snapshotId);
    }
    for await (const snapshot of this.#due('deleting', isoTime(nowMs - DELETING_STUCK_MS))) {
      await this.#o.service.purge(snapshot);
      report.deletionsFinished.push(snapshot.snapshotId);
    }
  }

  /** A lapsed lease, as {@link redispatchLapsed} handles it with this region's bounds. */
  #lapsed(work: LeasedWork, nowMs: number): Promise<'redispatched' | 'failed' | 'lost'> {
    return redispatchLapsed(work, nowMs, this.#o);
  }

  /** Pending verifications past their deadline fail; those whose lease lapsed are sent again. */
  async #reapVerifications(nowMs: number, report: ReapReport): Promise<void> {
    const verifications = this.#o.verifications;
    if (!verifications) return;
    const now = isoTime(nowMs);
    for await (const record of pages((page) => verifications.records.listAll(page))) {
      if (record.state !== 'pending') continue;
      if (record.deadline < now) {
        const reason = `It did not complete before its deadline (${record.deadline}).`;
        if (await verifications.service.fail(record, reason))
          report.verificationsFailed.push(record.verificationId);
      } else if (record.leaseUntil && record.leaseUntil < now) {
        const outcome = await this.#lapsed(this.#leasedVerification(record), nowMs);
        if (outcome === 'redispatched') report.redispatched.push(record.verificationId);
        if (outcome === 'failed') report.verificationsFailed.push(record.verificationId);
      }
    }
  }

  /** A pending verification's lease, as {@link #lapsed} handles it. */
  #leasedVerification(record: Verification): LeasedWork {
    const verifications = this.#o.verifications as NonNullable<MaintenanceOptions['verifications']>;
    return {
      ...record,
      renew: (expected, lease) => verifications.records.renewLease(record.verificationId, expected, lease),
      messages: () =>
        unfinished(record.parts, record.partsDone).map((part) => ({
          kind: 'verification.part',
          verificationId: record.verificationId,
          part,
        })),
      fail: (reason) => verifications.service.fail(record, reason),
    };
  }

  /** A pending snapshot's lease, as {@link #lapsed} handles it. */
  #leasedSnapshot(snapshot: Snapshot): LeasedWork {
    return {
      ...snapshot,
      renew: (expected, lease) => this.#o.snapshots.renewLease(snapshot.snapshotId, expected, lease),
      messages: () => workOf(snapshot),
      fail: (reason) => this.#failPending(snapshot, reason),
    };
  }

  /** A pending export's lease, as {@link #lapsed} handles it: the kind's fail aborts its upload. */
  #leasedExport(record: Export): LeasedWork {
    return {
      ...record,
      renew: (expected, lease) => this.#o.exports.renewLease(record.exportId, expected, lease),
      messages: () =>
        unfinished(record.parts, record.partsDone).map((part) => ({
          kind: 'export.part',
          exportId: record.exportId,
          part,
        })),
      fail: async (reason) => {
        await this.#o.exportService.fail(record, reason);
        return (await this.#o.exports.get(record.exportId))?.state === 'error';
      },
    };
  }

  /**
   * Fails a pending snapshot and deletes what it wrote. Server-side work (a copy, an import, an
   * image snapshot) fails as its kind fails it (its segments, parts and staged manifest deleted,
   * an import's source forgotten); an upload (an agent's, or one being verified) has its session's
   * keys retired as tombstones instead, since an upload URL still alive must find its key taken.
   */
  async #failPending(snapshot: Snapshot, reason: string): Promise<boolean> {
    if (isServerWork(snapshot)) {
      await failSnapshotWork(this.#o, snapshot, reason);
      if (snapshot.importedFrom) await forgetImportSource(this.#o.objects, snapshot.importedFrom.ref);
      return (await this.#o.snapshots.get(snapshot.snapshotId))?.state === 'error';
    }
    const failed = await this.#o.snapshots.transition(snapshot.snapshotId, ['pending'], 'error', {
      stateReason: reason,
    });
    if (!failed) return false;
    await deleteParts(this.#o.objects, snapshot.snapshotId, snapshot.parts ?? 0);
    await retireSession(this.#o.objects, this.#o.snapshots, snapshot);
    return true;
  }

  /** Snapshots in `state` due before `before` (see SnapshotRepository.listInState). */
  #due(state: MaintainedState, before: string): AsyncIterable<Snapshot> {
    return pages((page) => this.#o.snapshots.listInState(state, page, before));
  }

  /** Every snapshot in these states, state after state (GC: proportional to live work, not to the region's snapshots). */
  async *#inStates(states: readonly SnapshotState[]): AsyncIterable<Snapshot> {
    for (const state of states as readonly MaintainedState[])
      yield* pages((page) => this.#o.snapshots.listInState(state, page));
  }
}

/** The scheduled jobs, each also runnable on demand by the operator (`volsnap admin run JOB`). */
export const MAINTENANCE_JOBS = ['gc', 'reaper', 'expiry', 'policies', 'scrub'] as const;
export type MaintenanceJob = (typeof MAINTENANCE_JOBS)[number];

export interface JobOptions {
  /** gc: a shorter grace period than the deployment's (the operator's call; 0 considers every segment). */
  graceMs?: number;
  /** policies: run every enabled policy now, due or not. */
  force?: boolean;
  /** policies: run this one policy now. */
  policyId?: string;
}

/** Runs a job for its schedule, or for the operator on demand; the report says what it did. */
export class MaintenanceJobs {
  constructor(
    private readonly maintenance: () => Maintenance,
    private readonly policies: () => { run(options: JobOptions): Promise<unknown> },
    /** The daily scrub (verifications of a sample of snapshots); a job that says so without it. */
    private readonly scrub?: () => Promise<unknown>,
  ) {}

  async run(caller: Caller | 'schedule', job: string, options: JobOptions = {}): Promise<unknown> {
    if (caller !== 'schedule')
      requireOperator(caller, `run the region's scheduled jobs (${job} is one: it runs on its own schedule)`);
    if (options.graceMs !== undefined && (!Number.isInteger(options.graceMs) || options.graceMs < 0)) {
      throw new VolsnapError(
        'request.invalid',
        'A grace period is a whole number of milliseconds, 0 or more.',
      );
    }
    switch (job) {
      case 'gc':
        return this.maintenance().gc(options);
      case 'reaper':
        return this.maintenance().reap();
      case 'expiry':
        return this.maintenance().expire();
      case 'policies':
        return this.policies().run(options);
      case 'scrub':
        if (!this.scrub) throw new VolsnapError('request.invalid', 'This region has no scrub wired.');
        return this.scrub();
      default:
        throw new VolsnapError(
          'request.invalid',
          `No job '${job}': run one of ${MAINTENANCE_JOBS.join(', ')}.`,
        );
    }
  }
}
