import type { SegmentRange } from '../format/restore-plan.ts';
import type { Caller } from '../identity/identity.ts';
import { isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import type { Page } from '../shared/pagination.ts';
import type { Tags } from '../shared/tags.ts';
import type { Volume } from '../volumes/volumes.ts';
import { SegmentChecks } from './segment-checks.ts';
import { SnapshotAccess, type SnapshotServiceOptions } from './snapshot-access.ts';
import { SnapshotCompletion } from './snapshot-completion.ts';
import { type SnapshotDiff, SnapshotDiffs } from './snapshot-diff.ts';
import { type CreateSnapshotInput, type DirectStart, SnapshotLifecycle } from './snapshot-lifecycle.ts';
import { type SnapshotDeletion, SnapshotRecords } from './snapshot-records.ts';
import { SnapshotSharing } from './snapshot-sharing.ts';
import { type ManifestUrl, type SegmentRangeUrl, SnapshotUrls, type UploadUrls } from './snapshot-urls.ts';
import type { Snapshot, SnapshotFilter, SnapshotScope } from './snapshots.ts';

export {
  type AccountDirectory,
  DEFAULT_AGENT_TIMEOUT_MS,
  DEFAULT_INLINE_VERIFY_BYTES,
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_DISPATCHES,
  DEFAULT_UPLOAD_TIMEOUT_MS,
  DEFAULT_VERIFY_SEGMENTS_PER_PART,
  MAX_URLS_PER_REQUEST,
  type SnapshotServiceOptions,
  SYSTEM_KEY_ID,
} from './snapshot-access.ts';
export type { SnapshotDiff } from './snapshot-diff.ts';
export type { CreateSnapshotInput, DirectStart } from './snapshot-lifecycle.ts';
export type { SnapshotDeletion } from './snapshot-records.ts';
export type { ManifestUrl, SegmentRangeUrl, SegmentUrl, UploadUrls } from './snapshot-urls.ts';

/**
 * Snapshot use cases. The CLI (or a worker) writes blocks into segments through presigned URLs;
 * this service names the segments, hands out the URLs, and completes a snapshot only when its
 * manifest is sound and every segment it names is stored and the account's: uploaded in this
 * snapshot's session, or already referenced by its parent.
 *
 * A façade: each use case lives in its own module of lib/core/snapshots (lifecycle, records,
 * sharing, URLs, completion, diff), all sharing one {@link SnapshotAccess}; the contracts are
 * documented there.
 */
export class SnapshotService {
  readonly #lifecycle: SnapshotLifecycle;
  readonly #records: SnapshotRecords;
  readonly #sharing: SnapshotSharing;
  readonly #urls: SnapshotUrls;
  readonly #completion: SnapshotCompletion;
  readonly #checks: SegmentChecks;
  readonly #diffs: SnapshotDiffs;
  readonly #access: SnapshotAccess;

  constructor(options: SnapshotServiceOptions) {
    const access = new SnapshotAccess(options);
    this.#access = access;
    this.#lifecycle = new SnapshotLifecycle(access);
    this.#records = new SnapshotRecords(access);
    this.#sharing = new SnapshotSharing(access);
    this.#urls = new SnapshotUrls(access);
    this.#completion = new SnapshotCompletion(access);
    this.#checks = new SegmentChecks(access);
    this.#diffs = new SnapshotDiffs(access);
  }

  /** {@link SnapshotLifecycle.create} */
  create(caller: Caller, input: CreateSnapshotInput): Promise<Snapshot> {
    return this.#lifecycle.create(caller, input);
  }

  /**
   * {@link create}, answering with what the writer asks for next: for a snapshot the caller is to
   * write now (`pending`, no workers' lease), `segments` upload URLs and a manifest key, as
   * {@link uploadUrls} with `manifest` issues them, and its parent's manifest URL
   * ({@link manifestUrl}). A shortcut only: where either is not given (another state, a parent
   * gone meanwhile), the writer asks as before. Idempotent as create; each call issues fresh URLs,
   * and those never used are retired when the snapshot leaves pending, like any.
   */
  async createForUpload(
    caller: Caller,
    input: CreateSnapshotInput,
    first: { segments: number },
  ): Promise<{ snapshot: Snapshot; upload?: UploadUrls; parentManifest?: ManifestUrl }> {
    const snapshot = await this.#lifecycle.create(caller, input);
    if (snapshot.state !== 'pending' || snapshot.leaseUntil) return { snapshot };
    const [upload, parentManifest] = await Promise.all([
      this.#urls.uploadUrls(caller, snapshot.snapshotId, first.segments, { manifest: true }),
      snapshot.parentSnapshotId
        ? this.#urls.manifestUrl(caller, snapshot.parentSnapshotId).catch((error: unknown) => {
            if (error instanceof VolsnapError && error.status === 404) return undefined;
            throw error;
          })
        : undefined,
    ]);
    return { snapshot, upload, ...(parentManifest ? { parentManifest } : {}) };
  }

  /** {@link SnapshotLifecycle.createCopy} */
  createCopy(
    caller: Caller,
    volume: Volume,
    input: Omit<CreateSnapshotInput, 'volumeId'>,
    copy: { from: NonNullable<Snapshot['copiedFrom']>; parts: number },
  ): Promise<Snapshot> {
    return this.#lifecycle.createCopy(caller, volume, input, copy);
  }

  /** {@link SnapshotLifecycle.createImport} */
  createImport(
    caller: Caller,
    volume: Volume,
    input: Omit<CreateSnapshotInput, 'volumeId'>,
    from: { importedFrom: NonNullable<Snapshot['importedFrom']>; parts: number },
  ): Promise<Snapshot> {
    return this.#lifecycle.createImport(caller, volume, input, from);
  }

  /** {@link SnapshotLifecycle.createDirect} */
  createDirect(
    caller: Caller,
    volume: Volume,
    input: Omit<CreateSnapshotInput, 'volumeId'>,
    direct: DirectStart,
  ): Promise<Snapshot> {
    return this.#lifecycle.createDirect(caller, volume, input, direct);
  }

  /** {@link SnapshotLifecycle.createScheduled} */
  createScheduled(
    caller: Caller,
    volume: Volume,
    input: Omit<CreateSnapshotInput, 'volumeId'>,
    agentTimeoutMs: number,
  ): Promise<Snapshot> {
    return this.#lifecycle.createScheduled(caller, volume, input, agentTimeoutMs);
  }

  /** {@link SnapshotLifecycle.start} */
  start(caller: Caller, snapshotId: string): Promise<Snapshot> {
    return this.#lifecycle.start(caller, snapshotId);
  }

  /** {@link SnapshotLifecycle.fail} */
  fail(caller: Caller, snapshotId: string, reason: string): Promise<Snapshot> {
    return this.#lifecycle.fail(caller, snapshotId, reason);
  }

  /** {@link SnapshotRecords.get} */
  get(caller: Caller, snapshotId: string): Promise<Snapshot> {
    return this.#records.get(caller, snapshotId);
  }

  /** {@link SnapshotRecords.list} */
  list(
    caller: Caller,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
    scope: SnapshotScope = 'own',
  ): Promise<Page<Snapshot>> {
    return this.#records.list(caller, filter, page, scope);
  }

  /** {@link SnapshotRecords.update} */
  update(
    caller: Caller,
    snapshotId: string,
    changes: { name?: string; description?: string; tags?: Tags },
  ): Promise<Snapshot> {
    return this.#records.update(caller, snapshotId, changes);
  }

  /** {@link SnapshotRecords.delete} */
  delete(caller: Caller, snapshotId: string): Promise<Snapshot | undefined> {
    return this.#records.delete(caller, snapshotId);
  }

  /** {@link SnapshotRecords.deleteReporting} */
  deleteReporting(caller: Caller, snapshotId: string): Promise<SnapshotDeletion> {
    return this.#records.deleteReporting(caller, snapshotId);
  }

  /** {@link SnapshotRecords.undelete} */
  undelete(caller: Caller, snapshotId: string): Promise<Snapshot> {
    return this.#records.undelete(caller, snapshotId);
  }

  /** {@link SnapshotRecords.purge} */
  purge(snapshot: Snapshot): Promise<void> {
    return this.#records.purge(snapshot);
  }

  /** {@link SnapshotSharing.hold} */
  hold(snapshotId: string, holder: string, until: string): Promise<void> {
    return this.#sharing.hold(snapshotId, holder, until);
  }

  /** {@link SnapshotSharing.release} */
  release(snapshotId: string, holder: string): Promise<void> {
    return this.#sharing.release(snapshotId, holder);
  }

  /** {@link SnapshotUrls.uploadUrls} */
  uploadUrls(
    caller: Caller,
    snapshotId: string,
    count: number,
    options: Parameters<SnapshotUrls['uploadUrls']>[3] = {},
  ): Promise<UploadUrls> {
    return this.#urls.uploadUrls(caller, snapshotId, count, options);
  }

  /** {@link SnapshotUrls.sourceForVolume} */
  sourceForVolume(caller: Caller, snapshotId: string): Promise<{ snapshotId: string; volumeSize: number }> {
    return this.#urls.sourceForVolume(caller, snapshotId);
  }

  /** {@link SnapshotUrls.manifestUrl} */
  manifestUrl(caller: Caller, snapshotId: string): Promise<ManifestUrl> {
    return this.#urls.manifestUrl(caller, snapshotId);
  }

  /** {@link SnapshotUrls.segmentUrls} */
  segmentUrls(
    caller: Caller,
    snapshotId: string,
    ranges: readonly SegmentRange[],
  ): Promise<{ ranges: SegmentRangeUrl[]; expiresInSeconds: number }> {
    return this.#urls.segmentUrls(caller, snapshotId, ranges);
  }

  /** {@link SnapshotCompletion.complete} */
  complete(
    caller: Caller,
    snapshotId: string,
    options: { manifestUploadId?: string } = {},
  ): Promise<Snapshot> {
    return this.#completion.complete(caller, snapshotId, options);
  }

  /**
   * A worker is on the pending server-side work `snapshotId` (it starts or finished a part): its
   * lease runs `leaseMs` from now, so the reaper sends its parts again only when no worker has
   * touched it for that long. A no-op for work without a lease; idempotent.
   */
  extendLease(snapshotId: string): Promise<void> {
    const { snapshots, clock, leaseMs } = this.#access.options;
    return snapshots.extendLease(snapshotId, isoTime(clock.now() + leaseMs));
  }

  /** {@link SnapshotCompletion.verifyPart} */
  verifyPart(snapshotId: string, part: number): Promise<'part' | 'completed' | 'error' | 'skipped'> {
    return this.#completion.verifyPart(snapshotId, part);
  }

  /** {@link SegmentChecks.check} */
  checkSegment(snapshotId: string, segmentId: string): Promise<'checked' | 'unsound' | 'skipped'> {
    return this.#checks.check(snapshotId, segmentId);
  }

  /** {@link SnapshotDiffs.diff} */
  diff(caller: Caller, fromId: string, toId: string): Promise<SnapshotDiff> {
    return this.#diffs.diff(caller, fromId, toId);
  }

  /** {@link SnapshotSharing.share} */
  share(caller: Caller, snapshotId: string, accountRef: string): Promise<Snapshot> {
    return this.#sharing.share(caller, snapshotId, accountRef);
  }

  /** {@link SnapshotSharing.unshare} */
  unshare(caller: Caller, snapshotId: string, accountRef: string): Promise<Snapshot> {
    return this.#sharing.unshare(caller, snapshotId, accountRef);
  }

  /** {@link SnapshotSharing.publish} */
  publish(caller: Caller, snapshotId: string): Promise<Snapshot> {
    return this.#sharing.publish(caller, snapshotId);
  }

  /** {@link SnapshotSharing.unpublish} */
  unpublish(caller: Caller, snapshotId: string): Promise<Snapshot> {
    return this.#sharing.unpublish(caller, snapshotId);
  }
}
