import { describe, expect, it, vi } from 'vitest';
import { MemoryAuditLog } from '../../../lib/adapters/memory/identity.ts';
import { VolsnapError } from '../../../lib/core/shared/errors.ts';
import * as z from '../../../lib/core/shared/schema.ts';
import {
  authorizerContext,
  type HttpLambda,
  httpHandler,
  httpRouter,
  IDENTITY_OUTAGE_CONTEXT_KEY,
  publicHttpHandler,
} from '../../../lib/http/stack.ts';
import { testCaller } from '../../support/callers.ts';
import { httpEvent, lambdaContext } from '../../support/events.ts';

const route = publicHttpHandler(
  { body: z.object({ name: z.string().check(z.minLength(1)), size: z.number() }) },
  async ({ body }) => ({ status: 201, body: { created: body.name } }),
);

async function call(handler: HttpLambda, event: ReturnType<typeof httpEvent>) {
  const result = await handler(event, lambdaContext);
  return {
    status: result.statusCode,
    headers: result.headers ?? {},
    body: JSON.parse(String(result.body || 'null')),
  };
}

const json = { 'content-type': 'application/json' };

describe('the HTTP stack', () => {
  it('parses and validates a JSON body, then answers with the route result and the request id', async () => {
    const response = await call(
      route,
      httpEvent({ method: 'POST', headers: json, body: '{"name":"a","size":1}' }),
    );
    expect(response).toEqual({
      status: 201,
      headers: expect.objectContaining({ 'x-request-id': 'req-test' }),
      body: { created: 'a' },
    });
  });

  it('accepts headers in any case (header normalizer)', async () => {
    const response = await call(
      route,
      httpEvent({
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"name":"a","size":1}',
      }),
    );
    expect(response.status).toBe(201);
  });

  it('answers 400 request.malformed for a body that is not JSON', async () => {
    const response = await call(route, httpEvent({ method: 'POST', headers: json, body: '{"name":' }));
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'request.malformed', requestId: 'req-test' });
  });

  it('answers 415 for a body that is not declared as JSON', async () => {
    const response = await call(
      route,
      httpEvent({ method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }),
    );
    expect(response.status).toBe(415);
    expect(response.body.error).toBe('request.unsupportedMediaType');
  });

  it('answers 400 request.invalid naming each invalid field', async () => {
    const response = await call(
      route,
      httpEvent({ method: 'POST', headers: json, body: '{"name":"","size":"big"}' }),
    );
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('request.invalid');
    expect(response.body.message).toMatch(/name: .*>=1/);
    expect(response.body.message).toMatch(/size: .*number/);
    expect(response.body.details.issues.map((i: { path: string }) => i.path).sort()).toEqual([
      'name',
      'size',
    ]);
  });

  it('refuses control characters, DEL, C1 and bidi overrides in any string of a body or query, naming the field, the character and where it is', async () => {
    const free = publicHttpHandler(
      {
        body: z.object({ name: z.string(), tags: z.optional(z.record(z.string(), z.string())) }),
        query: z.looseObject({}),
      },
      async ({ body }) => ({ body }),
    );
    const cases: [unknown, string][] = [
      [
        { name: 'ok\u001b]0;pwned\u0007' },
        'name: contains a control character (U+001B) at position 2; use printable text',
      ],
      [{ name: 'bell\u0007' }, 'name: contains a control character (U+0007) at position 4'],
      [{ name: 'x\u009b2J' }, 'name: contains a control character (U+009B) at position 1'],
      [{ name: 'del\u007f' }, 'name: contains a control character (U+007F) at position 3'],
      [{ name: 'évil\u202etxt.exe' }, 'name: contains a bidirectional control (U+202E) at position 4'],
      [{ name: 'a\u2066b' }, 'name: contains a bidirectional control (U+2066)'],
      [{ name: 'ok', tags: { owner: 'nul\u0000' } }, 'tags.owner: contains a control character (U+0000)'],
      [{ name: 'ok', tags: { 'k\n': 'v' } }, 'tags.k\n: contains a control character (U+000A)'],
    ];
    for (const [body, message] of cases) {
      const response = await call(
        free,
        httpEvent({ method: 'POST', headers: json, body: JSON.stringify(body) }),
      );
      expect(response.status, message).toBe(400);
      expect(response.body.error).toBe('request.invalid');
      expect(response.body.message).toContain(message);
    }
    const query = await call(free, {
      ...httpEvent({ method: 'POST', headers: json, body: '{"name":"ok"}' }),
      queryStringParameters: { name: 'a\u001bb' },
    });
    expect(query.status).toBe(400);
    expect(query.body.message).toContain(
      'Invalid query: name: contains a control character (U+001B) at position 1',
    );
    const fine = await call(
      free,
      httpEvent({ method: 'POST', headers: json, body: JSON.stringify({ name: 'donnée 日本 ok-1 (x)' }) }),
    );
    expect(fine).toMatchObject({ status: 200, body: { name: 'donnée 日本 ok-1 (x)' } });
  });

  it('maps a VolsnapError to the status its code fixes, with its message and details', async () => {
    const failing = publicHttpHandler({}, async () => {
      throw new VolsnapError('volume.hasSnapshots', 'Volume vol-1 still has snapshots.', {
        details: { snapshots: ['snap-1'] },
      });
    });
    const response = await call(failing, httpEvent());
    expect(response.status).toBe(409);
    expect(response.body).toEqual({
      error: 'volume.hasSnapshots',
      message: 'Volume vol-1 still has snapshots.',
      requestId: 'req-test',
      details: { snapshots: ['snap-1'] },
    });
  });

  it('answers a backend call that timed out or lost its connection with 503 storage.unavailable and Retry-After', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const timedOut = Object.assign(new Error('Connection timed out after 120000 ms'), {
      name: 'TimeoutError',
    });
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    for (const error of [timedOut, reset]) {
      const failing = publicHttpHandler({}, async () => {
        throw error;
      });
      const response = await call(failing, httpEvent());
      expect(response.status).toBe(503);
      expect(response.body.error).toBe('storage.unavailable');
      expect(response.headers?.['retry-after'] ?? response.headers?.['Retry-After']).toBe('1');
    }
    log.mockRestore();
  });

  it('hides the cause of a 500 from the client and logs it instead, without secrets', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const failing = publicHttpHandler({}, async () => {
      throw new Error('db password=hunter2 exploded', { cause: new Error('socket hang up') });
    });
    const response = await call(failing, httpEvent({ headers: { authorization: 'Bearer vsk_secret' } }));
    expect(response.status).toBe(500);
    expect(response.body.error).toBe('internal');
    expect(JSON.stringify(response.body)).not.toContain('hunter2');
    const logged = log.mock.calls.map((c) => String(c[0])).join('\n');
    expect(logged).toContain('socket hang up');
    expect(logged).not.toContain('vsk_secret');
    log.mockRestore();
  });

  it('lets bodiless requests through without a content type', async () => {
    const get = publicHttpHandler(
      { query: z.object({ limit: z.optional(z.string()) }) },
      async ({ query }) => ({
        body: query,
      }),
    );
    const response = await call(get, httpEvent({ queryStringParameters: { limit: '5' } }));
    expect(response).toMatchObject({ status: 200, body: { limit: '5' } });
  });
});

/** An event as API Gateway sends it for a request matched to route `routeKey`. */
function routed(routeKey: string, rawPath: string, pathParameters?: Record<string, string>) {
  const base = httpEvent({ method: routeKey.split(' ')[0] });
  return {
    ...base,
    routeKey,
    rawPath,
    ...(pathParameters ? { pathParameters } : {}),
    requestContext: {
      ...base.requestContext,
      routeKey,
      http: { ...base.requestContext.http, path: rawPath },
    },
  };
}

describe('the HTTP router (one function, several routes)', () => {
  const SnapshotPath = z.object({ snapshotId: z.string() });
  const router = httpRouter({
    'GET /v1/snapshots/{snapshotId}': publicHttpHandler({ path: SnapshotPath }, async ({ path }) => ({
      body: { route: 'show', snapshotId: path.snapshotId },
    })),
    'DELETE /v1/snapshots/{snapshotId}': publicHttpHandler({ path: SnapshotPath }, async () => ({
      status: 204,
    })),
    'POST /v1/snapshots/copy': publicHttpHandler(
      { body: z.strictObject({ sourceSnapshotId: z.string() }) },
      async ({ body }) => ({ status: 202, body: { route: 'copy', ...body } }),
    ),
    'DELETE /v1/snapshots/{snapshotId}/shares/{accountId}': publicHttpHandler(
      { path: z.object({ snapshotId: z.string(), accountId: z.string() }) },
      async ({ path }) => ({ body: { route: 'unshare', ...path } }),
    ),
  });

  it('names the route keys it serves, as serverless.yml declares them', () => {
    expect(router.routeKeys).toEqual([
      'GET /v1/snapshots/{snapshotId}',
      'DELETE /v1/snapshots/{snapshotId}',
      'POST /v1/snapshots/copy',
      'DELETE /v1/snapshots/{snapshotId}/shares/{accountId}',
    ]);
  });

  it('runs the route API Gateway matched (routeKey), with the path parameters it extracted and decoded', async () => {
    const show = await call(
      router,
      routed('GET /v1/snapshots/{snapshotId}', '/v1/snapshots/snap-1', { snapshotId: 'snap-1' }),
    );
    expect(show).toMatchObject({ status: 200, body: { route: 'show', snapshotId: 'snap-1' } });
    const unshare = await call(
      router,
      routed('DELETE /v1/snapshots/{snapshotId}/shares/{accountId}', '/v1/snapshots/snap-1/shares/acct%2D2', {
        snapshotId: 'snap-1',
        accountId: 'acct-2',
      }),
    );
    expect(unshare.body).toEqual({ route: 'unshare', snapshotId: 'snap-1', accountId: 'acct-2' });
    const copy = await call(router, {
      ...routed('POST /v1/snapshots/copy', '/v1/snapshots/copy'),
      headers: json,
      body: '{"sourceSnapshotId":"snap-9"}',
    });
    expect(copy).toMatchObject({ status: 202, body: { route: 'copy', sourceSnapshotId: 'snap-9' } });
  });

  it('does not match paths: a named stage or an API mapping prefixing rawPath changes nothing', async () => {
    const show = await call(
      router,
      routed('GET /v1/snapshots/{snapshotId}', '/prod/volsnap/v1/snapshots/snap-3', { snapshotId: 'snap-3' }),
    );
    expect(show).toMatchObject({ status: 200, body: { route: 'show', snapshotId: 'snap-3' } });
  });

  it("answers each route's own errors in the one error shape", async () => {
    const invalid = await call(router, {
      ...routed('POST /v1/snapshots/copy', '/v1/snapshots/copy'),
      headers: json,
      body: '{"sourceSnapshotId":1}',
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ error: 'request.invalid', requestId: 'req-test' });
    const missingParam = await call(router, routed('GET /v1/snapshots/{snapshotId}', '/v1/snapshots/x'));
    expect(missingParam.body.error).toBe('request.invalid');
  });

  it('answers a route key it does not serve 404 route.notFound, or 405 naming the methods of that path, and logs it', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const missing = await call(router, routed('GET /v1/volumes', '/v1/volumes'));
    expect(missing).toEqual({
      status: 404,
      headers: expect.objectContaining({ 'x-request-id': 'req-test', 'content-type': 'application/json' }),
      body: { error: 'route.notFound', message: 'No route GET /v1/volumes.', requestId: 'req-test' },
    });
    const wrongMethod = await call(
      router,
      routed('PATCH /v1/snapshots/{snapshotId}', '/v1/snapshots/snap-1'),
    );
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.body).toEqual({
      error: 'route.methodNotAllowed',
      message: 'PATCH is not allowed on /v1/snapshots/snap-1; use GET, DELETE.',
      requestId: 'req-test',
    });
    const defaultRoute = await call(router, routed('$default', '/v1/snapshots/snap-1'));
    expect(defaultRoute.body.error).toBe('route.notFound');
    const logged = log.mock.calls.map((c) => String(c[0])).join('\n');
    expect(logged).toContain('GET /v1/volumes');
    expect(logged).toContain('router');
    log.mockRestore();
  });

  it('refuses a route key that is not METHOD /path', () => {
    const handler = publicHttpHandler({}, async () => ({}));
    expect(() => httpRouter({ '/v1/volumes': handler })).toThrow(/METHOD \/path/);
    expect(() => httpRouter({ 'get /v1/volumes': handler })).toThrow(/not 'METHOD \/path'/);
  });
});

describe('an identity table that fails for now while the authorizer resolves the key', () => {
  const guarded = httpHandler({}, async ({ caller }) => ({ body: { accountId: caller.accountId } }), {
    audit: new MemoryAuditLog(),
    limiter: null,
  });
  const withContext = (context: Record<string, string>) => {
    const event = httpEvent({ method: 'GET' });
    (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: context };
    return event;
  };

  it('reaches the route marked so, and the route answers 503 storage.unavailable with Retry-After, not 401', async () => {
    const context = await authorizerContext(async () => {
      throw new VolsnapError('storage.unavailable', 'The table did not answer as expected.');
    });
    expect(context).toEqual({ [IDENTITY_OUTAGE_CONTEXT_KEY]: 'storage.unavailable' });
    const response = await call(guarded, withContext(context));
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('1');
    expect(response.body).toMatchObject({ error: 'storage.unavailable' });
  });

  it('a throttled table is 503 storage.throttled; a bad key still 401; a caller passes; a bug is still thrown', async () => {
    const throttled = await authorizerContext(async () => {
      throw new VolsnapError('storage.throttled', 'slow down');
    });
    const response = await call(guarded, withContext(throttled));
    expect(response).toMatchObject({ status: 503, body: { error: 'storage.throttled' } });
    expect(response.headers['retry-after']).toBe('2');
    const unknownKey = await authorizerContext(async () => undefined);
    expect(await call(guarded, withContext(unknownKey))).toMatchObject({
      status: 401,
      body: { error: 'auth.unauthorized' },
    });
    const caller = testCaller();
    expect(await call(guarded, withContext(await authorizerContext(async () => caller)))).toMatchObject({
      status: 200,
      body: { accountId: caller.accountId },
    });
    await expect(
      authorizerContext(async () => {
        throw new TypeError('a bug');
      }),
    ).rejects.toThrow('a bug');
  });
});
