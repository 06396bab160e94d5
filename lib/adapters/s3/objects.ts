import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  type ByteRange,
  DELETE_BATCH_KEYS,
  type IncompleteUpload,
  type ObjectStore,
  type PresignPutOptions,
  rangeHeader,
  type StoredObject,
} from '../../core/ports/objects.ts';
import { VolsnapError } from '../../core/shared/errors.ts';

/**
 * The region's bucket. `presigner` must be built with the checksum settings of s3ClientConfig, or
 * presigned PUTs carry the CRC32 of an empty body.
 */
export class S3ObjectStore implements ObjectStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly presigner: S3Client = s3,
  ) {}

  presignPut(key: string, expiresInSeconds: number, options: PresignPutOptions = {}): Promise<string> {
    // Write-once: `If-None-Match: *` is signed (X-Amz-SignedHeaders names it), so the holder must
    // send it and S3 answers 412 once the key exists.
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ...(options.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
    });
    return getSignedUrl(this.presigner, command, {
      expiresIn: expiresInSeconds,
      ...(options.ifNoneMatch ? { signableHeaders: new Set(['if-none-match']) } : {}),
    });
  }

  presignGet(key: string, expiresInSeconds: number, range?: ByteRange): Promise<string> {
    // SigV4 signs every header of the request but a few (Range is not among those): the URL lists
    // `range` in X-Amz-SignedHeaders, and S3 answers 403 to a GET without that exact header.
    return getSignedUrl(
      this.presigner,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ...(range ? { Range: rangeHeader(range) } : {}),
      }),
      { expiresIn: expiresInSeconds },
    );
  }

  async head(key: string): Promise<{ size: number; etag?: string } | undefined> {
    try {
      const result = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: result.ContentLength ?? 0, ...(result.ETag ? { etag: result.ETag } : {}) };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw unavailable(error);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const result = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return await result.Body?.transformToByteArray();
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw unavailable(error);
    }
  }

  async getVersion(
    key: string,
    options: { into?: Uint8Array } = {},
  ): Promise<{ bytes: Uint8Array; etag?: string } | undefined> {
    try {
      const result = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const bytes = await bodyBytes(result.Body, result.ContentLength, options.into);
      return { bytes, ...(result.ETag ? { etag: result.ETag } : {}) };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw unavailable(error);
    }
  }

  async getRange(
    key: string,
    start: number,
    end: number,
    options: { into?: Uint8Array } = {},
  ): Promise<Uint8Array> {
    try {
      const result = await this.s3.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end - 1}` }),
      );
      const bytes = await bodyBytes(result.Body, result.ContentLength, options.into);
      if (bytes.length !== end - start)
        throw new Error(`asked for ${end - start} bytes of ${key}, got ${bytes.length}`);
      return bytes;
    } catch (error) {
      if (isMissing(error))
        throw new VolsnapError('request.invalid', `There is no object ${this.bucket}/${key}.`, {
          cause: error,
        });
      throw unavailable(error);
    }
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    try {
      await this.s3.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length }),
      );
    } catch (error) {
      throw unavailable(error);
    }
  }

  async copy(fromKey: string, toKey: string): Promise<void> {
    try {
      // CopySource is the URL-encoded bucket/key; S3-compatible stores insist on the encoding.
      await this.s3.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: toKey,
          CopySource: encodeURI(`${this.bucket}/${fromKey}`),
        }),
      );
    } catch (error) {
      throw unavailable(error);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (!isMissing(error)) throw unavailable(error);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH_KEYS) {
      const batch = keys.slice(i, i + DELETE_BATCH_KEYS);
      let failed: { Key?: string; Code?: string; Message?: string } | undefined;
      try {
        // Quiet: S3 answers only the keys it could not delete (an absent key is deleted, not an error).
        const result = await this.s3.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        failed = result.Errors?.find((e) => e.Code !== 'NoSuchKey');
      } catch (error) {
        throw unavailable(error);
      }
      if (failed) {
        throw new VolsnapError(
          'storage.unavailable',
          `S3 did not delete ${failed.Key}: ${failed.Code} (${failed.Message}). Try again: deletes are idempotent.`,
        );
      }
    }
  }

  async createMultipart(key: string): Promise<string> {
    try {
      const result = await this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }));
      if (!result.UploadId) throw new Error('S3 returned no upload id');
      return result.UploadId;
    } catch (error) {
      throw unavailable(error);
    }
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string> {
    try {
      const result = await this.s3.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
        }),
      );
      if (!result.ETag) throw new Error(`S3 returned no ETag for part ${partNumber}`);
      return result.ETag;
    } catch (error) {
      throw unavailable(error);
    }
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
  ): Promise<void> {
    try {
      await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
    } catch (error) {
      throw unavailable(error);
    }
  }

  presignUploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    expiresInSeconds: number,
  ): Promise<string> {
    return getSignedUrl(
      this.presigner,
      new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber }),
      { expiresIn: expiresInSeconds },
    );
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.s3.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
      } catch (error) {
        throw unavailable(error);
      }
      for (const object of page.Contents ?? []) {
        if (object.Key)
          yield {
            key: object.Key,
            size: object.Size ?? 0,
            lastModified: object.LastModified?.getTime() ?? 0,
          };
      }
      token = page.NextContinuationToken;
    } while (token);
  }

  async *listIncompleteUploads(prefix: string): AsyncIterable<IncompleteUpload> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let page: {
        Uploads?: { Key?: string; UploadId?: string; Initiated?: Date }[];
        IsTruncated?: boolean;
        NextKeyMarker?: string;
        NextUploadIdMarker?: string;
      };
      try {
        page = await this.s3.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
      } catch (error) {
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 501 || status === 405 || (error as { name?: string }).name === 'NotImplemented') {
          throw new VolsnapError(
            'storage.unsupported',
            'This object store cannot list unfinished multipart uploads; the bucket lifecycle rule aborts them instead.',
            { cause: error },
          );
        }
        throw unavailable(error);
      }
      for (const upload of page.Uploads ?? []) {
        if (upload.Key && upload.UploadId)
          yield { key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated?.getTime() ?? 0 };
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.s3.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
      );
    } catch (error) {
      // s3rver does not implement it; the bucket's lifecycle rule aborts what is left after 2 days.
      if (!isMissing(error)) throw unavailable(error);
    }
  }
}

function isMissing(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    error instanceof NoSuchKey ||
    error instanceof NotFound ||
    e.name === 'NotFound' ||
    e.$metadata?.httpStatusCode === 404
  );
}

function unavailable(cause: unknown): VolsnapError {
  return new VolsnapError(
    'storage.unavailable',
    'Object storage did not answer as expected; retry shortly.',
    { cause },
  );
}

/**
 * An answer's body: read into `into` when its Content-Length fits (a view of it), else the SDK's
 * own collection. The SDK collects into a fresh zero-filled array: for a 16 MiB segment that costs
 * several times the copy (zeroing, and first touches of its pages).
 */
async function bodyBytes(
  body: { transformToByteArray(): Promise<Uint8Array> } | undefined,
  length: number | undefined,
  into: Uint8Array | undefined,
): Promise<Uint8Array> {
  if (!body) return new Uint8Array();
  if (!into || length === undefined || length > into.length || !isAsyncIterable(body))
    return body.transformToByteArray();
  let at = 0;
  for await (const chunk of body) {
    const bytes = chunk as Uint8Array;
    if (at + bytes.length > length)
      throw new Error(`the object is longer than its Content-Length (${length})`);
    into.set(bytes, at);
    at += bytes.length;
  }
  if (at !== length) throw new Error(`the object ended after ${at} of its ${length} bytes`);
  return into.subarray(0, length);
}

function isAsyncIterable(value: object): value is AsyncIterable<unknown> {
  return Symbol.asyncIterator in value;
}
