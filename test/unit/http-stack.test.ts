import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { VolsnapError } from '../../lib/core/shared/errors.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { publicHttpHandler } from '../../lib/http/stack.ts';
import { httpEvent, lambdaContext } from '../support/events.ts';

const route = publicHttpHandler(
  { body: z.object({ name: z.string().check(z.minLength(1)), size: z.number() }) },
  async ({ body }) => ({ status: 201, body: { created: body.name } }),
);

async function call(handler: typeof route, event: ReturnType<typeof httpEvent>) {
  const result = (await handler(event, lambdaContext)) as APIGatewayProxyStructuredResultV2;
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
