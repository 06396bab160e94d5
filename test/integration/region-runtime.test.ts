import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RegionRuntime } from '../../scripts/local-cloud/region-runtime.ts';
import { nextRunDelayMs, ScheduleRunsFile } from '../../scripts/local-cloud/schedules.ts';
import { loadServerlessSpec } from '../../scripts/local-cloud/serverless-spec.ts';
import { fixtureLog } from '../fixtures/functions/fixture.ts';

interface Echo {
  pathParameters: Record<string, string>;
  body: string;
  isBase64Encoded: boolean;
}

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
let runtime: RegionRuntime;
let api: string;
let queueUrl: string;
let sqs: SQSClient;

beforeAll(async () => {
  const spec = await loadServerlessSpec(`${fixtures}serverless.yml`);
  runtime = new RegionRuntime({
    region: 'eu-west-1',
    root: fixtures,
    spec,
    apiPort: 0,
    queuePort: 0,
    queueNames: { WorkQueue: 'fixture-work' },
  });
  const ports = await runtime.start();
  api = `http://127.0.0.1:${ports.apiPort}`;
  queueUrl = runtime.queues.queueUrl(ports.queuePort, 'fixture-work');
  process.env.FIXTURE_SQS_ENDPOINT = `http://127.0.0.1:${ports.queuePort}`;
  process.env.FIXTURE_QUEUE_URL = queueUrl;
  sqs = new SQSClient({
    region: 'eu-west-1',
    endpoint: process.env.FIXTURE_SQS_ENDPOINT,
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
});
afterAll(async () => {
  await runtime?.stop();
});

describe('the local cloud region runtime', () => {
  it('serves exactly the routes, schedules and queues of its serverless.yml', () => {
    expect(runtime.surface).toEqual({
      routes: [
        'DELETE /v1/items/{itemId} -> area',
        'DELETE /v1/items/{itemId}/tags/{tag} -> area',
        'GET /v1/files/{path+} -> echo',
        'GET /v1/guarded -> guarded',
        'GET /v1/items/{itemId} -> area',
        'GET /v1/slow -> slow',
        'POST /v1/echo/{id} -> echo',
        'POST /v1/items/copy -> area',
      ],
      schedules: ['tick rate(1 minute)'],
      queues: ['WorkQueue -> worker'],
    });
  });

  it("runs a route's Lambda authorizer as API Gateway does: 401 without the identity source, 403 on no, context on yes", async () => {
    const missing = await fetch(`${api}/v1/guarded`);
    expect([missing.status, await missing.json()]).toEqual([401, { message: 'Unauthorized' }]);
    const denied = await fetch(`${api}/v1/guarded`, { headers: { 'x-pass': 'closed' } });
    expect([denied.status, await denied.json()]).toEqual([403, { message: 'Forbidden' }]);
    const allowed = await fetch(`${api}/v1/guarded`, { headers: { 'x-pass': 'open' } });
    expect([allowed.status, await allowed.json()]).toEqual([200, { context: { pass: 'open' } }]);
  });

  it('turns a request into an HTTP API v2 event and the result back into a response', async () => {
    const response = await fetch(`${api}/v1/echo/snap%2D1?a=1&a=2&b=x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"hello":"world"}',
    });
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({
      routeKey: 'POST /v1/echo/{id}',
      pathParameters: { id: 'snap-1' },
      query: { a: '1,2', b: 'x' },
      body: '{"hello":"world"}',
      isBase64Encoded: false,
      contentType: 'application/json',
      method: 'POST',
    });
    const greedy = (await (await fetch(`${api}/v1/files/a/b/c.img`)).json()) as Echo;
    expect(greedy.pathParameters).toEqual({ path: 'a/b/c.img' });
  });

  it("routes each route of an area function to that function, whose router runs the route's own handler", async () => {
    const show = await fetch(`${api}/v1/items/it%2D1`);
    expect([show.status, await show.json()]).toEqual([
      200,
      { route: 'show', itemId: 'it-1', routeKey: 'GET /v1/items/{itemId}' },
    ]);
    const copy = await fetch(`${api}/v1/items/copy`, { method: 'POST' });
    expect([copy.status, await copy.json()]).toEqual([202, { route: 'copy' }]);
    const untag = await fetch(`${api}/v1/items/it-2/tags/env`, { method: 'DELETE' });
    expect(await untag.json()).toEqual({ route: 'untag', itemId: 'it-2', tag: 'env' });
    const remove = await fetch(`${api}/v1/items/it-2`, { method: 'DELETE' });
    expect(remove.status).toBe(204);
    const wrongMethod = await fetch(`${api}/v1/items/it-2`, { method: 'PATCH' });
    expect([wrongMethod.status, ((await wrongMethod.json()) as { error: string }).error]).toEqual([
      405,
      'route.methodNotAllowed',
    ]);
  });

  it('base64-encodes binary bodies, as API Gateway does', async () => {
    const bytes = Buffer.from([0, 1, 2, 255]);
    const response = await fetch(`${api}/v1/echo/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    const echoed = (await response.json()) as Echo;
    expect(echoed.isBase64Encoded).toBe(true);
    expect(Buffer.from(echoed.body, 'base64')).toEqual(bytes);
  });

  it("answers unknown routes and methods in volsnap's error shape", async () => {
    const missing = await fetch(`${api}/v1/nothing`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toBe('route.notFound');
    const wrongMethod = await fetch(`${api}/v1/slow`, { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    expect(((await wrongMethod.json()) as { message: string }).message).toContain('use GET');
  });

  it('ends an invocation that outlives its timeout with a 503, as API Gateway does', async () => {
    const response = await fetch(`${api}/v1/slow`);
    expect(response.status).toBe(503);
  });

  it('delivers messages sent with the real SQS client to the queue consumer', async () => {
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'hello' }));
    expect(sent.MessageId).toBeTruthy();
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: [
          { Id: '1', MessageBody: 'b1' },
          { Id: '2', MessageBody: 'b2' },
        ],
      }),
    );
    // A handler that sends from inside an HTTP invocation reaches the same queue.
    await fetch(`${api}/v1/echo/x?enqueue=from-handler`, { method: 'POST' });
    await runtime.queues.idle();
    const bodies = fixtureLog().deliveries.map((d) => d.body);
    expect(bodies).toEqual(expect.arrayContaining(['hello', 'b1', 'b2', 'from-handler']));
  });

  it('redelivers failed messages and dead-letters them after the maximum receive count', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'fail-always' }));
    await runtime.queues.idle();
    const attempts = fixtureLog().deliveries.filter((d) => d.body === 'fail-always');
    expect(attempts.map((a) => a.receiveCount)).toEqual(['1', '2', '3']);
    expect(runtime.queues.deadLetters.map((m) => m.body)).toContain('fail-always');
  });

  it('runs scheduled functions with an EventBridge event, never two runs of one function at once', async () => {
    const spec = await loadServerlessSpec(`${fixtures}serverless.yml`);
    const tick = spec.functions.find((f) => f.name === 'tick');
    if (!tick) throw new Error('fixture has no tick function');
    const before = fixtureLog().ticks.length;
    await Promise.all([runtime.runSchedule(tick), runtime.runSchedule(tick)]);
    const ticks = fixtureLog().ticks.slice(before);
    expect(ticks).toHaveLength(1);
    expect(ticks[0]?.['detail-type']).toBe('Scheduled Event');
  });

  it('keeps its schedules across a restart of the process: what came due while it was down fires at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'schedules-'));
    const runsFile = join(dir, 'schedule-runs.json');
    const spec = await loadServerlessSpec(`${fixtures}serverless.yml`);
    const start = (scheduleRunsFile: string) => {
      const restarted = new RegionRuntime({
        region: 'eu-west-1',
        root: fixtures,
        spec,
        apiPort: 0,
        queuePort: 0,
        queueNames: { WorkQueue: 'fixture-work-restarted' },
        scheduleRunsFile,
      });
      return restarted.start().then(() => restarted);
    };
    // A first process makes the rule: recorded as made now, it fires one rate later (not now).
    const first = await start(runsFile);
    await first.stop();
    const made = new ScheduleRunsFile(runsFile).read()['tick rate(1 minute)'];
    expect(made).toBeTypeOf('number');
    // The process was down past the rate: the next one fires the overdue run at once, and records it.
    new ScheduleRunsFile(runsFile).record('tick rate(1 minute)', Date.now() - 90_000);
    const before = fixtureLog().ticks.length;
    const second = await start(runsFile);
    try {
      await vi.waitFor(() => expect(fixtureLog().ticks.length).toBeGreaterThan(before), { timeout: 10_000 });
      const fired = new ScheduleRunsFile(runsFile).read()['tick rate(1 minute)'] ?? 0;
      expect(fired).toBeGreaterThan(Date.now() - 60_000);
    } finally {
      await second.stop();
    }
  });
});

describe('when a schedule next fires', () => {
  const minute = 60_000;
  it('one rate after the rule is made, the rest of the rate after a firing, at once when overdue', () => {
    expect(nextRunDelayMs(undefined, minute, 1_000_000)).toBe(minute);
    expect(nextRunDelayMs(1_000_000 - 20_000, minute, 1_000_000)).toBe(40_000);
    expect(nextRunDelayMs(1_000_000 - minute, minute, 1_000_000)).toBe(0);
    expect(nextRunDelayMs(1_000_000 - 10 * minute, minute, 1_000_000)).toBe(0);
    // A last firing in the future (a clock set back): start the rate over.
    expect(nextRunDelayMs(2_000_000, minute, 1_000_000)).toBe(minute);
  });

  it('the runs file: absent or torn reads as none run, a record keeps the others', () => {
    const file = new ScheduleRunsFile(join(mkdtempSync(join(tmpdir(), 'runs-')), 'sub', 'runs.json'));
    expect(file.read()).toEqual({});
    file.record('a rate(1 minute)', 5);
    file.record('b rate(1 hour)', 7);
    expect(file.read()).toEqual({ 'a rate(1 minute)': 5, 'b rate(1 hour)': 7 });
    writeFileSync(file.path, '{"a rate(1 minu');
    expect(file.read()).toEqual({});
  });
});
