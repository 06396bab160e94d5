import { NETWORK_ERROR_CODES, VolsnapError } from '../core/shared/errors.ts';

/** The SDK's names for a request that got no answer in time (its `requestTimeout`, an abort). */
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'TimeoutException']);

/**
 * An error no adapter translated that is still a backend's outage (an AWS SDK call that timed out
 * or whose connection failed): `storage.unavailable`, so the client is answered 503 with
 * `Retry-After` and retries, instead of a 500 it would not. Undefined for anything else (a bug
 * stays `internal`).
 */
export function backendOutageOf(error: unknown): VolsnapError | undefined {
  if (error === null || typeof error !== 'object' || error instanceof VolsnapError) return undefined;
  const { name, code } = error as { name?: unknown; code?: unknown };
  if (
    (typeof name === 'string' && TIMEOUT_NAMES.has(name)) ||
    (typeof code === 'string' && NETWORK_ERROR_CODES.has(code))
  )
    return new VolsnapError('storage.unavailable', 'A backend did not answer in time; retry shortly.', {
      cause: error,
      details: { retryAfterSeconds: 1 },
    });
  return undefined;
}
