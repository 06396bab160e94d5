import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import { MemoryAuditLog } from '../../../../lib/adapters/memory/identity.ts';
import { MemoryRequestCounter } from '../../../../lib/adapters/memory/request-counter.ts';
import { DEFAULT_QUOTA, type QuotaLimits } from '../../../../lib/core/identity/accounts.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import {
  BLOCK_REQUEST_FACTOR,
  type RequestCounter,
  RequestLimiter,
} from '../../../../lib/core/identity/request-rate.ts';
import { CALLER_CONTEXT_KEY, httpHandler } from '../../../../lib/http/stack.ts';
import { testCaller } from '../../../support/callers.ts';
import { httpEvent, lambdaContext } from '../../../support/events.ts';

let clock: ManualClock;
let limits: Map<string, QuotaLimits>;
let handler: ReturnType<typeof httpHandler>;
let alice: Caller;
let bob: Caller;

beforeEach(() => {
  // Mid-window: the window of 2 s (100 requests at 50/s) started 0.5 s ago.
  clock = new ManualClock(Date.UTC(2026, 11, 1) + 500);
  limits = new Map();
  const limiter = new RequestLimiter({
    counter: new MemoryRequestCounter(),
    clock,
    limits: async (accountId) => limits.get(accountId) ?? DEFAULT_QUOTA,
    region: 'eu-west-1',
  });
  handler = httpHandler({}, async ({ caller }) => ({ body: { accountId: caller.accountId } }), {
    audit: new MemoryAuditLog(),
    limiter,
  });
  alice = testCaller();
  bob = testCaller();
});

async function call(caller?: Caller) {
  const event = httpEvent({ method: 'GET' });
  if (caller)
    (event.requestContext as { authorizer?: unknown }).authorizer = {
      lambda: { [CALLER_CONTEXT_KEY]: JSON.stringify(caller) },
    };
  const result = (await handler(event, lambdaContext)) as APIGatewayProxyStructuredResultV2;
  return {
    status: result.statusCode,
    headers: result.headers ?? {},
    body: JSON.parse(String(result.body || 'null')),
  };
}

describe('the request rate of an account', () => {
  it('lets the default burst of 100 through, answers the next 429 request.throttled with Retry-After, and passes again in the next window', async () => {
    for (let i = 0; i < DEFAULT_QUOTA.requestBurst; i++) expect((await call(alice)).status).toBe(200);
    const throttled = await call(alice);
    expect(throttled.status).toBe(429);
    expect(throttled.headers['retry-after']).toBe('2');
    expect(throttled.body).toMatchObject({
      error: 'request.throttled',
      details: { region: 'eu-west-1', retryAfterSeconds: 2, limit: 100, windowSeconds: 2 },
    });
    expect(throttled.body.message).toMatch(/more than 100 requests in 2 s .*retry after 2 s/);
    // Another account is not held back by it.
    expect((await call(bob)).status).toBe(200);
    clock.advance(1000);
    expect((await call(alice)).headers['retry-after']).toBe('1');
    clock.advance(500);
    expect((await call(alice)).status).toBe(200);
  });

  it("applies the operator's limits for the account: 5 per second, bursts of 5", async () => {
    limits.set(alice.accountId, { ...DEFAULT_QUOTA, requestsPerSecond: 5, requestBurst: 5 });
    for (let i = 0; i < 5; i++) expect((await call(alice)).status).toBe(200);
    expect((await call(alice)).status).toBe(429);
    clock.advance(500);
    expect((await call(alice)).status).toBe(200);
  });

  it('does not count a request without a caller: it is a 401 before anything else', async () => {
    limits.set(alice.accountId, { ...DEFAULT_QUOTA, requestsPerSecond: 1, requestBurst: 1 });
    expect((await call()).status).toBe(401);
    expect((await call(alice)).status).toBe(200);
    expect((await call(alice)).status).toBe(429);
  });
});

/** The memory counter, counting the takes it is asked for (the conditional writes DynamoDB would get). */
class CountedCounter extends MemoryRequestCounter {
  takes = 0;
  override async take(id: string, start: number, windowMs: number, limit: number, count = 1) {
    this.takes++;
    return super.take(id, start, windowMs, limit, count);
  }
}

describe('the request limiter’s reservations', () => {
  const limiterOver = (counter: RequestCounter) =>
    new RequestLimiter({ counter, clock, limits: async () => DEFAULT_QUOTA, region: 'eu-west-1' });
  const admitted = async (limiter: RequestLimiter, n: number, kind: 'api' | 'blocks' = 'api') => {
    const answers = await Promise.allSettled(
      Array.from({ length: n }, () => limiter.admit(alice.accountId, kind)),
    );
    return answers.filter((a) => a.status === 'fulfilled').length;
  };

  it('lets exactly the burst through a busy container with far fewer counter writes, and refuses the rest of a full window without asking', async () => {
    const counter = new CountedCounter();
    const limiter = limiterOver(counter);
    for (let i = 0; i < DEFAULT_QUOTA.requestBurst; i++) await limiter.admit(alice.accountId);
    expect(await counter.count(alice.accountId, clock.now() - (clock.now() % 2000))).toBe(100);
    // 1, 2, 4, 8, 12, 12… (an eighth of the burst at most), the last places one by one.
    expect(counter.takes).toBeLessThan(20);
    const before = counter.takes;
    await expect(limiter.admit(alice.accountId)).rejects.toMatchObject({ code: 'request.throttled' });
    await expect(limiter.admit(alice.accountId)).rejects.toMatchObject({ code: 'request.throttled' });
    expect(counter.takes - before).toBeLessThanOrEqual(2);
    clock.advance(1500);
    await limiter.admit(alice.accountId);
  });

  it('shares one reservation among concurrent requests of a container', async () => {
    const counter = new CountedCounter();
    const limiter = limiterOver(counter);
    expect(await admitted(limiter, 64)).toBe(64);
    expect(counter.takes).toBeLessThan(16);
  });

  it('never lets two containers together pass the limit, what one reserved and left unused counting', async () => {
    const counter = new MemoryRequestCounter();
    const [a, b] = [limiterOver(counter), limiterOver(counter)];
    const passed = (await Promise.all([admitted(a, 70), admitted(b, 70)])).reduce((x, y) => x + y, 0);
    expect(passed).toBeLessThanOrEqual(DEFAULT_QUOTA.requestBurst);
    expect(passed).toBeGreaterThan(DEFAULT_QUOTA.requestBurst - 2 * 12);
    expect(await counter.count(alice.accountId, clock.now() - (clock.now() % 2000))).toBe(100);
  });

  it('counts block transfers apart, at 20 times the account’s rate and burst', async () => {
    const counter = new MemoryRequestCounter();
    const limiter = limiterOver(counter);
    const burst = DEFAULT_QUOTA.requestBurst * BLOCK_REQUEST_FACTOR;
    for (let i = 0; i < burst; i++) await limiter.admit(alice.accountId, 'blocks');
    const refused = await limiter.admit(alice.accountId, 'blocks').catch((error) => error);
    expect(refused).toMatchObject({
      code: 'request.throttled',
      details: { limit: 2000, windowSeconds: 2 },
      message: expect.stringMatching(/more than 2000 block transfers in 2 s .*1000\/s/),
    });
    // The API's own budget is untouched.
    expect(await admitted(limiter, DEFAULT_QUOTA.requestBurst)).toBe(100);
  });
});
