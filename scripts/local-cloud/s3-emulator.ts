// What the local S3 (s3rver) adds to make it refuse what AWS S3 refuses: a SigV4 check of every
// request (header-signed and presigned), `If-None-Match: *` on PutObject and CompleteMultipartUpload,
// `x-amz-content-sha256` checked against the body, and writes that replace an object only once the
// whole body arrived (s3rver writes in place, so an interrupted PUT left a partial object behind).
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { verifySigV4 } from '../../lib/http/sigv4.ts';
import {
  type CallRecorder,
  deleteObjectsNeeds,
  localRoleCredentials,
  REQUEST_COUNTS_PATH,
  roleOfKey,
  s3NotFoundNeeds,
  s3Operation,
  secretLookup,
} from './aws-calls.ts';

/** The error s3rver renders as S3's XML body (`<Error><Code>…</Code><Message>…</Message></Error>`). */
type S3ErrorClass = new (
  code: string,
  message: string,
  detail?: Record<string, string>,
) => Error & { status: number };
const S3Error = createRequire(import.meta.url)('s3rver/lib/models/error') as S3ErrorClass;

/**
 * Gives s3rver the roles' key pairs too: it checks every request's signature itself as well, against
 * the keys of its one account.
 */
export function acceptRoleKeys(roles: readonly string[]): void {
  const { DUMMY_ACCOUNT } = createRequire(import.meta.url)('s3rver/lib/models/account') as {
    DUMMY_ACCOUNT: { createKeyPair(accessKeyId: string, secretAccessKey: string): void };
  };
  for (const role of roles) {
    const { accessKeyId, secretAccessKey } = localRoleCredentials(role);
    DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);
  }
}

function s3Error(code: string, message: string, status?: number, detail?: Record<string, string>): Error {
  const error = new S3Error(code, message, detail);
  if (status !== undefined) error.status = status;
  return error;
}

/** The parts of s3rver's Koa context this module uses. */
interface S3Context {
  req: IncomingMessage;
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  app: { store: FilesystemStore };
  /** What s3rver parsed from an XML body (DeleteObjects' keys), once its handler ran. */
  request: { body?: unknown };
}

type Middleware = (ctx: S3Context, next: () => Promise<void>) => Promise<void>;

/** The parts of s3rver's FilesystemStore this module uses and replaces. */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  existsObject(bucket: string, key: string): Promise<boolean>;
  putMetadata(bucket: string, key: string, metadata: Record<string, unknown>, md5: string): Promise<void>;
  putObject(object: {
    bucket: string;
    key: string;
    content: unknown;
    metadata: Record<string, unknown>;
  }): Promise<{
    size: number;
    md5: string;
  }>;
  putPart(
    bucket: string,
    uploadId: string,
    partNumber: string,
    content: unknown,
  ): Promise<{ size: number; md5: string }>;
}

export interface S3VerificationOptions {
  /** The region(s) clients sign for. */
  region: string | readonly string[];
  /** The operator's credentials (provisioning, seeding, tests). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Regions whose functions' role credentials are accepted too (./aws-calls.ts). */
  roles?: readonly string[];
  now?: () => number;
}

/** Bodies whose `x-amz-content-sha256` is a digest (header-signed requests), by request. */
const expectedSha256 = new WeakMap<object, string>();
/** The access key id each verified request was signed with. */
const signedBy = new WeakMap<object, string>();

/** The access key id a request verified by {@link verifyingMiddleware} was signed with. */
export function signerOf(req: object): string | undefined {
  return signedBy.get(req);
}

/** S3's error for a middleware to throw (s3rver renders it as S3's XML body). */
export function s3ErrorOf(code: string, message: string, status: number): Error {
  return s3Error(code, message, status);
}

/**
 * A Koa middleware for the front of s3rver's stack. Refuses any request whose SigV4 signature does
 * not verify (403 with S3's code: anonymous → AccessDenied, expired → AccessDenied "Request has
 * expired", …), then serialises conditional writes per key so that of two `If-None-Match: *` PUTs
 * of one key exactly one wins and the other gets 412 PreconditionFailed. Bodies are not read here:
 * they stream on to s3rver (see {@link installAtomicWrites} for the hash check).
 */
export function verifyingMiddleware(options: S3VerificationOptions): Middleware {
  const locks = new KeyLocks();
  const now = options.now ?? Date.now;
  return async function verifySignature(ctx, next) {
    const result = verifySigV4(
      { method: ctx.method, target: ctx.req.url ?? '/', headers: ctx.req.headersDistinct },
      {
        service: 's3',
        region: options.region,
        secretFor: secretLookup(options.credentials, options.roles),
        nowMs: now(),
      },
    );
    if (!result.ok) throw s3Error(result.code, result.message);
    signedBy.set(ctx.req, result.accessKeyId);
    if (/^[0-9a-f]{64}$/i.test(result.payloadHash))
      expectedSha256.set(ctx.req, result.payloadHash.toLowerCase());
    const target = conditionalWrite(ctx);
    if (!target) return next();
    if (ctx.req.headers['if-none-match'] !== '*') {
      throw s3Error(
        'NotImplemented',
        'A header you provided implies functionality that is not implemented',
        501,
        {
          Header: 'If-None-Match',
        },
      );
    }
    const { bucket, key } = target;
    await locks.run(`${bucket}/${key}`, async () => {
      if (await ctx.app.store.existsObject(bucket, key)) {
        throw s3Error(
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
          412,
          {
            Condition: 'If-None-Match',
          },
        );
      }
      await next();
    });
  };
}

export { REQUEST_COUNTS_PATH } from './aws-calls.ts';

/**
 * A Koa middleware for first in the stack: counts every request by S3 operation (presigned ones
 * too: they arrive here like any other), and answers GET {@link REQUEST_COUNTS_PATH} with the
 * counts so far as JSON (`{ "GetObject": 12, … }`), so a benchmark can tell requests per operation.
 */
export function countingMiddleware(): Middleware {
  const counts: Record<string, number> = {};
  return async function countRequests(ctx, next) {
    if (ctx.method === 'GET' && ctx.path === REQUEST_COUNTS_PATH) {
      const c = ctx as unknown as { status: number; type: string; body: string };
      c.status = 200;
      c.type = 'application/json';
      c.body = JSON.stringify(counts);
      return;
    }
    const { operation } = s3Operation({
      method: ctx.method,
      path: ctx.path,
      query: ctx.query,
      headers: ctx.req.headers,
    });
    counts[operation] = (counts[operation] ?? 0) + 1;
    return next();
  };
}

/**
 * A Koa middleware for right after {@link verifyingMiddleware}: records, for every request a role
 * signed (header-signed or presigned), the IAM authorizations AWS would make for it, and for a
 * GetObject or HeadObject answered 404 the s3:ListBucket without which AWS would have answered 403.
 */
export function recordingMiddleware(options: {
  roles: readonly string[];
  recorder: CallRecorder;
}): Middleware {
  return async function recordCalls(ctx, next) {
    const role = roleOfKey(signedBy.get(ctx.req) ?? '', options.roles);
    if (role === undefined) return next();
    const shape = { method: ctx.method, path: ctx.path, query: ctx.query, headers: ctx.req.headers };
    const { operation, needs } = s3Operation(shape);
    options.recorder.count(role, 's3', operation);
    let status = 500;
    try {
      await next();
      status = (ctx as unknown as { status: number }).status;
    } catch (error) {
      status = (error as { status?: number }).status ?? 500;
      throw error;
    } finally {
      const missing = status === 404 ? s3NotFoundNeeds(operation, ctx.path) : [];
      // DeleteObjects names its keys in the body, which s3rver has parsed by now.
      const deleted = operation === 'DeleteObjects' ? deleteObjectsNeeds(ctx.path, ctx.request.body) : [];
      options.recorder.record([
        ...[...needs, ...deleted].map((need) => ({ role, service: 's3' as const, operation, ...need })),
        ...missing.map((need) => ({
          role,
          service: 's3' as const,
          operation,
          ...need,
          why: 'it answered 404, which AWS answers only with s3:ListBucket (403 without)',
        })),
      ]);
    }
  };
}

/** The bucket and key of a PutObject or CompleteMultipartUpload carrying If-None-Match. */
function conditionalWrite(ctx: S3Context): { bucket: string; key: string } | undefined {
  if (ctx.req.headers['if-none-match'] === undefined) return undefined;
  const [, bucket, ...rest] = ctx.path.split('/');
  const key = rest.join('/');
  if (!bucket || !key) return undefined;
  const put =
    ctx.method === 'PUT' &&
    ctx.req.headers['x-amz-copy-source'] === undefined &&
    !['uploadId', 'partNumber', 'tagging', 'acl'].some((name) => name in ctx.query);
  const complete = ctx.method === 'POST' && 'uploadId' in ctx.query;
  if (!put && !complete) return undefined;
  try {
    return { bucket: decodeURIComponent(bucket), key: decodeURIComponent(key) };
  } catch {
    throw s3Error('InvalidURI', "Couldn't parse the specified URI.", 400);
  }
}

/** One chain of promises per key: a task starts once the previous task for its key settled. */
class KeyLocks {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release = () => {};
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

/**
 * Replaces s3rver's object and part writes with ones that stream to a temporary file next to the
 * object and rename it into place once the body is complete and (when the request signed a digest)
 * its SHA-256 matches; an interrupted or mismatching upload leaves the previous object, or none.
 * Temporary files do not end in `._S3rver_object`, so listings never show them.
 */
export function installAtomicWrites(store: FilesystemStore): void {
  store.putObject = async function putObject(object) {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    const { size, md5 } = await writeAtomically(objectPath, object.content);
    await store.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size, md5 };
  };
  store.putPart = async function putPart(bucket, uploadId, partNumber, content) {
    const partPath = join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId, String(partNumber));
    const result = await writeAtomically(partPath, content);
    await writeFile(`${partPath}.md5`, result.md5);
    return result;
  };
}

async function writeAtomically(finalPath: string, content: unknown): Promise<{ size: number; md5: string }> {
  await mkdir(dirname(finalPath), { recursive: true });
  const temporary = `${finalPath}.${randomBytes(6).toString('hex')}.partial`;
  const md5 = createHash('md5');
  const expected = typeof content === 'object' && content !== null ? expectedSha256.get(content) : undefined;
  const sha256 = expected === undefined ? undefined : createHash('sha256');
  let size = 0;
  try {
    if (Buffer.isBuffer(content)) {
      md5.update(content);
      sha256?.update(content);
      size = content.length;
      await writeFile(temporary, content);
    } else {
      await pipeline(
        content as NodeJS.ReadableStream,
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            md5.update(chunk);
            sha256?.update(chunk);
            size += chunk.length;
            callback(null, chunk);
          },
        }),
        createWriteStream(temporary),
      );
    }
    if (sha256 && sha256.digest('hex') !== expected) {
      throw s3Error(
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        400,
      );
    }
    await rename(temporary, finalPath);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return { size, md5: md5.digest('hex') };
}
