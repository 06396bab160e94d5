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

async function withRetries<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i <= RETRIES; i++) {
    if (i > 0) await sleep(Math.min(4000, 200 * 2 ** i) * (0.5 + Math.random() / 2));
    try {
      return await attempt();
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

/**
 * PUTs `body` to a presigned URL; retries network errors, 429 and 5xx with backoff. Returns the
 * ETag the store answered (multipart parts need it to be joined).
 */
export function putObject(url: string, body: Uint8Array, fetchImpl: typeof fetch = fetch): Promise<string> {
  return withRetries('upload', async () => {
    const response = await fetchImpl(url, {
      method: 'PUT',
      body,
      headers: { 'content-length': String(body.length) },
    });
    await response.arrayBuffer();
    if (!response.ok)
      throw new TransferError(`upload answered ${response.status} ${response.statusText}`, response.status);
    return response.headers.get('etag') ?? '';
  });
}

/** GETs a presigned URL, whole or bytes [start, end); retries like {@link putObject}. */
export function getObject(
  url: string,
  range?: { start: number; end: number },
  fetchImpl: typeof fetch = fetch,
): Promise<Buffer> {
  return withRetries('download', async () => {
    const response = await fetchImpl(
      url,
      range ? { headers: { range: `bytes=${range.start}-${range.end - 1}` } } : {},
    );
    const body = Buffer.from(await response.arrayBuffer());
    if (!response.ok)
      throw new TransferError(`download answered ${response.status} ${response.statusText}`, response.status);
    if (range && body.length !== range.end - range.start) {
      throw new TransferError(
        `download returned ${body.length} bytes for a range of ${range.end - range.start}`,
      );
    }
    return body;
  });
}
