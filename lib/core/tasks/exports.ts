import { BLOCK_SIZE } from '../format/blocks.ts';
import { DISK_FORMATS, type DiskFormat } from '../format/disk-format.ts';
import { decodeManifest, type Manifest, type ManifestEntry } from '../format/manifest.ts';
import { planQcow2 } from '../format/qcow2.ts';
import { readSegmentBlock } from '../format/segment.ts';
import { planVsnap, type VsnapLayout } from '../format/vsnap.ts';
import { DEFAULT_QUOTA, type QuotaLimits } from '../identity/accounts.ts';
import { type Caller, requirePermission } from '../identity/identity.ts';
import type { Compressor } from '../ports/codec.ts';
import { multipartPartSize, ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import type { WorkQueue } from '../ports/queue.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import type { Page } from '../shared/pagination.ts';
import { DEFAULT_LEASE_MS, type SnapshotService } from '../snapshots/snapshot-service.ts';
import type { Export, ExportRepository } from './export-records.ts';
import { type PartKind, type PartOutcome, PartRunner, type PartTally } from './part-runner.ts';
import { systemCaller } from './parts.ts';
import { coalesceRanges, RUN_BYTES, readRunsInOrder, sharedRunBuffers } from './ranged-reads.ts';

export type { Export, ExportRepository, ExportState } from './export-records.ts';

export interface ExportServiceOptions {
  exports: ExportRepository;
  snapshots: SnapshotService;
  objects: ObjectStore;
  queue: WorkQueue;
  clock: Clock;
  region: string;
  compressor: Compressor;
  /** Bytes per part (a whole number of blocks, at least 5 MiB: S3's smallest part); grown for objects that would need more than 10,000 parts. */
  partSize?: number;
  /** Buckets besides the region's that exports may be written to (the deployment must be allowed to). */
  buckets?: readonly string[];
  /** A store writing the given bucket. */
  objectsIn?: (bucket: string) => ObjectStore;
  /** The account's limits in this region (its exports count in its stored bytes and in flight). */
  limits?: (accountId: string) => Promise<QuotaLimits>;
  /** The workers' lease (see {@link Export.leaseUntil}); the snapshots' by default. */
  leaseMs?: number;
  /** Ranged GETs of a part in flight (each up to `runBytes`). */
  readConcurrency?: number;
  /** Longest ranged GET: neighbouring blocks of a segment are read together up to this size. */
  runBytes?: number;
}

/** Presigned export URLs live 1 hour unless asked, and at most 7 days (SigV4's limit). */
export const DEFAULT_URL_SECONDS = 3600;
export const MAX_URL_SECONDS = 7 * 24 * 3600;
const DAY_MS = 24 * 3600 * 1000;
/** Exports are deleted this long after they are made unless asked otherwise, and live at most a year. */
export const DEFAULT_EXPORT_KEEP_MS = 30 * DAY_MS;
export const MAX_EXPORT_KEEP_MS = 365 * DAY_MS;
/** A pending export not completed in this time is failed by the reaper. */
const EXPORT_TIMEOUT_MS = 6 * 3600 * 1000;
const MIN_PART = 5 * 1024 * 1024;

/**
 * Exports: a completed snapshot the caller may read, written as one object (`vsnap`, `raw` or
 * `qcow2`) by workers, one multipart part each, with bounded memory: the part (64 MiB by default)
 * plus `readConcurrency` + 1 ranged reads of up to `runBytes` (4 + 1 × 8 MiB), neighbouring blocks of
 * a segment read with one GET. A part's upload
 * is idempotent (uploading it again replaces it), so a crashed worker's part is redone alone.
 */
export class ExportService {
  readonly #o: Required<ExportServiceOptions>;
  readonly #runner: PartRunner<Export, ExportTally>;

  constructor(options: ExportServiceOptions) {
    this.#o = {
      partSize: 64 * 1024 * 1024,
      readConcurrency: 4,
      runBytes: RUN_BYTES,
      buckets: [],
      limits: async () => DEFAULT_QUOTA,
      leaseMs: DEFAULT_LEASE_MS,
      objectsIn: () => {
        throw new VolsnapError('internal', 'This deployment writes exports to its own bucket only.');
      },
      ...options,
    };
    const blocks = Math.floor(this.#o.partSize / BLOCK_SIZE);
    this.#o.partSize = Math.max(Math.ceil(MIN_PART / BLOCK_SIZE), blocks) * BLOCK_SIZE;
    this.#runner = new PartRunner(this.#kind());
  }

  async start(
    caller: Caller,
    snapshotId: string,
    format: DiskFormat,
    target: { bucket?: string; prefix?: string; keepForMs?: number } = {},
  ): Promise<Export> {
    requirePermission(caller, 'snapshot:export');
    const keepForMs = target.keepForMs ?? DEFAULT_EXPORT_KEEP_MS;
    if (!Number.isInteger(keepForMs) || keepForMs < 60_000 || keepForMs > MAX_EXPORT_KEEP_MS) {
      throw new VolsnapError(
        'request.invalid',
        'An export is kept from 1 minute to 365 days (--keep-for); it is deleted after that.',
      );
    }
    if (target.bucket !== undefined && !this.#o.buckets.includes(target.bucket)) {
      throw new VolsnapError(
        'request.invalid',
        `Exports cannot be written to bucket ${target.bucket}. ${this.#o.buckets.length > 0 ? `Allowed: ${this.#o.buckets.join(', ')}.` : 'This deployment allows only its own bucket.'}`,
      );
    }
    const prefix = validateExportPrefix(target.prefix ?? '');
    if (!DISK_FORMATS.includes(format)) {
      throw new VolsnapError(
        'request.invalid',
        `Format '${format}' is not one of ${DISK_FORMATS.join(', ')}.`,
      );
    }
    const snapshot = await this.#o.snapshots.get(caller, snapshotId);
    if (snapshot.state !== 'completed') {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is ${snapshot.state}; only completed snapshots can be exported.`,
        { details: { snapshotId, state: snapshot.state } },
      );
    }
    const manifest = await this.#manifest(snapshotId);
    const size =
      format === 'raw'
        ? manifest.volumeSize
        : format === 'qcow2'
          ? planQcow2(manifest).totalSize
          : this.#layout(manifest, snapshot).totalSize;
    // At most 10,000 parts (S3's limit): parts grow with the object, whole blocks, up to 5 GiB.
    const partSize = multipartPartSize(size, this.#o.partSize, BLOCK_SIZE);
    if (partSize === undefined) {
      throw new VolsnapError(
        'request.invalid',
        `A ${format} export of snapshot ${snapshotId} would be ${size} bytes, above S3's 5 TiB object limit.${format === 'raw' ? ' Export it as vsnap or qcow2, which store only its data.' : ''}`,
      );
    }
    const exportId = newId('export');
    // In the region's own bucket an export stays in the account's export area, prefix or not: the
    // bucket's other prefixes (segments, manifests, uploads, images) belong to the service and to
    // other accounts. Only an operator-allowed bucket of the caller's takes the prefix as it is.
    const key =
      target.bucket === undefined
        ? ObjectLayout.export(caller.accountId, `${prefix}${exportId}`, format)
        : `${prefix}${exportId}.${format}`;
    const store = this.#store(target.bucket);
    const record: Export = {
      exportId,
      accountId: caller.accountId,
      snapshotId,
      format,
      state: 'pending',
      progress: 0,
      region: this.#o.region,
      ...(target.bucket !== undefined ? { bucket: target.bucket } : {}),
      key,
      size,
      parts: Math.max(1, Math.ceil(size / partSize)),
      partSize,
      uploadId: await store.createMultipart(key),
      createdAt: isoTime(this.#o.clock.now()),
      deadline: isoTime(this.#o.clock.now() + EXPORT_TIMEOUT_MS),
      expiresAt: isoTime(this.#o.clock.now() + keepForMs),
      leaseUntil: isoTime(this.#o.clock.now() + this.#o.leaseMs),
      leaseParts: 0,
      dispatches: 0,
    };
    // Its full size is reserved before a byte is written (a raw export of a sparse volume writes it all).
    await this.#o.exports.create(record, await this.#o.limits(caller.accountId)).catch(async (error) => {
      await store.abortMultipart(key, record.uploadId).catch(() => {});
      throw error;
    });
    // Retention policies leave a snapshot being exported alone until the export ends.
    await this.#o.snapshots.hold(snapshotId, exportId, record.deadline ?? record.createdAt);
    for (let part = 0; part < record.parts; part++)
      await this.#o.queue.send({ kind: 'export.part', exportId, part });
    return record;
  }

  /** The caller's export, or `export.notFound` (also for other accounts' exports, and deleted ones). */
  async get(caller: Caller, exportId: string): Promise<Export> {
    const found = isId('export', exportId) ? await this.#o.exports.get(exportId) : undefined;
    if (!found || found.accountId !== caller.accountId || found.deletedAt)
      throw new VolsnapError('export.notFound', `No export ${exportId} in this account and region.`, {
        details: { exportId },
      });
    return found;
  }

  /** The caller's exports, newest first; deleted ones (their cleanup still under way) are not shown. */
  async list(caller: Caller, page: { limit: number; nextToken?: string }): Promise<Page<Export>> {
    const found = await this.#o.exports.list(caller.accountId, page);
    return { ...found, items: found.items.filter((record) => !record.deletedAt) };
  }

  /** A presigned GET URL of a completed export's object: ranged GETs work; it dies with the export. */
  async url(
    caller: Caller,
    exportId: string,
    expiresInSeconds = DEFAULT_URL_SECONDS,
  ): Promise<{ url: string; expiresInSeconds: number; size: number; format: DiskFormat }> {
    requirePermission(caller, 'snapshot:export');
    const found = await this.get(caller, exportId);
    if (found.state !== 'completed') {
      throw new VolsnapError('export.invalidState', `Export ${exportId} is ${found.state}, not completed.`, {
        details: { exportId, state: found.state },
      });
    }
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_URL_SECONDS) {
      throw new VolsnapError('request.invalid', `A URL lives 1 second to 7 days (${MAX_URL_SECONDS} s).`);
    }
    return {
      url: await this.#store(found.bucket).presignGet(found.key, expiresInSeconds),
      expiresInSeconds,
      size: found.size,
      format: found.format,
    };
  }

  /**
   * Deletes the export, in any state, at once for its owner: it is marked deleted (404 from then on,
   * and workers stop), then its object and unfinished upload are removed and its record goes. When
   * the store refuses that cleanup (an abort S3 does not answer), the delete still succeeds and the
   * reaper finishes it ({@link finishDeletion}); meanwhile the record keeps counting its bytes.
   */
  async delete(caller: Caller, exportId: string): Promise<void> {
    requirePermission(caller, 'snapshot:export');
    let found = await this.get(caller, exportId);
    let marked: Export | undefined;
    // A worker may move it out of `pending` meanwhile: marked from the state read again.
    for (let attempt = 0; !marked && attempt < 5; attempt++) {
      if (attempt > 0) found = await this.get(caller, exportId);
      marked = await this.#o.exports.transition(exportId, [found.state], found.state, {
        deletedAt: isoTime(this.#o.clock.now()),
      });
    }
    if (!marked) throw new VolsnapError('internal', `Export ${exportId} kept changing state; retry.`);
    await this.finishDeletion(marked).catch(() => {
      // The store refused: the reaper retries.
    });
  }

  /**
   * Removes what a deleted export holds: its unfinished upload (unless `skipAbort`: the bucket's
   * lifecycle rule aborted it already), its object, its hold on the snapshot, then its record.
   * Idempotent; throws if the store refuses a step (the record stays, for the reaper to retry).
   */
  async finishDeletion(record: Export, options: { skipAbort?: boolean } = {}): Promise<void> {
    const store = this.#store(record.bucket);
    if (record.state === 'pending' && !options.skipAbort)
      await store.abortMultipart(record.key, record.uploadId);
    await store.delete(record.key);
    await this.#o.snapshots.release(record.snapshotId, record.exportId);
    await this.#o.exports.remove(record.exportId);
  }

  /**
   * Writes part `part`; the worker finishing the last part joins them. A source snapshot gone
   * meanwhile, or a corrupt block, puts the export in `error`; transient failures throw (redelivery).
   */
  runPart(exportId: string, part: number): Promise<PartOutcome> {
    return this.#runner.runPart(exportId, part);
  }

  /** Exports as a kind of part work: a part's checkpoint is its uploaded multipart part and ETag. */
  #kind(): PartKind<Export, ExportTally> {
    return {
      load: async (exportId) => {
        const record = await this.#o.exports.get(exportId);
        return record?.state === 'pending' && !record.deletedAt ? record : undefined;
      },
      parts: (record) => record.parts,
      isCheckpointed: (record, part) => record.partsDone?.includes(part) ?? false,
      renew: (record) =>
        this.#o.exports.extendLease(record.exportId, isoTime(this.#o.clock.now() + this.#o.leaseMs)),
      work: async (record, part) => {
        const body = await this.#partBytes(record, part);
        const etag = await this.#store(record.bucket).uploadPart(record.key, record.uploadId, part + 1, body);
        const etags = await this.#o.exports.completePart(record.exportId, part, etag);
        return etags && { done: etags.size, etags };
      },
      // A worker that died after recording the last part's ETag, before joining the object: the
      // redelivered part (the reaper's) joins it with the ETags recorded.
      recount: async (record) => {
        const etags = await this.#o.exports.partETags(record.exportId);
        return etags && { done: etags.size, etags };
      },
      progress: async (record, progress) => {
        await this.#o.exports.transition(record.exportId, ['pending'], 'pending', { progress });
      },
      finish: (record, { etags }) => this.#finish(record, etags),
      fail: (record, reason) => this.fail(record, reason),
    };
  }

  /** Puts a pending export in `error` with the reason, aborts its upload and releases its snapshot. */
  async fail(record: Export, reason: string): Promise<void> {
    await this.#o.exports.transition(record.exportId, ['pending'], 'error', { stateReason: reason });
    await this.#store(record.bucket)
      .abortMultipart(record.key, record.uploadId)
      .catch(() => {});
    await this.#o.snapshots.release(record.snapshotId, record.exportId);
  }

  /** Deletes an export the expiry schedule found past its `expiresAt` (any state). Idempotent. */
  async expire(record: Export): Promise<void> {
    const store = this.#store(record.bucket);
    if (record.state === 'pending') await store.abortMultipart(record.key, record.uploadId).catch(() => {});
    await store.delete(record.key);
    await this.#o.snapshots.release(record.snapshotId, record.exportId);
    await this.#o.exports.remove(record.exportId);
  }

  async #finish(record: Export, etags: Map<number, string>): Promise<void> {
    const parts = [...etags].sort(([a], [b]) => a - b).map(([p, etag]) => ({ partNumber: p + 1, etag }));
    const store = this.#store(record.bucket);
    try {
      await store.completeMultipart(record.key, record.uploadId, parts);
    } catch (error) {
      // Joined already by an earlier delivery whose end the table did not take (it failed after
      // S3 joined the parts): the upload is gone (NoSuchUpload) and the object is there, whole.
      const joined = await store.head(record.key).catch(() => undefined);
      if (joined?.size !== record.size) throw error;
    }
    await this.#o.exports.transition(record.exportId, ['pending'], 'completed', {
      progress: 100,
      completedAt: isoTime(this.#o.clock.now()),
    });
    await this.#o.snapshots.release(record.snapshotId, record.exportId);
  }

  #store(bucket: string | undefined): ObjectStore {
    return bucket === undefined ? this.#o.objects : this.#o.objectsIn(bucket);
  }

  /** Bytes [part × partSize, …) of the export object, built from the snapshot's stored blocks. */
  async #partBytes(record: Export, part: number): Promise<Buffer> {
    const gone = (cause?: unknown) =>
      new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${record.snapshotId} was deleted (or is no longer shared) before the export had read it.`,
        { cause },
      );
    const snapshot = await this.#o.snapshots
      .get(systemCaller(record.accountId), record.snapshotId)
      .catch((cause) => {
        throw gone(cause);
      });
    // In the recycle bin it is deleted as far as its owner said: the export stops.
    if (snapshot.state !== 'completed') throw gone();
    const manifest = await this.#manifest(record.snapshotId);
    const start = part * record.partSize;
    const end = Math.min(record.size, start + record.partSize);
    const out = Buffer.alloc(end - start);
    // Neighbouring blocks of a segment are read with one ranged GET, a few runs ahead.
    const read = async (entries: { at: number; entry: ManifestEntry; decode: boolean }[]) => {
      const pieces = entries
        .map((wanted) => ({
          object: ObjectLayout.segment(snapshot.accountId, wanted.entry.segmentId),
          start: wanted.entry.offset,
          end: wanted.entry.offset + wanted.entry.storedLength,
          item: wanted,
        }))
        .sort((a, b) => (a.object < b.object ? -1 : a.object > b.object ? 1 : a.start - b.start));
      await readRunsInOrder(
        coalesceRanges(pieces, this.#o.runBytes),
        this.#o.readConcurrency,
        (run, into) => this.#o.objects.getRange(run.object, run.start, run.end, { into }),
        (piece, stored) => {
          const { at, entry, decode } = piece.item;
          // Every block is checked before it leaves: an export never carries a damaged block.
          const plain = readSegmentBlock(this.#o.compressor, { ...entry, plainLength: BLOCK_SIZE }, stored);
          // Copied out of the run's buffer, which a later run is read into.
          copyOverlap(decode ? plain : stored, at, out, start, end);
        },
        sharedRunBuffers,
      );
    };
    if (record.format === 'raw') {
      // The plain disk image, full length: zero blocks are the zeros `out` starts with.
      await read(
        manifest.entries
          .filter((e) => (e.blockIndex + 1) * BLOCK_SIZE > start && e.blockIndex * BLOCK_SIZE < end)
          .map((entry) => ({ at: entry.blockIndex * BLOCK_SIZE, entry, decode: true })),
      );
      return out;
    }
    if (record.format === 'qcow2') {
      // Metadata where the layout puts it; each non-zero block decoded into its data cluster.
      const image = planQcow2(manifest);
      for (const piece of image.metadata) copyOverlap(piece.bytes, piece.offset, out, start, end);
      await read(
        manifest.entries
          .map((entry) => ({ at: image.dataOffset.get(entry.blockIndex) as number, entry, decode: true }))
          .filter(({ at }) => at + BLOCK_SIZE > start && at < end),
      );
      return out;
    }
    const layout = this.#layout(manifest, snapshot);
    copyOverlap(layout.header, 0, out, start, end);
    copyOverlap(layout.index, layout.indexOffset, out, start, end);
    copyOverlap(layout.footer, layout.indexOffset + layout.index.length, out, start, end);
    const byIndex = new Map(manifest.entries.map((e) => [e.blockIndex, e]));
    await read(
      layout.entries
        .filter((e) => e.offset + e.storedLength > start && e.offset < end)
        .map((e) => ({ at: e.offset, entry: byIndex.get(e.blockIndex) as ManifestEntry, decode: false })),
    );
    return out;
  }

  #layout(
    manifest: Manifest,
    snapshot: {
      snapshotId: string;
      createdAt: string;
      name: string;
      description: string;
      tags: Record<string, string>;
      region: string;
    },
  ): VsnapLayout {
    return planVsnap(manifest, {
      createdAt: snapshot.createdAt,
      sourceRegion: snapshot.region,
      sourceSnapshotId: snapshot.snapshotId,
      name: snapshot.name,
      description: snapshot.description,
      tags: snapshot.tags,
    });
  }

  async #manifest(snapshotId: string): Promise<Manifest> {
    const bytes = await this.#o.objects.get(ObjectLayout.manifest(snapshotId));
    if (!bytes) {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} was deleted before the export had read it.`,
      );
    }
    return decodeManifest(bytes);
  }
}

/** An export's parts done: their ETags, which joining the object needs. */
interface ExportTally extends PartTally {
  etags: Map<number, string>;
}

const PREFIX_CHARACTERS = /^[A-Za-z0-9!_.*'()/-]*$/;

/**
 * An export's key prefix, or `request.invalid`: at most 512 of S3's safe key characters, relative
 * (no leading `/`), no empty segments (`//`) and no `.` or `..` segments, so that the key is the
 * same object on every S3 implementation and cannot climb out of where it is put.
 */
export function validateExportPrefix(prefix: string): string {
  const segments = prefix.split('/');
  // The part after the last `/` is the start of the object's name, not a folder: it may be empty.
  const folders = segments.slice(0, -1);
  const problem =
    prefix.length > 512
      ? 'is longer than 512 characters'
      : !PREFIX_CHARACTERS.test(prefix)
        ? "has characters other than letters, digits and !_.*'()/-"
        : prefix.startsWith('/')
          ? 'starts with /'
          : folders.some((s) => s === '')
            ? 'has an empty folder (//)'
            : segments.some((s) => s === '.' || s === '..')
              ? 'has a . or .. folder'
              : undefined;
  if (problem) {
    throw new VolsnapError(
      'request.invalid',
      `Export prefix '${prefix.slice(0, 100)}' is not a safe key prefix: it ${problem}. Use folders like nightly/db/.`,
    );
  }
  return prefix;
}

/** Copies the part of `piece` (placed at object offset `at`) that falls in [start, end) of `out`. */
function copyOverlap(piece: Uint8Array, at: number, out: Buffer, start: number, end: number): void {
  const from = Math.max(at, start);
  const to = Math.min(at + piece.length, end);
  if (from < to)
    Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength).copy(out, from - start, from - at, to - at);
}
