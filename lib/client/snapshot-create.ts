import { randomUUID } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import pLimit from 'p-limit';
import { BlockPool } from '../adapters/block-pool.ts';
import { createZstdCompressor } from '../adapters/zstd.ts';
import { BLOCK_SIZE } from '../core/format/blocks.ts';
import { decodeManifest, encodeManifest, type Manifest } from '../core/format/manifest.ts';
import { segmentCapacity } from '../core/format/segment.ts';
import { emptyWriteReport, SnapshotWriter, type WriteReport } from '../core/format/snapshot-writer.ts';
import { VolsnapError } from '../core/shared/errors.ts';
import type { CreatedSnapshot } from './api/snapshots.ts';
import type { UploadUrls } from './api/types.ts';
import { type ApiClient, ApiError, type SegmentUrl, type Snapshot, type Volume } from './api-client.ts';
import { dataCursor } from './data-extents.ts';
import { pollUntil, settle } from './poll.ts';
import { hashAhead, PooledBlockSink } from './pooled-blocks.ts';
import { getObject, putObject } from './transfer.ts';
import { UploadJournal } from './upload-journal.ts';

export interface CreateFromFileOptions {
  volumeId: string;
  file: string;
  name?: string;
  description?: string;
  tags?: Record<string, string>;
  clientToken?: string;
  /** A pending snapshot to write (one an agent took from the queue) instead of creating one. */
  snapshot?: Snapshot;
  /** Segment uploads in flight; memory is about (concurrency + 1) × 16 MiB. */
  concurrency?: number;
  /** Worker threads hashing and compressing blocks (default: the cores available, at most 4). */
  hashThreads?: number;
  onProgress?: (progress: { bytesRead: number; totalBytes: number; uploadedBytes: number }) => void;
  /**
   * Where to keep what this host uploaded for the snapshot (see UploadJournal), so that a rerun with
   * the same client token uploads only what is not stored yet. Without it, nothing is kept.
   */
  journalDir?: string;
  /** Hears of each transient failure waited out (and the wait) while completing: a progress note. */
  onRetry?: (error: ApiError, waitMs: number) => void;
}

export interface CreateFromFileResult {
  snapshot: Snapshot;
  report: WriteReport;
  /** Segments uploaded by this run, and those an earlier run with the same client token had stored. */
  segments: { uploaded: number; alreadyStored: number };
  /** Whether this call wrote the snapshot (false when a client token named a completed one). */
  written: boolean;
}

const URL_BATCH = 16;
/**
 * URLs asked for first, with the manifest key: a small change needs one segment, and every URL
 * not used is retired (a PUT) when the snapshot completes.
 */
const FIRST_URL_BATCH = 2;
/** The next batch is asked for when this few URLs are left, so that no upload waits for one. */
const URL_LOW_WATER = 2;
/** Landed segments reported in one request (the service's cap per request). */
const LANDED_BATCH = 100;

/**
 * Snapshots a file or block device into a volume: reads it in 512 KiB blocks, writes only blocks
 * that are non-zero and changed since the parent snapshot, packs them into segments uploaded
 * through write-once presigned URLs (bounded concurrency), then uploads the manifest to a fresh
 * write-once key and completes, waiting while the service verifies a large upload. A snapshot the
 * service finds unsound is in `error`: that is thrown, with its reason.
 */
export async function createSnapshotFromFile(
  api: ApiClient,
  options: CreateFromFileOptions,
): Promise<CreateFromFileResult> {
  const volume = await volumeFitting(api, options.volumeId, options.file);
  // Blocks are hashed and compressed on worker threads; the first ones are hashed while the service
  // creates the snapshot and the parent's manifest is fetched.
  const pool = new BlockPool({ threads: options.hashThreads });
  const ahead = hashAhead(options.file, volume.sizeBytes / BLOCK_SIZE, pool);
  try {
    return await snapshotFile(api, options, volume, pool, ahead);
  } finally {
    await ahead.stop();
    await pool.close();
  }
}

async function snapshotFile(
  api: ApiClient,
  options: CreateFromFileOptions,
  volume: Volume,
  pool: BlockPool,
  ahead: ReturnType<typeof hashAhead>,
): Promise<CreateFromFileResult> {
  // A token of its own when none is given: a create whose answer is lost is sent again with it,
  // and the service answers the snapshot that first one made, not a second snapshot.
  const request = {
    volumeId: options.volumeId,
    name: options.name,
    description: options.description,
    tags: options.tags,
    clientToken: options.clientToken ?? randomUUID(),
  };
  const askedAt = Date.now();
  const create = (upload?: { segments: number }) =>
    settle(
      () => api.createSnapshot({ ...request, ...(upload ? { upload } : {}) }),
      async () => undefined,
      { sleep: (ms) => api.wait(ms), onRetry: options.onRetry },
    );
  // The create answers the first upload URLs and the parent's manifest URL too: two requests fewer.
  const created: CreatedSnapshot =
    options.snapshot ??
    (await create({ segments: FIRST_URL_BATCH }).catch((error: unknown) => {
      // A service older than this CLI refuses the field (and created nothing): ask as before.
      if (error instanceof ApiError && error.code === 'request.invalid' && error.message.includes('"upload"'))
        return create();
      throw error;
    }));
  const { upload: firstUrls, parentManifest, ...snapshot } = created;
  if (snapshot.state === 'completed')
    return {
      snapshot,
      report: emptyWriteReport(),
      segments: { uploaded: 0, alreadyStored: 0 },
      written: false,
    };
  const journal = await storedSoFar(api, snapshot.snapshotId, options);

  let bytesRead = 0;
  const progress = () =>
    options.onProgress?.({ bytesRead, totalBytes: volume.sizeBytes, uploadedBytes: uploads.uploadedBytes });
  // Its first URLs and its manifest key came with the create, or are asked for now, while the
  // parent's manifest is read.
  const uploads = segmentUploads(api, snapshot.snapshotId, options.concurrency ?? 4, progress, journal, {
    urls: firstUrls,
    askedAt,
  });
  // Only a create the user may run again (a client token of theirs) tells the service what it stored.
  if (!options.clientToken) uploads.reporting = false;
  let parent: Manifest | undefined;
  if (snapshot.parentSnapshotId) {
    const url = parentManifest?.url ?? (await api.manifestUrl(snapshot.parentSnapshotId)).url;
    parent = decodeManifest(await getObject(url));
  }
  const writer = new SnapshotWriter({
    volumeSize: volume.sizeBytes,
    compressor: createZstdCompressor(),
    parent,
    ...uploads.sink,
  });
  // Blocks hashed ahead and found zero or unchanged are not hashed again.
  const sink = new PooledBlockSink(writer, pool, undefined, await ahead.stop());
  await readBlocks(options.file, volume, sink, (read, index) => {
    bytesRead += read;
    if (index % 64 === 0) progress();
  });
  await sink.finish();
  // Only the writer's last segment is left: no more URLs than it needs are asked for.
  uploads.finishing();
  const manifest = uploads.named(await writer.finish());
  await uploads.drain();
  const completed = await completeWith(
    api,
    snapshot,
    manifest,
    options,
    await uploads.manifestTarget(),
  ).catch(async (error) => {
    // A recorded segment the service does not have after all: the next run uploads everything.
    if (error instanceof ApiError && error.code === 'snapshot.segmentsMissing') await journal?.remove();
    throw error;
  });
  await journal?.remove();
  progress();
  return { snapshot: completed, report: writer.report, segments: uploads.counts, written: true };
}

/**
 * What is already stored for the snapshot, when the create may be a rerun (a client token, or a
 * journal of this host's): this host's journal, and what the service says runs from any host
 * reported. Undefined for a create that cannot be a rerun (nothing to skip, nothing to record).
 */
async function storedSoFar(
  api: ApiClient,
  snapshotId: string,
  options: Pick<CreateFromFileOptions, 'journalDir' | 'clientToken'>,
): Promise<UploadJournal | undefined> {
  if (!options.journalDir && !options.clientToken) return undefined;
  const journal = await UploadJournal.open(options.journalDir, snapshotId);
  if (options.clientToken)
    journal.learn((await api.uploadUrls(snapshotId, 0, { listStored: true })).stored ?? []);
  return journal;
}

/** The volume, once `file` is known readable and no larger than it. */
async function volumeFitting(api: ApiClient, volumeId: string, file: string): Promise<Volume> {
  const volume = await api.getVolume(volumeId);
  const info = await stat(file).catch((cause) => {
    throw new VolsnapError('request.invalid', `Cannot read ${file}: ${(cause as Error).message}`);
  });
  if (info.isFile() && info.size > volume.sizeBytes) {
    throw new VolsnapError(
      'request.invalid',
      `${file} is ${info.size} bytes, larger than volume ${volume.volumeId} (${volume.sizeBytes} bytes). Snapshot the right file, or register a larger volume.`,
    );
  }
  return volume;
}

/**
 * Where a snapshot's writer puts its segments: each through the next write-once URL the service
 * issued, `concurrency` uploads at once, unless `journal` says an earlier run stored the same bytes
 * for this snapshot (then that segment is named, not uploaded). The writer names segments with
 * ids of this run (`local-N`); `named` gives the finished manifest the ids they were stored under.
 * Each stored segment is reported to the service (one report in flight, or with the next request
 * for URLs), which checks it while the rest uploads; those stored once `drain` starts are left to
 * completion, which would read them as soon as a worker would. A report lost costs completion the
 * read of those segments, nothing else. `sink` is the writer's side; `drain` waits for the uploads
 * still in flight. Memory: the writer
 * waits in `store` for a free slot before filling another segment, and an uploaded segment's
 * buffer builds a later one.
 */
function segmentUploads(
  api: ApiClient,
  snapshotId: string,
  concurrency: number,
  onUploaded: () => void,
  journal: UploadJournal | undefined,
  first: FirstUrls,
) {
  const limit = pLimit(concurrency);
  const inFlight = new Set<Promise<void>>();
  const spareBuffers: Buffer[] = [];
  const stored = new Map<string, string>();
  const state = {
    uploadedBytes: 0,
    uploaded: 0,
    alreadyStored: 0,
    local: 0,
    reporting: journal !== undefined,
  };
  const landed = landedReports(api, snapshotId);
  const reportLanded = landed.report;
  const urlSupply = segmentUrls(api, snapshotId, landed, first);
  const nextUrl = urlSupply.next;
  // A report the service did not take only means a rerun uploads that segment again.
  const report = (segmentId: string, sha256: string, size: number) =>
    api.uploadUrls(snapshotId, 0, { stored: [{ segmentId, sha256, size }] }).then(
      () => {},
      () => {},
    );
  const nextSegmentId = async (): Promise<string> => `local-${state.local++}`;
  const store = async (localId: string, object: Buffer) => {
    const sha256 = journal ? UploadJournal.digest(object) : '';
    const earlier = journal?.storedAs(sha256, object.length);
    const recycle = () => spareBuffers.push(Buffer.from(object.buffer, object.byteOffset, segmentCapacity()));
    if (earlier) {
      stored.set(localId, earlier);
      reportLanded(earlier);
      state.alreadyStored++;
      state.uploadedBytes += object.length;
      recycle();
      onUploaded();
      return;
    }
    const entry = await nextUrl();
    stored.set(localId, entry.segmentId);
    // Wait for a free slot before the writer fills another segment: memory stays bounded.
    while (limit.activeCount + limit.pendingCount >= limit.concurrency) await Promise.race(inFlight);
    const upload = limit(async () => {
      await putObject(entry.url, object, { ifNoneMatch: true });
      // The service first, then this host's journal: what the journal holds, the service knows too.
      // Reported stored, it is checked as landed too: one report, not two.
      if (state.reporting) await report(entry.segmentId, sha256, object.length);
      else reportLanded(entry.segmentId);
      await journal?.record(entry.segmentId, sha256, object.length);
      state.uploadedBytes += object.length;
      state.uploaded++;
      // Uploaded: its buffer builds a later segment (fresh 16 MiB buffers cost page faults).
      recycle();
      onUploaded();
    });
    inFlight.add(upload);
    void upload.then(
      () => inFlight.delete(upload),
      () => {},
    );
  };
  const segmentBuffer = () => spareBuffers.pop() ?? Buffer.allocUnsafe(segmentCapacity());
  /** The manifest with every segment of this run under the id it is stored under. */
  const named = (manifest: Manifest): Manifest => {
    const rename = (id: string) => stored.get(id) ?? id;
    return {
      ...manifest,
      segments: new Map([...manifest.segments].map(([id, size]) => [rename(id), size])),
      entries: manifest.entries.map((entry) =>
        stored.has(entry.segmentId) ? { ...entry, segmentId: rename(entry.segmentId) } : entry,
      ),
    };
  };
  return {
    sink: { nextSegmentId, store, segmentBuffer },
    named,
    drain: async () => {
      landed.stop();
      await Promise.all(inFlight);
    },
    /** The manifest key asked for with the first URLs, while its URL has minutes to live. */
    manifestTarget: urlSupply.manifestTarget,
    /** No blocks are left to add: URLs are asked for only as the last segment needs them. */
    finishing: urlSupply.finishing,
    get uploadedBytes() {
      return state.uploadedBytes;
    },
    get counts() {
      return { uploaded: state.uploaded, alreadyStored: state.alreadyStored };
    },
    /** Whether each stored segment is reported to the service (for a rerun from any host). */
    set reporting(on: boolean) {
      state.reporting = on && journal !== undefined;
    },
  };
}

/** The first upload URLs with the manifest key, when the create answered them, and when it was asked. */
interface FirstUrls {
  urls?: UploadUrls;
  askedAt: number;
}

/**
 * The segment URLs of one upload: asked for a batch at a time, as needed, so each is used soon
 * after it is issued; the next batch is asked for before the last URL is used, carrying the landed
 * reports so far, until `finishing` (then one at a time, as the last segment needs it: every URL
 * issued and not used is one more write for the service to retire). The first batch comes with the
 * manifest's key (used if it is still fresh at the end), from the create's answer or asked for
 * here. One request for URLs at a time; a failed one fails the upload that waits for it.
 */
function segmentUrls(
  api: ApiClient,
  snapshotId: string,
  landed: ReturnType<typeof landedReports>,
  given: FirstUrls,
) {
  const urls: SegmentUrl[] = [];
  let asking: Promise<void> | undefined;
  const ask = (request: Promise<{ segments: SegmentUrl[] }>) => {
    const answered = request.then((answer) => {
      if (answer.segments.length === 0) throw new Error('the service issued no segment URLs');
      urls.push(...answer.segments);
    });
    asking = answered;
    answered.then(
      () => {
        if (asking === answered) asking = undefined;
      },
      () => {}, // kept in `asking`: the next upload that needs a URL throws it
    );
  };
  const askedAt = given.urls ? given.askedAt : Date.now();
  const first = given.urls
    ? Promise.resolve(given.urls)
    : api.uploadUrls(snapshotId, FIRST_URL_BATCH, { manifest: true });
  first.catch(() => {}); // thrown by the first upload, or asked again by completion
  ask(first);
  let finishing = false;
  const next = async (): Promise<SegmentUrl> => {
    while (urls.length === 0) {
      if (!asking) ask(api.uploadUrls(snapshotId, finishing ? 1 : URL_BATCH, { landed: landed.take() }));
      await asking;
    }
    const url = urls.shift() as SegmentUrl;
    if (urls.length <= URL_LOW_WATER && !asking && !finishing)
      ask(api.uploadUrls(snapshotId, URL_BATCH, { landed: landed.take() }));
    return url;
  };
  const manifestTarget = async (): Promise<ManifestTarget | undefined> => {
    const answer = await first.catch(() => undefined);
    const left = (answer?.expiresInSeconds ?? 0) * 1000 - (Date.now() - askedAt);
    return answer?.manifestUrl && answer.manifestUploadId && left > MANIFEST_URL_MARGIN_MS
      ? { manifestUrl: answer.manifestUrl, manifestUploadId: answer.manifestUploadId }
      : undefined;
  };
  return {
    next,
    manifestTarget,
    finishing: () => {
      finishing = true;
    },
  };
}

/**
 * Reports segments stored to the service, one request in flight (what lands meanwhile goes with the
 * next), or with a request for URLs (`take`). Only a shortcut: a report that fails leaves those
 * segments to completion. After `stop`, nothing more is reported.
 */
function landedReports(api: ApiClient, snapshotId: string) {
  const landed: string[] = [];
  let reporting = false;
  let stopped = false;
  const next = () => {
    const batch = landed.splice(0, LANDED_BATCH);
    if (batch.length === 0 || stopped) {
      reporting = false;
      return;
    }
    api.uploadUrls(snapshotId, 0, { landed: batch }).then(next, next);
  };
  return {
    report(segmentId: string) {
      if (stopped) return;
      landed.push(segmentId);
      if (reporting) return;
      reporting = true;
      next();
    },
    take: () => landed.splice(0, LANDED_BATCH),
    stop() {
      stopped = true;
    },
  };
}

/** A manifest key issued to this run, and its write-once URL. */
interface ManifestTarget {
  manifestUrl: string;
  manifestUploadId: string;
}
/** A manifest URL with less than this left to live is not used: a fresh one is asked for. */
const MANIFEST_URL_MARGIN_MS = 2 * 60 * 1000;

/**
 * Where {@link readBlocks} sends a volume's blocks, in index order (a SnapshotWriter, or a
 * PooledBlockSink). With `blockBuffer`, each block is read into a buffer of the sink's, which `add`
 * takes over; without, one buffer is read into again once `add` returns.
 */
export type BlockSink = Pick<SnapshotWriter, 'add' | 'addZeroBlocks'> & { blockBuffer?: () => Buffer };

/**
 * Feeds the writer every block of `file`, in order: a short last read is padded with zeros, and
 * past the end of a shorter file the volume reads as zeros. The holes of a sparse regular file are
 * not read: they are zero blocks, taken from the filesystem's map of the file (`SEEK_DATA`); a block
 * device is read whole. A file longer than the volume (a block device's size is only known by
 * reading) is refused. `onBlock` gets the bytes read or skipped and the index reached.
 */
export async function readBlocks(
  file: string,
  volume: Pick<Volume, 'volumeId' | 'sizeBytes'>,
  writer: BlockSink,
  onBlock: (bytesRead: number, index: number) => void,
): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const info = await handle.stat();
    const holes = info.isFile() ? await holeSkipper(handle, info.size, writer, onBlock) : undefined;
    const shared = writer.blockBuffer ? undefined : Buffer.alloc(BLOCK_SIZE);
    const bufferFor = () => shared ?? (writer.blockBuffer as () => Buffer)();
    const blocks = volume.sizeBytes / BLOCK_SIZE;
    let eof = false;
    let index = 0;
    for (; index < blocks && !eof; index++) {
      if (holes) {
        const next = holes.skipTo(index, blocks);
        if (next >= blocks) {
          index = blocks;
          break;
        }
        index = next;
      }
      const buffer = bufferFor();
      let filled = 0;
      while (!eof && filled < BLOCK_SIZE) {
        const { bytesRead: n } = await handle.read(
          buffer,
          filled,
          BLOCK_SIZE - filled,
          index * BLOCK_SIZE + filled,
        );
        if (n === 0) eof = true;
        filled += n;
      }
      if (filled === 0) break;
      // A short last read: the rest of the block reads as zeros.
      buffer.fill(0, filled);
      await writer.add(index, buffer);
      onBlock(filled, index);
    }
    // Past the end of a shorter file the volume reads as zeros.
    writer.addZeroBlocks(index, blocks - index);
    if (!eof) {
      const extra = await handle.read(Buffer.alloc(1), 0, 1, volume.sizeBytes);
      if (extra.bytesRead > 0) {
        throw new VolsnapError(
          'request.invalid',
          `${file} is larger than volume ${volume.volumeId} (${volume.sizeBytes} bytes).`,
        );
      }
    }
  } finally {
    await handle.close();
  }
}

/**
 * Skips the blocks of a sparse file that lie wholly in holes: `skipTo(index, blocks)` adds the zero
 * blocks from `index` up to the next block holding data and answers that block's index (`blocks`
 * when only holes follow). `undefined` when the filesystem cannot tell holes from data.
 */
async function holeSkipper(
  handle: Awaited<ReturnType<typeof open>>,
  fileSize: number,
  writer: BlockSink,
  onBlock: (bytes: number, index: number) => void,
): Promise<{ skipTo(index: number, blocks: number): number } | undefined> {
  const cursor = await dataCursor(handle, fileSize);
  if (!cursor) return undefined;
  // The end of the data range the read is in: blocks before it need no new lookup.
  let dataEnd = 0;
  return {
    skipTo(index, blocks) {
      if (index * BLOCK_SIZE < dataEnd) return index;
      const range = cursor.next(index * BLOCK_SIZE);
      const next = range ? Math.min(Math.floor(range.start / BLOCK_SIZE), blocks) : blocks;
      dataEnd = range?.end ?? Number.POSITIVE_INFINITY;
      if (next > index) {
        writer.addZeroBlocks(index, next - index);
        onBlock((next - index) * BLOCK_SIZE, next - 1);
      }
      return next;
    },
  };
}

/**
 * Uploads the manifest and completes the snapshot, waiting while workers verify it; a snapshot the
 * service finds unsound is thrown as `snapshot.manifestInvalid`.
 */
async function completeWith(
  api: ApiClient,
  snapshot: Snapshot,
  manifest: Manifest,
  options: Pick<CreateFromFileOptions, 'onRetry'>,
  early?: ManifestTarget,
): Promise<Snapshot> {
  // A manifest key of this run's own: a rerun of this snapshot uploads to another one.
  const target = early ?? (await api.uploadUrls(snapshot.snapshotId, 0, { manifest: true }));
  if (!target.manifestUrl || !target.manifestUploadId) throw new Error('the service issued no manifest URL');
  await putObject(target.manifestUrl, encodeManifest(manifest), { ifNoneMatch: true });
  const manifestUploadId = target.manifestUploadId;
  const sleep = (ms: number) => api.wait(ms);
  // An answer lost to a timeout or a reset (object storage stalled while the service read the
  // manifest) may hide a completion: the snapshot says what happened, and complete is idempotent.
  const answered = await settle(
    () => api.completeSnapshot(snapshot.snapshotId, manifestUploadId),
    async () => {
      const now = await api.getSnapshot(snapshot.snapshotId);
      return now.state !== 'pending' || now.leaseUntil ? now : undefined;
    },
    { sleep, onRetry: options.onRetry },
  );
  const completed = await pollUntil(
    () => api.getSnapshot(snapshot.snapshotId),
    (s) => s.state !== 'pending',
    { current: answered, sleep, onRetry: options.onRetry },
  );
  if (completed.state === 'error') {
    throw new ApiError(
      400,
      'snapshot.manifestInvalid',
      `Snapshot ${completed.snapshotId} failed verification: ${completed.stateReason ?? 'no reason given'}`,
    );
  }
  return completed;
}
