import type {
  ByteRange,
  IncompleteUpload,
  ObjectStore,
  PresignPutOptions,
  StoredObject,
} from '../../core/ports/objects.ts';

/**
 * Objects in memory, for unit tests. Presigned URLs are `memory://` URLs naming the key;
 * {@link receivePut} plays the store's side of a PUT through one, with S3's rules.
 */
export class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<string, Uint8Array>();
  /** When each object was written (objects set directly on the map count as written at 0). */
  readonly modified = new Map<string, number>();

  /** `now` stamps writes, so tests can age objects with their clock. */
  constructor(private readonly now: () => number = Date.now) {}

  async presignPut(key: string, expiresInSeconds: number, options: PresignPutOptions = {}): Promise<string> {
    return `memory://put/${key}?expires=${expiresInSeconds}${options.ifNoneMatch ? '&if-none-match=*' : ''}`;
  }
  /**
   * A PUT through a presigned URL, answered as S3 does: 403 when the URL signs `If-None-Match: *`
   * and the request does not send it, 412 when it does and the object exists, else 200 (stored).
   */
  async receivePut(url: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<number> {
    const parsed = new URL(url);
    if (parsed.protocol !== 'memory:' || parsed.host !== 'put') return 400;
    const key = decodeURIComponent(parsed.pathname.slice(1));
    const sent = Object.entries(headers).find(([name]) => name.toLowerCase() === 'if-none-match')?.[1];
    const signed = parsed.searchParams.get('if-none-match');
    if (signed !== null && sent !== signed) return 403;
    if (sent === '*' && this.objects.has(key)) return 412;
    await this.put(key, body);
    return 200;
  }
  /** `memory://get/KEY?expires=N`, with `&range=START-END` (end exclusive) when bound to a range. */
  async presignGet(key: string, expiresInSeconds: number, range?: ByteRange): Promise<string> {
    const bound = range ? `&range=${range.start}-${range.end}` : '';
    return `memory://get/${key}?expires=${expiresInSeconds}${bound}`;
  }
  async head(key: string) {
    const object = this.objects.get(key);
    return object ? { size: object.length, etag: this.#etagOf(object) } : undefined;
  }
  /** One ETag per stored array: every write stores a new one (as S3 gives every PUT its own). */
  readonly #etags = new WeakMap<Uint8Array, string>();
  #writes = 0;
  #etagOf(object: Uint8Array): string {
    let etag = this.#etags.get(object);
    if (!etag) {
      etag = `"w${++this.#writes}"`;
      this.#etags.set(object, etag);
    }
    return etag;
  }
  async get(key: string) {
    const object = this.objects.get(key);
    return object ? Uint8Array.from(object) : undefined;
  }
  async getVersion(key: string, options: { into?: Uint8Array } = {}) {
    const object = this.objects.get(key);
    if (!object) return undefined;
    const { into } = options;
    const bytes =
      into && into.length >= object.length ? into.subarray(0, object.length) : new Uint8Array(object.length);
    bytes.set(object);
    return { bytes, etag: this.#etagOf(object) };
  }
  async getRange(key: string, start: number, end: number, options: { into?: Uint8Array } = {}) {
    const object = this.objects.get(key);
    if (!object || object.length < end) throw new Error(`no bytes ${start}-${end} of ${key}`);
    const { into } = options;
    if (!into || into.length < end - start) return object.slice(start, end);
    const bytes = into.subarray(0, end - start);
    bytes.set(object.subarray(start, end));
    return bytes;
  }
  async put(key: string, body: Uint8Array) {
    this.objects.set(key, Uint8Array.from(body));
    this.modified.set(key, this.now());
  }
  async copy(fromKey: string, toKey: string) {
    const object = this.objects.get(fromKey);
    if (!object) throw new Error(`no object ${fromKey}`);
    this.objects.set(toKey, Uint8Array.from(object));
    this.modified.set(toKey, this.now());
  }
  async delete(key: string) {
    this.objects.delete(key);
    this.modified.delete(key);
  }
  async deleteMany(keys: readonly string[]) {
    for (const key of keys) await this.delete(key);
  }
  async *list(prefix: string): AsyncIterable<StoredObject> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const key of keys) {
      const object = this.objects.get(key);
      if (object) yield { key, size: object.length, lastModified: this.modified.get(key) ?? 0 };
    }
  }
  /** When each unfinished upload was started. */
  readonly initiated = new Map<string, number>();
  async *listIncompleteUploads(prefix: string): AsyncIterable<IncompleteUpload> {
    for (const [uploadId, upload] of this.uploads)
      if (upload.key.startsWith(prefix))
        yield { key: upload.key, uploadId, initiated: this.initiated.get(uploadId) ?? 0 };
  }
  /** Unfinished multipart uploads: upload id → key and parts. */
  readonly uploads = new Map<string, { key: string; parts: Map<number, Uint8Array> }>();
  async createMultipart(key: string) {
    const uploadId = `upload-${this.uploads.size + 1}-${key}`;
    this.uploads.set(uploadId, { key, parts: new Map() });
    this.initiated.set(uploadId, this.now());
    return uploadId;
  }
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array) {
    const upload = this.uploads.get(uploadId);
    if (!upload || upload.key !== key) throw new Error(`no upload ${uploadId} of ${key}`);
    upload.parts.set(partNumber, Uint8Array.from(body));
    return `"etag-${partNumber}-${body.length}"`;
  }
  async completeMultipart(key: string, uploadId: string, parts: { partNumber: number; etag: string }[]) {
    const upload = this.uploads.get(uploadId);
    if (!upload || upload.key !== key) throw new Error(`no upload ${uploadId} of ${key}`);
    const bodies = parts.map((p) => {
      const body = upload.parts.get(p.partNumber);
      if (!body) throw new Error(`part ${p.partNumber} of ${uploadId} was not uploaded`);
      return body;
    });
    this.objects.set(key, Uint8Array.from(Buffer.concat(bodies)));
    this.modified.set(key, this.now());
    this.uploads.delete(uploadId);
  }
  async presignUploadPart(key: string, uploadId: string, partNumber: number, expiresInSeconds: number) {
    return `memory://part/${key}?uploadId=${uploadId}&partNumber=${partNumber}&expires=${expiresInSeconds}`;
  }
  async abortMultipart(_key: string, uploadId: string) {
    this.uploads.delete(uploadId);
  }
}
