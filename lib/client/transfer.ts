import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type ByteRange, rangeHeader } from '../core/ports/objects.ts';

/** A transfer that failed for good, with the HTTP status when there was one. */
export class TransferError extends Error {
  override name = 'TransferError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

const RETRIES = 4;
const retryable = (status: number) => status === 429 || status >= 500;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function withRetries<T>(what: string, attempt: (retry: number) => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i <= RETRIES; i++) {
    if (i > 0) await sleep(Math.min(4000, 200 * 2 ** i) * (0.5 + Math.random() / 2));
    try {
      return await attempt(i);
    } catch (error) {
      last = error;
      if (error instanceof TransferError && error.status !== undefined && !retryable(error.status))
        throw error;
    }
  }
  throw new TransferError(
    `${what} failed after ${RETRIES + 1} attempts: ${(last as Error)?.message ?? last}`,
    (last as TransferError)?.status,
  );
}

/** One HTTP exchange: the status, headers, and the body in one buffer. */
interface Exchange {
  status: number;
  statusText: string;
  etag: string;
  body: Buffer;
}

// Connections are kept and reused across the many segment transfers of one snapshot or restore.
const agents = { 'http:': new HttpAgent({ keepAlive: true }), 'https:': new HttpsAgent({ keepAlive: true }) };

/**
 * A request on node:http rather than fetch: fetch clones a Uint8Array body before sending it and
 * hands the answer back through an ArrayBuffer, two copies of every byte (measured: a third of a
 * full snapshot's CPU). This writes the caller's buffer as is and reads the answer into one buffer
 * of its Content-Length.
 */
function exchange(
  url: string,
  method: 'GET' | 'PUT',
  headers: Record<string, string>,
  body?: Uint8Array,
  into?: Buffer,
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const request = send(
      target,
      {
        method,
        headers,
        agent: agents[target.protocol as 'http:' | 'https:'],
        timeout: 120_000,
      },
      (response) => {
        const length = Number(response.headers['content-length'] ?? Number.NaN);
        const chunks: Buffer[] = [];
        const whole = !Number.isSafeInteger(length)
          ? undefined
          : into && into.length >= length
            ? into.subarray(0, length)
            : Buffer.allocUnsafe(length);
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          if (whole && received + chunk.length <= whole.length) chunk.copy(whole, received);
          else chunks.push(chunk);
          received += chunk.length;
        });
        response.on('error', reject);
        response.on('end', () => {
          const bodyOut =
            whole && received === whole.length
              ? whole
              : Buffer.concat([
                  ...(whole ? [whole.subarray(0, Math.min(received, whole.length))] : []),
                  ...chunks,
                ]);
          resolve({
            status: response.statusCode ?? 0,
            statusText: response.statusMessage ?? '',
            etag: String(response.headers.etag ?? ''),
            body: bodyOut,
          });
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error('the transfer timed out')));
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * PUTs `body` to a presigned URL; retries network errors, 429 and 5xx with backoff. Returns the
 * ETag the store answered (multipart parts need it to be joined). With `ifNoneMatch` (a write-once
 * URL: segments, manifests) it sends `If-None-Match: *`; a 412 to a retry means an earlier attempt
 * of this call landed (only this client holds the URL of that fresh key), so it counts as done and
 * the ETag is empty. The service's completion checks the bytes either way.
 */
export function putObject(
  url: string,
  body: Uint8Array,
  options: { ifNoneMatch?: boolean } = {},
): Promise<string> {
  return withRetries('upload', async (retry) => {
    const response = await exchange(
      url,
      'PUT',
      { 'content-length': String(body.length), ...(options.ifNoneMatch ? { 'if-none-match': '*' } : {}) },
      body,
    );
    if (options.ifNoneMatch && response.status === 412 && retry > 0) return '';
    if (response.status < 200 || response.status >= 300)
      throw new TransferError(`upload answered ${response.status} ${response.statusText}`, response.status);
    return response.etag;
  });
}

/**
 * GETs a presigned URL, whole or bytes [start, end); retries like {@link putObject}. With `into`
 * (large enough), the body is read into it and a view of it returned: callers that recycle buffers
 * avoid a fresh allocation, and its page faults, per request.
 */
export function getObject(url: string, range?: ByteRange, into?: Buffer): Promise<Buffer> {
  return withRetries('download', async () => {
    const response = await exchange(
      url,
      'GET',
      // The header a range-bound URL signed (ObjectStore.presignGet): the same bytes, spelled the same.
      range ? { range: rangeHeader(range) } : {},
      undefined,
      into,
    );
    if (response.status < 200 || response.status >= 300)
      throw new TransferError(`download answered ${response.status} ${response.statusText}`, response.status);
    const body = response.body;
    if (range && body.length !== range.end - range.start) {
      throw new TransferError(
        `download returned ${body.length} bytes for a range of ${range.end - range.start}`,
      );
    }
    return body;
  });
}
