import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/adapters/clock.ts';
import { issueApiKey } from '../../lib/core/api-keys.ts';
import { apiKeyAuthenticator, type StoredApiKey } from '../../lib/core/authenticate.ts';
import * as z from '../../lib/core/schema.ts';
import { httpHandler } from '../../lib/http/stack.ts';
import { httpEvent, lambdaContext } from '../support/events.ts';

const clock = new ManualClock(Date.UTC(2026, 5, 1));
const live = issueApiKey();
const revoked = issueApiKey();
const expiring = issueApiKey();
const stored = new Map<string, StoredApiKey>([
  [live.keyId, { keyId: live.keyId, accountId: 'acct-a', role: 'owner', secretHash: live.secretHash }],
  [
    revoked.keyId,
    {
      keyId: revoked.keyId,
      accountId: 'acct-a',
      role: 'owner',
      secretHash: revoked.secretHash,
      revokedAt: '2026-05-01T00:00:00Z',
    },
  ],
  [
    expiring.keyId,
    {
      keyId: expiring.keyId,
      accountId: 'acct-a',
      role: 'member',
      secretHash: expiring.secretHash,
      expiresAt: '2026-06-02T00:00:00Z',
    },
  ],
]);
const authenticate = apiKeyAuthenticator({ getApiKey: async (id) => stored.get(id) }, clock);

describe('API key authentication', () => {
  it('resolves a valid key to its account and role', async () => {
    expect(await authenticate(`Bearer ${live.token}`)).toEqual({
      accountId: 'acct-a',
      keyId: live.keyId,
      role: 'owner',
    });
    expect(await authenticate(`bearer   ${expiring.token}`)).toMatchObject({ role: 'member' });
  });

  it('answers the same 401 for a missing, malformed, unknown, wrong, revoked or expired key', async () => {
    const unknown = issueApiKey();
    const wrongSecret = `${live.token.slice(0, -4)}AAAA`;
    const failures = [
      undefined,
      '',
      'Basic abc',
      'Bearer nope',
      `Bearer ${unknown.token}`,
      `Bearer ${wrongSecret}`,
      `Bearer ${revoked.token}`,
    ];
    const messages = new Set<string>();
    for (const header of failures) {
      const error = await authenticate(header).catch((e) => e);
      expect(error, String(header)).toMatchObject({ code: 'auth.unauthorized', status: 401 });
      messages.add(error.message);
    }
    clock.advance(2 * 24 * 3600 * 1000);
    await expect(authenticate(`Bearer ${expiring.token}`)).rejects.toMatchObject({
      code: 'auth.unauthorized',
    });
    expect(messages.size).toBe(1);
  });
});

describe('authenticated routes', () => {
  const route = httpHandler(
    { body: z.object({ name: z.string() }) },
    async ({ caller, body }) => ({ body: { account: caller.accountId, name: body.name } }),
    { authenticate },
  );
  const call = async (headers: Record<string, string>, body?: string) =>
    (await route(
      httpEvent({ method: 'POST', headers, body }),
      lambdaContext,
    )) as APIGatewayProxyStructuredResultV2;

  it('pass the caller to the route', async () => {
    const result = await call(
      { authorization: `Bearer ${live.token}`, 'content-type': 'application/json' },
      '{"name":"x"}',
    );
    expect(JSON.parse(String(result.body))).toEqual({ account: 'acct-a', name: 'x' });
  });

  it('refuse a request without a valid key before looking at its body, with a Bearer challenge', async () => {
    const result = await call({ 'content-type': 'application/json' }, '{"invalid": true}');
    expect(result.statusCode).toBe(401);
    expect(result.headers?.['www-authenticate']).toBe('Bearer');
    expect(JSON.parse(String(result.body)).error).toBe('auth.unauthorized');
  });
});
