import { type ClientRequest, Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type ByteRange, rangeHeader } from '../core/ports/objects.ts';

/**
 * A transfer that failed for good, with the HTTP status when there was one: `transfer.failed`
 * (retries spent), or `transfer.stalled` (no byte moved for the stall timeout).
 */
export class TransferError extends Error {
  override name = 'TransferError';
  constructor(
    message: string,
    readonly status?: number,
    readonly code: 'transfer.failed' | 'transfer.stalled' = 'transfer.failed',
  ) {
    super(message);
  }
}

/** What a stalled transfer reports while it waits: how long no byte moved, and when it gives up. */
export interface StallNotice {
  idleSeconds: number;
  giveUpSeconds: number;
}

/**
 * How transfers watch for a stall, for the whole process (the CLI sets it from `--stall-timeout`):
 * a transfer none of whose bytes moved for `stallTimeoutMs` fails with `transfer.stalled`, and is
 * not retried (the user asked to wait no longer); after `noticeMs`, `onStall` hears of it each
 * second, and once with `undefined` when bytes move again.
 */
const stallWatch: {
  stallTimeoutMs: number;
  noticeMs: number;
  onStall?: (notice: StallNotice | undefined) => void;
} = { stallTimeoutMs: 60_000, noticeMs: 5_000 };

/** Sets how transfers watch for stalls (see {@link stallWatch}); unset fields keep their value. */
export function watchTransfers(options: Partial<typeof stallWatch>): void {
  Object.assign(stallWatch, options);
}

/** Transfers in flight that have not moved for `noticeMs`: a stall is reported once for all. */
const stalledNow = new Set<object>();
function reportStall(transfer: object, idleMs: number | undefined): void {
  if (idleMs === undefined) {
    if (stalledNow.delete(transfer) && stalledNow.size === 0) stallWatch.onStall?.(undefined);
    return;
  }
  stalledNow.add(transfer);
  stallWatch.onStall?.({
    idleSeconds: Math.round(idleMs / 1000),
    giveUpSeconds: Math.round(stallWatch.stallTimeoutMs / 1000),
  });
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
      if (error instanceof TransferError && error.code === 'transfer.stalled') throw error;
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
    const stall = stallTimer(() =>
      request.destroy(
        new TransferError(
          `${method === 'PUT' ? 'upload' : 'download'} stalled: object storage moved no byte for ${Math.round(stallWatch.stallTimeoutMs / 1000)} s (see --stall-timeout)`,
          undefined,
          'transfer.stalled',
        ),
      ),
    );
    const fail = (error: unknown) => {
      stall.stop();
      reject(error);
    };
    const request = send(
      target,
      { method, headers, agent: agents[target.protocol as 'http:' | 'https:'] },
      (response) => {
        const length = Number(response.headers['content-length'] ?? Number.NaN);
        const chunks: Buffer[] = [];
        const whole = !Number.isSafeInteger(length)
          ? undefined
          : into && into.length >= length
            ? into.subarray(0, length)
            : Buffer.allocUnsafe(length);
        let received = 0;
        stall.moved();
        response.on('data', (chunk: Buffer) => {
          stall.moved();
          if (whole && received + chunk.length <= whole.length) chunk.copy(whole, received);
          else chunks.push(chunk);
          received += chunk.length;
        });
        response.on('error', fail);
        response.on('end', () => {
          stall.stop();
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
    request.on('error', fail);
    writeBody(request, body, stall.moved);
  });
}

/** The body in 1 MiB writes, each one that the socket took counting as bytes that moved. */
function writeBody(request: ClientRequest, body: Uint8Array | undefined, moved: () => void): void {
  if (!body || body.length === 0) {
    request.end();
    return;
  }
  const CHUNK = 2 ** 20;
  let offset = 0;
  const next = (): void => {
    while (offset < body.length) {
      const chunk = body.subarray(offset, offset + CHUNK);
      offset += chunk.length;
      if (!request.write(chunk, () => moved())) {
        request.once('drain', next);
        return;
      }
    }
    request.end();
  };
  next();
}

/**
 * Watches one exchange for a stall: `moved` when bytes moved; past `noticeMs` without, the stall
 * is reported (each second); past the stall timeout, `giveUp` ends the exchange.
 */
function stallTimer(giveUp: () => void) {
  const transfer = {};
  let last = Date.now();
  const timer = setInterval(() => {
    const idle = Date.now() - last;
    if (idle >= stallWatch.stallTimeoutMs) {
      stop();
      giveUp();
    } else if (idle >= stallWatch.noticeMs) reportStall(transfer, idle);
  }, 1000);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    reportStall(transfer, undefined);
  };
  return {
    moved: () => {
      last = Date.now();
      reportStall(transfer, undefined);
    },
    stop,
  };
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
