import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { describeFailure, formatFailure } from '../../../lib/cli/errors.ts';
import { ApiClient, ApiError, GATEWAY_FAILURE, isRetryable } from '../../../lib/client/api-client.ts';

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** One answer of the API played here: a status with a body and headers, or a dropped connection. */
type Answer = { status: number; body?: unknown; headers?: Record<string, string> } | 'reset';

const ok: Answer = { status: 200, body: { region: 'eu-west-1', version: 'x', status: 'ok' } };
/** What API Gateway answers when the route's Lambda authorizer throws (or its integration fails). */
const gateway500: Answer = { status: 500, body: { message: 'Internal Server Error' } };
const throttled = (retryAfter?: string): Answer => ({
  status: 429,
  body: { error: 'request.throttled', message: 'Too many: retry after 2 s.', requestId: 'r' },
  headers: retryAfter ? { 'retry-after': retryAfter } : {},
});

/** A local HTTP server that gives `answers` in turn, then `then` for ever; it records every request. */
async function api(answers: Answer[], then: Answer = ok): Promise<{ endpoint: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    const answer = answers.shift() ?? then;
    if (answer === 'reset') return void request.socket.destroy();
    response.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
    response.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function client(endpoint: string, waits: number[], retryForMs?: number) {
  return new ApiClient({
    endpoint,
    sleep: async (ms) => void waits.push(ms),
    ...(retryForMs === undefined ? {} : { retryForMs }),
  });
}

describe('which failures a request safe to repeat is sent again for', () => {
  const error = (status: number, code: string, retryAfterSeconds?: number) =>
    new ApiError(status, code, 'm', undefined, undefined, retryAfterSeconds);
  it('no answer, 502/503/504, a 429 naming its wait and API Gateway’s bare 500; not volsnap’s 500, a 4xx or a quota', () => {
    expect(isRetryable(error(0, 'client.unreachable'))).toBe(true);
    expect(isRetryable(error(0, 'client.timeout'))).toBe(true);
    expect(isRetryable(error(502, GATEWAY_FAILURE))).toBe(true);
    expect(isRetryable(error(503, 'storage.unavailable', 1))).toBe(true);
    expect(isRetryable(error(503, GATEWAY_FAILURE))).toBe(true);
    expect(isRetryable(error(504, GATEWAY_FAILURE))).toBe(true);
    expect(isRetryable(error(429, 'request.throttled', 2))).toBe(true);
    expect(isRetryable(error(500, GATEWAY_FAILURE))).toBe(true);
    expect(isRetryable(error(500, 'internal'))).toBe(false);
    expect(isRetryable(error(429, 'quota.exceeded'))).toBe(false);
    expect(isRetryable(error(404, 'snapshot.notFound'))).toBe(false);
    expect(isRetryable(error(409, 'snapshot.invalidState'))).toBe(false);
  });
});

describe('API Gateway’s bare 500 (an authorizer that failed while the table restarts)', () => {
  it('is api.unavailable, transient: a GET is sent again with backoff until it is answered', async () => {
    const { endpoint, requests } = await api([gateway500, gateway500, 'reset', gateway500]);
    const waits: number[] = [];
    await expect(client(endpoint, waits).health()).resolves.toMatchObject({ status: 'ok' });
    expect(requests).toHaveLength(5);
    expect(waits).toHaveLength(4);
    // 1 s doubling, with jitter (half to all of it).
    expect(waits[0]).toBeGreaterThanOrEqual(500);
    expect(waits[3]).toBeGreaterThanOrEqual(4000);
  });

  it('gives up once the retry budget is spent, as one error line with the transient exit code', async () => {
    const { endpoint, requests } = await api([], gateway500);
    const waits: number[] = [];
    const error = await client(endpoint, waits, 20_000)
      .health()
      .catch((e) => e);
    expect(error).toMatchObject({ status: 500, code: GATEWAY_FAILURE });
    expect(error.message).toMatch(
      /^GET \/v1\/health answered 500 Internal Server Error: .*Run the command again later\.$/,
    );
    expect(waits.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(20_000);
    expect(requests.length).toBeGreaterThan(3);
    const failure = describeFailure(error);
    expect(failure?.exitCode).toBe(5);
    expect(
      formatFailure(failure as NonNullable<typeof failure>, false)
        .trim()
        .split('\n'),
    ).toHaveLength(1);
  });

  it('a POST with a client token is sent again; one without is sent once; volsnap’s own 500 is not repeated', async () => {
    const first = await api([gateway500, { status: 503, body: { message: 'Service Unavailable' } }], {
      status: 201,
      body: { snapshotId: 'snap-1', state: 'pending' },
    });
    const waits: number[] = [];
    await expect(
      client(first.endpoint, waits).createSnapshot({ volumeId: 'vol-1', clientToken: 't-1' }),
    ).resolves.toMatchObject({ snapshotId: 'snap-1' });
    expect(first.requests).toEqual(['POST /v1/snapshots', 'POST /v1/snapshots', 'POST /v1/snapshots']);

    // Its answer lost (a reset after it was sent): it may have taken effect, the caller asks first.
    const lost = await api(['reset']);
    await expect(
      client(lost.endpoint, waits).createSnapshot({ volumeId: 'vol-1', clientToken: 't-1' }),
    ).rejects.toMatchObject({ status: 0, code: 'client.unreachable' });
    expect(lost.requests).toEqual(['POST /v1/snapshots']);

    const second = await api([gateway500]);
    await expect(
      client(second.endpoint, waits).createVolume({ name: 'disk', sizeBytes: 1 }),
    ).rejects.toMatchObject({ status: 500, code: GATEWAY_FAILURE });
    expect(second.requests).toEqual(['POST /v1/volumes']);

    const third = await api([], { status: 500, body: { error: 'internal', message: 'Internal error.' } });
    await expect(client(third.endpoint, waits).health()).rejects.toMatchObject({ code: 'internal' });
    expect(third.requests).toHaveLength(1);
  });
});

describe('a POST that only reads (export url)', () => {
  it('is sent again after its answer was lost (a reset), as a GET would be', async () => {
    const { endpoint, requests } = await api(['reset'], {
      status: 200,
      body: { url: 'https://s3/x', expiresInSeconds: 60, size: 1, format: 'raw' },
    });
    const waits: number[] = [];
    await expect(client(endpoint, waits).exportUrl('exp-1')).resolves.toMatchObject({ url: 'https://s3/x' });
    expect(requests).toEqual(['POST /v1/exports/exp-1/url', 'POST /v1/exports/exp-1/url']);
    expect(waits).toHaveLength(1);
  });

  it('a complete whose answer was lost is not sent again here: its caller reads the snapshot back', async () => {
    const { endpoint, requests } = await api(['reset']);
    await expect(client(endpoint, []).completeSnapshot('snap-1')).rejects.toMatchObject({
      status: 0,
      code: 'client.unreachable',
    });
    expect(requests).toHaveLength(1);
  });
});

describe('a refused connection (nothing listening)', () => {
  it('is tried again for 10 s at most (a local region process being replaced), then client.unreachable', async () => {
    const { endpoint } = await api([]);
    await new Promise<void>((resolve) => servers.pop()?.close(() => resolve()));
    const waits: number[] = [];
    const error = await client(endpoint, waits)
      .health()
      .catch((e) => e);
    expect(error).toMatchObject({ status: 0, code: 'client.unreachable', details: { refused: true } });
    expect(waits.length).toBeGreaterThan(1);
    expect(waits.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10_000);
  });
});

describe('the API client on 429 and 503 with Retry-After', () => {
  it('waits what Retry-After says and tries a GET again, for as long as the budget lasts', async () => {
    const { endpoint, requests } = await api([throttled('2'), throttled('2')]);
    const waits: number[] = [];
    await expect(client(endpoint, waits).health()).resolves.toMatchObject({ status: 'ok' });
    expect(waits).toEqual([2000, 2000]);
    expect(requests).toHaveLength(3);

    const busy = await api([], throttled('2'));
    const spent: number[] = [];
    const error = await client(busy.endpoint, spent, 5000)
      .health()
      .catch((e) => e);
    expect(error).toMatchObject({
      status: 429,
      code: 'request.throttled',
      message: 'Too many: retry after 2 s.',
    });
    expect(spent).toEqual([2000, 2000]);
  });

  it('never repeats a POST without a client token, nor a 429 that names no wait (a quota)', async () => {
    const { endpoint, requests } = await api([], throttled('2'));
    const waits: number[] = [];
    await expect(client(endpoint, waits).createVolume({ name: 'disk', sizeBytes: 1 })).rejects.toMatchObject({
      status: 429,
    });
    expect(requests).toEqual(['POST /v1/volumes']);
    const quota = await api([], throttled());
    await expect(client(quota.endpoint, waits).health()).rejects.toMatchObject({ status: 429 });
    expect(quota.requests).toHaveLength(1);
    expect(waits).toEqual([]);
  });

  it('a 503 storage.unavailable is waited out as its Retry-After says', async () => {
    const { endpoint, requests } = await api([
      {
        status: 503,
        body: { error: 'storage.unavailable', message: 'later' },
        headers: { 'retry-after': '1' },
      },
    ]);
    const waits: number[] = [];
    await expect(client(endpoint, waits).health()).resolves.toMatchObject({ status: 'ok' });
    expect(waits).toEqual([1000]);
    expect(requests).toHaveLength(2);
  });
});
