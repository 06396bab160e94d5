/**
 * The region's object storage, as a port: S3 in production and the local cloud, memory in unit tests.
 * Keys follow {@link ObjectLayout}. Every method may be retried: puts of the same bytes, copies and
 * deletes are idempotent.
 */
export interface ObjectStore {
  /**
   * A URL that lets its holder PUT exactly `key`, for `expiresInSeconds`. With `ifNoneMatch` the URL
   * signs `If-None-Match: *`: the holder must send that header, and the store refuses the PUT (412)
   * once `key` exists, so the object is written once and never replaced through the URL.
   */
  presignPut(key: string, expiresInSeconds: number, options?: PresignPutOptions): Promise<string>;
  /**
   * A URL that lets its holder GET exactly `key`, for `expiresInSeconds`. Without `range`, any
   * bytes of it (whole or ranged). With `range`, only bytes [start, end): the header
   * `Range: bytes=start-(end-1)` is signed into the URL, so its holder must send exactly that
   * header and the store refuses any other range, or none.
   */
  presignGet(key: string, expiresInSeconds: number, range?: ByteRange): Promise<string>;
  /**
   * The object's size and its ETag (which changes whenever the object is written again; stores
   * that have none leave it out), or undefined when there is no such object.
   */
  head(key: string): Promise<{ size: number; etag?: string } | undefined>;
  /** The whole object (for small objects: manifests), or undefined when absent. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * The whole object and the ETag of the version those bytes are (one GET: no write in between can
   * make them disagree), or undefined when absent. Stores without ETags leave it out. With `into`,
   * an object that fits is read into it (the bytes answered are then a view of `into`: the caller
   * reuses one buffer instead of paying for a fresh one's pages on every read). Memory: the object.
   */
  getVersion(
    key: string,
    options?: { into?: Uint8Array },
  ): Promise<{ bytes: Uint8Array; etag?: string } | undefined>;
  /**
   * Bytes [start, end) of the object; fails if the object is shorter. With `into` of at least
   * `end - start` bytes, they are read into it (the answer is a view of `into`, valid until the
   * caller reads into it again): as {@link getVersion}'s, for callers that read run after run.
   */
  getRange(key: string, start: number, end: number, options?: { into?: Uint8Array }): Promise<Uint8Array>;
  put(key: string, body: Uint8Array): Promise<void>;
  /** Server-side copy within the region's bucket. */
  copy(fromKey: string, toKey: string): Promise<void>;
  /** Deletes; absent objects are not an error. */
  delete(key: string): Promise<void>;
  /**
   * Deletes every key of `keys` (absent ones are not an error) in as few requests as the store
   * allows: S3's DeleteObjects takes up to {@link DELETE_BATCH_KEYS} keys a request. Idempotent;
   * a failure may leave some deleted, and repeating the call finishes the rest. Memory: the keys.
   */
  deleteMany(keys: readonly string[]): Promise<void>;
  /** Starts a multipart upload of `key`; returns its upload id. */
  createMultipart(key: string): Promise<string>;
  /**
   * Uploads part `partNumber` (1-based; every part but the last at least 5 MiB) and returns its
   * ETag. Uploading a part again replaces it: a redone part is harmless.
   */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string>;
  /** Joins the parts, in part-number order, into the object. */
  completeMultipart(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
  ): Promise<void>;
  /** A URL that lets its holder upload exactly part `partNumber` of one multipart upload of `key`. */
  presignUploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    expiresInSeconds: number,
  ): Promise<string>;
  /** Drops an unfinished upload and its parts (the bucket's lifecycle rule is the backstop). */
  abortMultipart(key: string, uploadId: string): Promise<void>;
  /** Every object under `prefix`, in key order, read a page at a time (memory: one page). */
  list(prefix: string): AsyncIterable<StoredObject>;
  /**
   * Unfinished multipart uploads under `prefix`. Stores that cannot list them (s3rver) fail with
   * `storage.unsupported`; the bucket's lifecycle rule aborts those after 2 days anyway.
   */
  listIncompleteUploads(prefix: string): AsyncIterable<IncompleteUpload>;
}

/** Keys one DeleteObjects request takes at most (S3's limit). */
export const DELETE_BATCH_KEYS = 1000;

/** Bytes [start, end) of an object: end exclusive, `0 <= start < end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** The `Range` header that asks for exactly `range`. */
export function rangeHeader(range: ByteRange): string {
  return `bytes=${range.start}-${range.end - 1}`;
}

export interface PresignPutOptions {
  /** Write-once: the PUT succeeds only while no object `key` exists. */
  ifNoneMatch?: boolean;
}

/** An object as a listing shows it. */
export interface StoredObject {
  key: string;
  size: number;
  /** When it was written, in ms since the epoch (the store's clock). */
  lastModified: number;
}

/** A multipart upload started and neither completed nor aborted. */
export interface IncompleteUpload {
  key: string;
  uploadId: string;
  /** When it was started, in ms since the epoch. */
  initiated: number;
}

/** Where things live in the bucket (DESIGN.md, "Storage layout"). */
export const ObjectLayout = {
  /** Segments are namespaced per account: no account can learn what another stores. */
  segment: (accountId: string, segmentId: string) => `segments/${accountId}/${segmentId}`,
  segmentPrefix: (accountId: string) => `segments/${accountId}/`,
  manifest: (snapshotId: string) => `manifests/${snapshotId}`,
  /** Where the service's own workers stage a manifest before completion (never given out as a URL). */
  manifestUpload: (snapshotId: string) => `uploads/manifests/${snapshotId}`,
  /**
   * Where a client uploads a manifest before completion, one write-once key per issued URL (a
   * retried upload gets a fresh one); completion checks it and copies it into place.
   */
  manifestStaging: (snapshotId: string, manifestUploadId: string) =>
    `uploads/manifests/${snapshotId}/${manifestUploadId}`,
  /**
   * A block PUT through the EBS direct API, staged until its snapshot is packed (one key per block
   * index, so a block PUT again replaces it), grouped by the packing part that reads it.
   */
  stagedBlock: (snapshotId: string, part: number, blockIndex: number) =>
    `uploads/blocks/${snapshotId}/${part}/${String(blockIndex).padStart(10, '0')}`,
  stagedBlockPrefix: (snapshotId: string, part?: number) =>
    `uploads/blocks/${snapshotId}/${part === undefined ? '' : `${part}/`}`,
  /** A packing part's checkpoint beside its manifest: the SHA-256 of every block it packed, in index order. */
  stagedDigests: (snapshotId: string, part: number) => `uploads/digests/${snapshotId}/${part}`,
  /**
   * The service's record that it read and hashed a segment of a snapshot's upload before
   * completion (written by the service only, never given out as a URL; see segment-checks.ts).
   */
  segmentCheck: (snapshotId: string, segmentId: string) => `uploads/checks/${snapshotId}/${segmentId}`,
  segmentCheckPrefix: (snapshotId: string) => `uploads/checks/${snapshotId}/`,
  /** A file an account uploads to import it. */
  fileUpload: (accountId: string, ref: string) => `uploads/files/${accountId}/${ref}`,
  /** An export object of an account. */
  export: (accountId: string, exportId: string, extension: string) =>
    `exports/${accountId}/${exportId}.${extension}`,
  /** Where an account keeps images of image-backed volumes in the region's bucket. */
  imagePrefix: (accountId: string) => `images/${accountId}/`,
};

const MiB = 1024 * 1024;
/** S3's multipart limits: parts of 5 MiB (but the last) to 5 GiB, at most 10,000 of them, objects of at most 5 TiB. */
export const S3_LIMITS = {
  minPartSize: 5 * MiB,
  maxPartSize: 5 * 1024 * MiB,
  maxParts: 10_000,
  maxObjectSize: 5 * 1024 * 1024 * MiB,
} as const;

/**
 * The part size for a multipart object of `size` bytes: `preferred` (or S3's smallest part, if
 * larger), grown to a whole number of `unit`s large enough that at most 10,000 parts cover the
 * object; undefined when no part size within S3's limits does (an object above 5 TiB).
 */
export function multipartPartSize(size: number, preferred: number, unit: number): number | undefined {
  if (!Number.isSafeInteger(size) || size < 0 || size > S3_LIMITS.maxObjectSize) return undefined;
  const units = (bytes: number) => Math.ceil(bytes / unit);
  const partSize =
    Math.max(units(preferred), units(S3_LIMITS.minPartSize), units(size / S3_LIMITS.maxParts)) * unit;
  return partSize <= S3_LIMITS.maxPartSize && Math.ceil(size / partSize) <= S3_LIMITS.maxParts
    ? partSize
    : undefined;
}
