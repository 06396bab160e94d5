import { BLOCK_SIZE, isValidVolumeSize } from '../format/blocks.ts';
import type { DiskFormat } from '../format/disk-format.ts';
import { parseQcow2Header } from '../format/qcow2.ts';
import { DEFAULT_QUOTA, inFlightExceeded, type QuotaLimits } from '../identity/accounts.ts';
import { type Caller, requirePermission } from '../identity/identity.ts';
import type { Compressor } from '../ports/codec.ts';
import { multipartPartSize, ObjectLayout, type ObjectStore, S3_LIMITS } from '../ports/objects.ts';
import type { RemoteObject, RemoteOpener } from '../ports/remote.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import type { Tags } from '../shared/tags.ts';
import type { SnapshotService } from '../snapshots/snapshot-service.ts';
import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';
import type { Volume, VolumeRepository } from '../volumes/volumes.ts';
import { importBlocks, readVsnap } from './import-blocks.ts';
import { type PartOutcome, PartRunner } from './part-runner.ts';
import { PART_BLOCKS, snapshotPartKind } from './parts.ts';
import { RUN_BYTES } from './ranged-reads.ts';
import type { UploadSlots } from './uploads.ts';

export type { RemoteObject, RemoteOpener } from '../ports/remote.ts';

/** A file uploaded for import through {@link SnapshotImporter.createUpload}'s URLs. */
export interface UploadedFile {
  ref: string;
  uploadId: string;
  /** Each part's number and the ETag its PUT answered. */
  parts: { partNumber: number; etag: string }[];
}

export interface ImportInput {
  /** Where to read from: a URL, or a file uploaded beforehand (exactly one). */
  url?: string;
  upload?: UploadedFile;
  format: DiskFormat;
  /** For raw: the volume's size (a multiple of 512 KiB, at least the data's length). */
  sizeBytes?: number;
  name?: string;
  description?: string;
  tags?: Tags;
  clientToken?: string;
}

export interface SnapshotImporterOptions {
  open: RemoteOpener;
  snapshots: SnapshotRepository;
  volumes: VolumeRepository;
  objects: ObjectStore;
  service: SnapshotService;
  compressor: Compressor;
  clock: Clock;
  region: string;
  /** Open uploads, bounded per account by its limits' `maxOpenUploads` (unbounded without). */
  uploads?: UploadSlots;
  /** The account's limits in this region (the defaults without). */
  limits?: (accountId: string) => Promise<QuotaLimits>;
  /** Blocks per part: one queue message, one worker, one checkpoint each ({@link PART_BLOCKS} by default). */
  partBlocks?: number;
  readConcurrency?: number;
  /** Longest ranged GET (whole blocks): a raw image's ranges, runs of a vsnap's or a qcow2's blocks stored end to end. */
  rangeBytes?: number;
  /** Preferred part size of file uploads (grown as needed for 10,000 parts); part URLs per request. */
  uploadPartSize?: number;
  urlsPerRequest?: number;
}

/** A started file upload: its part size and count, and the first parts' presigned URLs (the rest are paged from `nextPart`). */
export interface UploadStart {
  ref: string;
  uploadId: string;
  partSize: number;
  partCount: number;
  parts: { partNumber: number; url: string }[];
  nextPart?: number;
  expiresInSeconds: number;
}

/**
 * Imports a snapshot from any URL that serves ranged GETs (a presigned URL of another deployment, of
 * any S3-compatible store, plain HTTPS): a new snapshot owned by the caller, of a new volume, and
 * independent of its source. Workers read it in parts, verify every block (vsnap: its SHA-256 and the
 * object's digests; raw: its length), and complete it through the usual verification. A bad source
 * ends the snapshot in `error` with the reason; nothing completed is left behind. A part reads
 * ranges of up to `rangeBytes` (a raw image's, or runs of a vsnap's or qcow2's blocks stored end to
 * end), `readConcurrency` ahead, while its segments are stored two at a time: memory per part is
 * (`readConcurrency` + 1) × `rangeBytes` plus three segments (defaults: about 90 MiB).
 */
export class SnapshotImporter {
  readonly #o: Required<Omit<SnapshotImporterOptions, 'uploads' | 'limits'>> &
    Pick<SnapshotImporterOptions, 'uploads' | 'limits'>;
  readonly #runner: PartRunner<Snapshot>;

  constructor(options: SnapshotImporterOptions) {
    this.#o = {
      partBlocks: PART_BLOCKS,
      readConcurrency: 4,
      rangeBytes: RUN_BYTES,
      uploadPartSize: 64 * 1024 * 1024,
      urlsPerRequest: UPLOAD_URLS_PER_REQUEST,
      ...options,
    };
    // The import's source is forgotten when it ends, completed or failed.
    this.#runner = new PartRunner(
      snapshotPartKind(this.#o, {
        owns: (snapshot) => snapshot.importedFrom !== undefined,
        write: async (snapshot, part) => {
          const from = importedFrom(snapshot);
          return importBlocks(this.#o, snapshot, await this.#remote(from.ref), from.format, part);
        },
        release: (snapshot) => forgetImportSource(this.#o.objects, importedFrom(snapshot).ref),
      }),
    );
  }

  /**
   * Starts uploading a file of `sizeBytes` (at most 5 TiB, S3's object limit) for import: a
   * multipart upload into the caller's upload area, in `partCount` parts of `partSize` bytes (5 MiB
   * to 5 GiB, at most 10,000 parts), with presigned URLs for the first parts (each names exactly
   * that part; at most {@link UPLOAD_URLS_PER_REQUEST}). Ask {@link uploadPartUrls} for the rest from
   * `nextPart`. PUT the parts, keep their ETags, then import with `upload`.
   */
  async createUpload(caller: Caller, sizeBytes: number): Promise<UploadStart> {
    requirePermission(caller, 'snapshot:import');
    const partSize =
      Number.isSafeInteger(sizeBytes) && sizeBytes > 0
        ? multipartPartSize(sizeBytes, this.#o.uploadPartSize, BLOCK_SIZE)
        : undefined;
    if (partSize === undefined) {
      throw new VolsnapError(
        'request.invalid',
        `A file to import is 1 byte to 5 TiB (${S3_LIMITS.maxObjectSize} bytes, S3's largest object); ${sizeBytes} is not. Import a larger disk from a URL as vsnap or qcow2, which store only its data.`,
      );
    }
    const ref = newId('request');
    const key = ObjectLayout.fileUpload(caller.accountId, ref);
    await this.#takeUploadSlot(caller.accountId, ref);
    const uploadId = await this.#o.objects.createMultipart(key);
    const partCount = Math.ceil(sizeBytes / partSize);
    const first = await this.uploadPartUrls(caller, ref, uploadId, 1, partCount);
    return { ref, uploadId, partSize, partCount, ...first };
  }

  /**
   * Presigned PUT URLs of parts `fromPart`, … of the caller's upload `ref` (at most
   * {@link UPLOAD_URLS_PER_REQUEST}, and none past `partCount`), and `nextPart` when more remain. A URL
   * names the caller's own upload area only: another account's ref or upload id yields URLs S3 refuses.
   */
  async uploadPartUrls(
    caller: Caller,
    ref: string,
    uploadId: string,
    fromPart: number,
    partCount: number = S3_LIMITS.maxParts,
  ): Promise<{ parts: { partNumber: number; url: string }[]; nextPart?: number; expiresInSeconds: number }> {
    requirePermission(caller, 'snapshot:import');
    if (!isId('request', ref))
      throw new VolsnapError('request.invalid', `'${ref}' is not an upload this API issued.`);
    const last = Math.min(partCount, S3_LIMITS.maxParts);
    if (
      !Number.isInteger(fromPart) ||
      fromPart < 1 ||
      fromPart > last ||
      typeof uploadId !== 'string' ||
      uploadId === ''
    ) {
      throw new VolsnapError(
        'request.invalid',
        `Ask for part URLs from a part number 1 to ${last}, with the upload's uploadId.`,
      );
    }
    const key = ObjectLayout.fileUpload(caller.accountId, ref);
    const to = Math.min(last, fromPart + this.#o.urlsPerRequest - 1);
    const expiresInSeconds = 6 * 3600;
    const parts = await Promise.all(
      Array.from({ length: to - fromPart + 1 }, async (_, i) => ({
        partNumber: fromPart + i,
        url: await this.#o.objects.presignUploadPart(key, uploadId, fromPart + i, expiresInSeconds),
      })),
    );
    return { parts, ...(to < last ? { nextPart: to + 1 } : {}), expiresInSeconds };
  }

  async start(caller: Caller, input: ImportInput): Promise<Snapshot> {
    requirePermission(caller, 'snapshot:import');
    if ((input.url === undefined) === (input.upload === undefined)) {
      throw new VolsnapError('request.invalid', 'Import from a url or an uploaded file: give exactly one.');
    }
    if (input.format !== 'vsnap' && input.format !== 'raw' && input.format !== 'qcow2') {
      throw new VolsnapError('request.invalid', `Format '${input.format}' is not one of vsnap, raw, qcow2.`);
    }
    let source: string;
    let remote: RemoteObject;
    let origin: SourceRef;
    if (input.url !== undefined) {
      source = describeSource(input.url);
      remote = await this.#o.open(input.url);
      origin = { url: input.url };
    } else {
      const upload = input.upload as UploadedFile;
      if (!isId('request', upload.ref))
        throw new VolsnapError('request.invalid', `'${upload.ref}' is not an upload this API issued.`);
      const key = ObjectLayout.fileUpload(caller.accountId, upload.ref);
      // Completing twice fails on S3: a retried import finds the object already whole.
      if (!(await this.#o.objects.head(key))) {
        await this.#o.objects.completeMultipart(key, upload.uploadId, upload.parts).catch((cause) => {
          throw new VolsnapError(
            'request.invalid',
            'The uploaded file could not be put together: upload every part, then import with the ETags their PUTs answered.',
            { cause },
          );
        });
      }
      // The file is whole: the upload is no longer open.
      await this.#o.uploads?.release(caller.accountId, upload.ref);
      source = `upload ${upload.ref}`;
      remote = await objectRemote(this.#o.objects, key);
      origin = { key };
    }
    try {
      return await this.#begin(caller, input, source, remote, origin);
    } catch (error) {
      // A refused import leaves nothing behind, an uploaded file included.
      if ('key' in origin) await this.#o.objects.delete(origin.key);
      throw error;
    }
  }

  async #begin(
    caller: Caller,
    input: ImportInput,
    source: string,
    remote: RemoteObject,
    origin: SourceRef,
  ): Promise<Snapshot> {
    let volumeSize: number;
    if (input.format === 'vsnap') {
      volumeSize = (await readVsnap(remote)).footer.volumeSize;
    } else if (input.format === 'qcow2') {
      const image = parseQcow2Header(await remote.range(0, Math.min(remote.size, 4096)));
      const needed = Math.ceil(image.size / BLOCK_SIZE) * BLOCK_SIZE;
      if (
        input.sizeBytes !== undefined &&
        (!isValidVolumeSize(input.sizeBytes) || input.sizeBytes < image.size)
      ) {
        throw new VolsnapError(
          'volume.invalidSize',
          `The qcow2 image's disk is ${image.size} bytes: give a size of at least ${needed}, a multiple of 512 KiB (or none).`,
        );
      }
      volumeSize = input.sizeBytes ?? needed;
    } else {
      if (input.sizeBytes === undefined) {
        throw new VolsnapError(
          'request.invalid',
          'A raw image needs the volume size (--size): at least the image length.',
        );
      }
      if (!isValidVolumeSize(input.sizeBytes)) {
        throw new VolsnapError(
          'volume.invalidSize',
          `A volume's size must be a positive multiple of ${BLOCK_SIZE} bytes (512 KiB), at most 64 TiB; ${input.sizeBytes} is not.`,
        );
      }
      if (remote.size > input.sizeBytes) {
        throw new VolsnapError(
          'request.invalid',
          `The image is ${remote.size} bytes, larger than the size given (${input.sizeBytes}). Give a size of at least ${Math.ceil(remote.size / BLOCK_SIZE) * BLOCK_SIZE}.`,
        );
      }
      volumeSize = input.sizeBytes;
    }
    if (!isValidVolumeSize(volumeSize)) {
      throw new VolsnapError(
        'volume.invalidSize',
        `The image's volume would be ${volumeSize} bytes; a volume is at most 64 TiB, a multiple of 512 KiB.`,
      );
    }
    // The URL may carry a signature: it is kept in the bucket for the workers, never in the table
    // or an answer, and removed when the import ends.
    const ref = newId('request');
    await this.#o.objects.put(sourceKey(ref), Buffer.from(JSON.stringify(origin)));
    const volume: Volume = {
      volumeId: newId('volume'),
      accountId: caller.accountId,
      name: (input.name ?? (input.url ? `import from ${new URL(input.url).host}` : 'imported file')).slice(
        0,
        255,
      ),
      sizeBytes: volumeSize,
      tags: {},
      region: this.#o.region,
      createdAt: isoTime(this.#o.clock.now()),
    };
    await this.#o.volumes.create(volume);
    const snapshot = await this.#o.service.createImport(
      caller,
      volume,
      { name: input.name, description: input.description, tags: input.tags, clientToken: input.clientToken },
      {
        importedFrom: { source, format: input.format, ref },
        parts: Math.max(1, Math.ceil(volumeSize / BLOCK_SIZE / this.#o.partBlocks)),
      },
    );
    if (snapshot.volumeId !== volume.volumeId) {
      // A retry with a client token: the first call's import stands; this call's leftovers go.
      await this.#o.volumes.deleteUnlessSnapshots(caller.accountId, volume.volumeId);
      await this.#o.objects.delete(sourceKey(ref));
    }
    return snapshot;
  }

  /**
   * Imports part `part`; the worker finishing the last part completes the snapshot. A bad source
   * fails it for good (`error`, what it wrote and its source deleted); transient failures throw.
   */
  runPart(snapshotId: string, part: number): Promise<PartOutcome> {
    return this.#runner.runPart(snapshotId, part);
  }

  async #source(ref: string): Promise<SourceRef | undefined> {
    const stored = await this.#o.objects.get(sourceKey(ref));
    return stored ? (JSON.parse(Buffer.from(stored).toString('utf8')) as SourceRef) : undefined;
  }

  /** An open upload holds a slot until it is imported, or its URLs expire. */
  async #takeUploadSlot(accountId: string, ref: string): Promise<void> {
    if (!this.#o.uploads) return;
    const now = this.#o.clock.now();
    const { maxOpenUploads } = (await this.#o.limits?.(accountId)) ?? DEFAULT_QUOTA;
    if (!(await this.#o.uploads.take(accountId, ref, maxOpenUploads, now, now + UPLOAD_URL_MS))) {
      const open = await this.#o.uploads.count(accountId, now);
      throw inFlightExceeded(this.#o.region, 'openUploads', open, maxOpenUploads);
    }
  }

  async #remote(ref: string): Promise<RemoteObject> {
    const origin = await this.#source(ref);
    if (!origin) throw new VolsnapError('request.invalid', 'The import lost its source; start it again.');
    return 'url' in origin ? this.#o.open(origin.url) : objectRemote(this.#o.objects, origin.key);
  }
}

/** The URL's origin and path (never its query, which may carry a signature). */
function describeSource(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new VolsnapError('request.invalid', `'${url.slice(0, 100)}' is not a URL.`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new VolsnapError('request.invalid', 'Import from http(s) URLs only.');
  }
  if (parsed.username !== '' || parsed.password !== '') {
    // fetch refuses them anyway; and a URL with credentials must not travel to workers and logs.
    throw new VolsnapError(
      'request.invalid',
      'The import URL carries a user name or password (user:pass@): volsnap does not send credentials. Use a presigned URL or a public one.',
    );
  }
  return `${parsed.origin}${parsed.pathname}`;
}

/** Where an import reads from: a URL, or an uploaded file's key in the region's bucket. */
type SourceRef = { url: string } | { key: string };

/** Part URLs handed out per request: an answer stays small, and signing them stays quick. */
export const UPLOAD_URLS_PER_REQUEST = 100;

/** An object of the region's bucket, read like a URL. */
async function objectRemote(objects: ObjectStore, key: string): Promise<RemoteObject> {
  const head = await objects.head(key);
  if (!head)
    throw new VolsnapError('import.sourceUnreadable', 'The uploaded file is not there: upload it again.');
  return {
    size: head.size,
    range: (start, end, into) => objects.getRange(key, start, end, { into }),
  };
}

/** Where an import reads from (every snapshot the importer runs has it: its kind's `owns` checks that). */
function importedFrom(snapshot: Snapshot): NonNullable<Snapshot['importedFrom']> {
  if (!snapshot.importedFrom) throw new Error(`snapshot ${snapshot.snapshotId} is not an import`);
  return snapshot.importedFrom;
}

function sourceKey(ref: string): string {
  return `uploads/imports/${ref}.json`;
}

/** Deletes what an import kept of its source (the URL, an uploaded file); idempotent. */
export async function forgetImportSource(objects: ObjectStore, ref: string): Promise<void> {
  const stored = await objects.get(sourceKey(ref));
  const origin = stored ? (JSON.parse(Buffer.from(stored).toString('utf8')) as SourceRef) : undefined;
  if (origin && 'key' in origin) await objects.delete(origin.key);
  await objects.delete(sourceKey(ref));
}

/** How long an upload's part URLs live (6 h), and so how long it holds a slot at most. */
const UPLOAD_URL_MS = 6 * 3600 * 1000;
