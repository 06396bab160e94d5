import { backoffMs } from './api/retry.ts';
import { type ApiError, isTransient } from './api/transport.ts';

export { backoffMs };

/** How a poll or a retry waits: the client's sleep, injectable in tests. */
export type Sleep = (ms: number) => Promise<void>;

const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `read()`, tried again after {@link backoffMs} for as long as it fails transiently (503, 429,
 * resets, timeouts: {@link isTransient}); any other failure is thrown. Only for reads (GETs) and
 * requests the service makes idempotent. `onRetry` hears of each failure and the wait (a progress
 * line can say the service is not answering).
 */
export async function retryTransient<T>(
  read: () => Promise<T>,
  options: { sleep?: Sleep; onRetry?: (error: ApiError, waitMs: number) => void } = {},
): Promise<T> {
  for (let failures = 1; ; failures++) {
    try {
      return await read();
    } catch (error) {
      if (!isTransient(error)) throw error;
      const wait = backoffMs(error, failures);
      options.onRetry?.(error, wait);
      await (options.sleep ?? realSleep)(wait);
    }
  }
}

/**
 * Reads `read()` until `settled` says the value is final, and answers it: the first read at once
 * (or `options.current`, a value already in hand), then again after 250 ms, each wait 1.5 times
 * the last, at most 2 s. A read that fails transiently (503, 429 with its `Retry-After`, a reset,
 * a timeout) is tried again with backoff, for as long as the wait lasts; any other failure is
 * thrown. `onRead` sees every value (a progress bar). It never gives up by itself (Ctrl-C stops a
 * CLI that waits).
 */
export async function pollUntil<T>(
  read: () => Promise<T>,
  settled: (value: T) => boolean,
  options: {
    current?: T;
    onRead?: (value: T) => void;
    onRetry?: (error: ApiError, waitMs: number) => void;
    sleep?: Sleep;
  } = {},
): Promise<T> {
  const sleep = options.sleep ?? realSleep;
  const readRetrying = () => retryTransient(read, { sleep, onRetry: options.onRetry });
  let value = 'current' in options ? (options.current as T) : await readRetrying();
  for (let delay = 250; ; delay = Math.min(2000, delay * 1.5)) {
    options.onRead?.(value);
    if (settled(value)) return value;
    await sleep(delay);
    value = await readRetrying();
  }
}

/** How many times a request that changes something is sent in all when its answer is lost. */
const SETTLE_ATTEMPTS = 8;

/**
 * Sends a request that changes something but is idempotent on the service (a create with a client
 * token, a `complete`), and finds out what happened when its answer is lost: on a timeout, a reset
 * or a 5xx it may still have taken effect, so after a backoff `ask` reads the outcome from the
 * service (GET the resource) and, when that says it is done, that is the answer; otherwise the
 * request is sent again (safe: idempotent), up to {@link SETTLE_ATTEMPTS} times in all. `ask`
 * answers undefined for "not done yet, send again".
 */
export async function settle<T>(
  send: () => Promise<T>,
  ask: () => Promise<T | undefined>,
  options: { sleep?: Sleep; onRetry?: (error: ApiError, waitMs: number) => void } = {},
): Promise<T> {
  const sleep = options.sleep ?? realSleep;
  for (let attempt = 1; ; attempt++) {
    let lost: ApiError;
    try {
      return await send();
    } catch (error) {
      if (!isTransient(error) || attempt >= SETTLE_ATTEMPTS) throw error;
      lost = error;
    }
    const wait = backoffMs(lost, attempt);
    options.onRetry?.(lost, wait);
    await sleep(wait);
    const outcome = await retryTransient(ask, options);
    if (outcome !== undefined) return outcome;
  }
}
