/** What a retry decision reads of an `ApiError` (lib/client/api/transport.ts). */
export interface FailedRequest {
  status: number;
  code: string;
  retryAfterSeconds?: number;
}

/**
 * The code a bare API Gateway failure becomes: a 500/502/503/504 whose body is not volsnap's error
 * shape (`{"message":"Internal Server Error"}`). API Gateway answers so when the route's Lambda
 * authorizer or its integration failed or timed out, as while the service's table restarts.
 */
export const GATEWAY_FAILURE = 'api.unavailable';

/** The longest wait between two tries of a transient failure, and the longest `Retry-After` honoured. */
const MAX_BACKOFF_MS = 15_000;
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * Whether a failure says the service failed for now, so that a request safe to repeat (a GET, a
 * request the service makes idempotent) may be sent again after a wait: no answer at all (refused,
 * reset, timed out: status 0), throttling that names its wait (429 with `Retry-After`), a 502, 503
 * or 504, and API Gateway's bare 500 ({@link GATEWAY_FAILURE}). volsnap's own 500 (`internal`) is
 * a bug, not retried here; a 429 without `Retry-After` (a quota) neither.
 */
export function isRetryable(error: FailedRequest): boolean {
  if (error.status === 0) return error.code === 'client.unreachable' || error.code === 'client.timeout';
  if (error.status === 429) return error.retryAfterSeconds !== undefined;
  if (error.status === 502 || error.status === 503 || error.status === 504) return true;
  return error.status === 500 && error.code === GATEWAY_FAILURE;
}

/**
 * How long to wait before trying again after the `failures`-th transient failure in a row: what
 * `Retry-After` said (at most 60 s), else 1 s doubling to 15 s, with jitter (so that many waiting
 * clients spread).
 */
export function backoffMs(error: unknown, failures: number, random: () => number = Math.random): number {
  const retryAfter = (error as Partial<FailedRequest> | undefined)?.retryAfterSeconds;
  if (typeof retryAfter === 'number') return Math.min(retryAfter * 1000, MAX_RETRY_AFTER_MS);
  const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.5 + random() / 2));
}
