import type { Clock } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { type QuotaLimits, requestWindowMs } from './accounts.ts';

/**
 * Requests counted per account and fixed window in a region. One conditional increment takes one
 * request or a few at once: they are taken only when they all fit under `limit`, so racing
 * requests never pass it together.
 */
export interface RequestCounter {
  /**
   * Counts `count` (1 unless given) requests of `counterId` in the window that starts at
   * `windowStartMs` and lasts `windowMs`; false (and nothing counted) if they do not all fit under
   * `limit`. `counterId` is an account id, or an account id with a `#class` suffix for a class of
   * requests counted apart (`acct#blocks`).
   */
  take(
    counterId: string,
    windowStartMs: number,
    windowMs: number,
    limit: number,
    count?: number,
  ): Promise<boolean>;
  /** Requests counted in the window that starts at `windowStartMs`. */
  count(counterId: string, windowStartMs: number): Promise<number>;
}

/**
 * What a request is counted as: `api`, a call of volsnap's API or of the EBS direct API's control
 * calls; `blocks`, one block moved by PutSnapshotBlock or GetSnapshotBlock (the data the CLI moves
 * through presigned URLs, which are not counted at all), counted apart at
 * {@link BLOCK_REQUEST_FACTOR} times the account's rate and burst.
 */
export type RequestClass = 'api' | 'blocks';

/**
 * Block transfers of the EBS direct API may run this many times an account's API request rate:
 * 1,000 a second with bursts of 2,000 by default (EBS allows 1,000 a second per snapshot), so that a
 * client at 64 requests at once moves a volume at the storage's speed, not the API's.
 */
export const BLOCK_REQUEST_FACTOR = 20;

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
/** The most requests one reservation takes at once, and the share of a window's limit it may take. */
const MAX_RESERVATION = 16;
const RESERVATION_SHARE = 8;

/** What this container reserved of a counter's current window and has not used yet. */
interface Reservation {
  windowStart: number;
  left: number;
  /** How many the last reservation got: the next one in the same window asks for twice as many. */
  got: number;
  /** The counter refused even one: the window is full (its count only grows) until it ends. */
  full: boolean;
}

/**
 * A per-account request rate in a region: at most `requestBurst` requests in each window of
 * `requestBurst / requestsPerSecond` seconds (50/s sustained with bursts of 100 by default), block
 * transfers apart at {@link BLOCK_REQUEST_FACTOR} times that. Past it a request is refused with
 * `request.throttled` and how many seconds remain in the window. A fixed window lets up to twice the
 * burst through across a window's edge; that is the price of one write per request, or fewer: a
 * container that used up what it reserved reserves twice as many for the same window the next time
 * (1, 2, 4… up to 16, and at most an eighth of the limit), so a busy client costs one conditional
 * write per 16 requests. What a container reserved and did not use is lost with its window: the
 * limit is never passed, and others may be refused up to that many requests early. A reservation
 * that does not fit asks for one request only, so the last places of a window are taken one by one.
 * An account's limits are read at most once per `limitsTtlMs` (a minute): an operator's change
 * applies within it.
 */
export class RequestLimiter {
  readonly #o: Required<RequestLimiterOptions>;
  readonly #limits = new Map<string, { limits: QuotaLimits; until: number }>();
  readonly #reserved = new Map<string, Reservation>();
  /** A reservation being taken from the counter, by counter: other requests wait for it. */
  readonly #pending = new Map<string, Promise<void>>();

  constructor(options: RequestLimiterOptions) {
    this.#o = { limitsTtlMs: 60_000, ...options };
  }

  /** Counts a request of the account (of `kind`, `api` unless said); throws `request.throttled` past its rate. */
  async admit(accountId: string, kind: RequestClass = 'api'): Promise<void> {
    const limits = classLimits(await this.#limitsOf(accountId), kind);
    const now = this.#o.clock.now();
    const windowMs = requestWindowMs(limits);
    const start = now - (now % windowMs);
    const counterId = kind === 'api' ? accountId : `${accountId}#${kind}`;
    if (await this.#take(counterId, start, windowMs, limits.requestBurst)) return;
    const retryAfterSeconds = Math.max(1, Math.ceil((start + windowMs - now) / 1000));
    const what = kind === 'api' ? 'requests' : 'block transfers';
    throw new VolsnapError(
      'request.throttled',
      `The account made more than ${limits.requestBurst} ${what} in ${windowMs / 1000} s to ${this.#o.region} (its rate is ${limits.requestsPerSecond}/s): retry after ${retryAfterSeconds} s, and space requests out.`,
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

  /**
   * One request out of this container's reservation for the window. When it is used up, one
   * request reserves more for all (the others wait for it and share what it got).
   */
  async #take(counterId: string, start: number, windowMs: number, limit: number): Promise<boolean> {
    for (;;) {
      const held = this.#reserved.get(counterId);
      if (held?.windowStart === start) {
        if (held.left > 0) {
          held.left--;
          return true;
        }
        if (held.full) return false;
      }
      const pending = this.#pending.get(counterId);
      if (!pending) break;
      await pending;
    }
    const reserving = this.#reserve(counterId, start, windowMs, limit).finally(() =>
      this.#pending.delete(counterId),
    );
    this.#pending.set(
      counterId,
      reserving.then(
        () => undefined,
        () => undefined,
      ),
    );
    return reserving;
  }

  /** Reserves requests of the window from the counter, keeping all but the one this request uses. */
  async #reserve(counterId: string, start: number, windowMs: number, limit: number): Promise<boolean> {
    const held = this.#reserved.get(counterId);
    const cap = Math.max(1, Math.min(MAX_RESERVATION, Math.floor(limit / RESERVATION_SHARE)));
    // Used up in this very window: ask for twice as many; a new window starts from what worked.
    const want = Math.min(cap, held?.windowStart === start ? held.got * 2 : (held?.got ?? 1));
    let got = want;
    const { counter } = this.#o;
    if (!(await counter.take(counterId, start, windowMs, limit, want))) {
      if (want === 1 || !(await counter.take(counterId, start, windowMs, limit, 1))) {
        this.#remember(counterId, { windowStart: start, left: 0, got: 1, full: true });
        return false;
      }
      got = 1;
    }
    this.#remember(counterId, { windowStart: start, left: got - 1, got, full: false });
    return true;
  }

  #remember(counterId: string, reservation: Reservation): void {
    this.#reserved.delete(counterId);
    if (this.#reserved.size >= MAX_CACHED_ACCOUNTS)
      this.#reserved.delete(this.#reserved.keys().next().value as string);
    this.#reserved.set(counterId, reservation);
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

/** The rate and burst a class of requests is held to. */
function classLimits(limits: QuotaLimits, kind: RequestClass): QuotaLimits {
  if (kind === 'api') return limits;
  return {
    ...limits,
    requestsPerSecond: limits.requestsPerSecond * BLOCK_REQUEST_FACTOR,
    requestBurst: limits.requestBurst * BLOCK_REQUEST_FACTOR,
  };
}
