import type { Clock } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { type QuotaLimits, requestWindowMs } from './accounts.ts';

/**
 * Requests counted per account and fixed window in a region. One conditional increment per
 * request: the count is taken only below `limit`, so racing requests never pass it together.
 */
export interface RequestCounter {
  /**
   * Counts one request of the account in the window that starts at `windowStartMs` and lasts
   * `windowMs`; false (and nothing counted) if `limit` requests were counted in it already.
   */
  take(accountId: string, windowStartMs: number, windowMs: number, limit: number): Promise<boolean>;
  /** Requests counted in the window that starts at `windowStartMs`. */
  count(accountId: string, windowStartMs: number): Promise<number>;
}

export interface RequestLimiterOptions {
  counter: RequestCounter;
  clock: Clock;
  /** The account's limits (`requestsPerSecond`, `requestBurst`). */
  limits(accountId: string): Promise<QuotaLimits>;
  region: string;
  /** How long an account's limits are reused before they are read again. */
  limitsTtlMs?: number;
}

/** Limits kept for this many accounts at most (the oldest goes first): memory stays bounded. */
const MAX_CACHED_ACCOUNTS = 10_000;

/**
 * A per-account request rate in a region: at most `requestBurst` requests in each window of
 * `requestBurst / requestsPerSecond` seconds (50/s sustained with bursts of 100 by default). Past it
 * a request is refused with `request.throttled` and how many seconds remain in the window. A fixed
 * window lets up to twice the burst through across a window's edge; that is the price of one write
 * per request. An account's limits are read at most once per `limitsTtlMs` (a minute): an
 * operator's change applies within it.
 */
export class RequestLimiter {
  readonly #o: Required<RequestLimiterOptions>;
  readonly #limits = new Map<string, { limits: QuotaLimits; until: number }>();

  constructor(options: RequestLimiterOptions) {
    this.#o = { limitsTtlMs: 60_000, ...options };
  }

  /** Counts a request of the account; throws `request.throttled` past its rate. */
  async admit(accountId: string): Promise<void> {
    const limits = await this.#limitsOf(accountId);
    const now = this.#o.clock.now();
    const windowMs = requestWindowMs(limits);
    const start = now - (now % windowMs);
    if (await this.#o.counter.take(accountId, start, windowMs, limits.requestBurst)) return;
    const retryAfterSeconds = Math.max(1, Math.ceil((start + windowMs - now) / 1000));
    throw new VolsnapError(
      'request.throttled',
      `The account made more than ${limits.requestBurst} requests in ${windowMs / 1000} s to ${this.#o.region} (its rate is ${limits.requestsPerSecond}/s): retry after ${retryAfterSeconds} s, and space requests out.`,
      {
        details: {
          region: this.#o.region,
          retryAfterSeconds,
          limit: limits.requestBurst,
          windowSeconds: windowMs / 1000,
        },
      },
    );
  }

  /** Requests of the account counted in the current window (for `account usage`). */
  async inWindow(accountId: string): Promise<number> {
    const limits = await this.#limitsOf(accountId);
    const now = this.#o.clock.now();
    const windowMs = requestWindowMs(limits);
    return this.#o.counter.count(accountId, now - (now % windowMs));
  }

  async #limitsOf(accountId: string): Promise<QuotaLimits> {
    const now = this.#o.clock.now();
    const cached = this.#limits.get(accountId);
    if (cached && cached.until > now) return cached.limits;
    const limits = await this.#o.limits(accountId);
    this.#limits.delete(accountId);
    if (this.#limits.size >= MAX_CACHED_ACCOUNTS)
      this.#limits.delete(this.#limits.keys().next().value as string);
    this.#limits.set(accountId, { limits, until: now + this.#o.limitsTtlMs });
    return limits;
  }
}
