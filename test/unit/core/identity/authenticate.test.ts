import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import { MemoryAuditLog, MemoryIdentityRepository } from '../../../../lib/adapters/memory/identity.ts';
import {
  AccountService,
  bootstrapAccount,
  keyAuthenticator,
} from '../../../../lib/core/identity/accounts.ts';
import { issueApiKey } from '../../../../lib/core/identity/api-keys.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import * as z from '../../../../lib/core/shared/schema.ts';
import { CALLER_CONTEXT_KEY, httpHandler } from '../../../../lib/http/stack.ts';
import { httpEvent, lambdaContext } from '../../../support/events.ts';

let clock: ManualClock;
let identity: MemoryIdentityRepository;
let authenticate: ReturnType<typeof keyAuthenticator>;
let accounts: AccountService;
let operator: Caller;
let owner: { token: string; caller: Caller };

beforeEach(async () => {
  clock = new ManualClock(Date.UTC(2026, 5, 1));
  identity = new MemoryIdentityRepository();
  authenticate = keyAuthenticator(identity, clock);
  accounts = new AccountService({
    identity,
    clock,
    region: 'eu-west-1',
    usage: async () => ({ snapshots: 0, storedBytes: 0 }),
  });
  const boot = await bootstrapAccount(identity, clock, { name: 'operator', operator: true });
  operator = (await authenticate(`Bearer ${boot.key.token}`)) as Caller;
  const created = await accounts.createAccount(operator, { name: 'acme' });
  owner = { token: created.key.token, caller: (await authenticate(`Bearer ${created.key.token}`)) as Caller };
});

describe('API key authentication', () => {
  it("resolves a key to its user's account, role and permissions; the operator is flagged", async () => {
    expect(operator).toMatchObject({ userName: 'owner', role: 'owner', operator: true });
    expect(owner.caller).toMatchObject({
      userName: 'owner',
      role: 'owner',
      operator: false,
      permissions: [],
    });
    await accounts.createUser(owner.caller, {
      userName: 'ci',
      role: 'member',
      permissions: ['snapshot:create', 'snapshot:create'],
    });
    const key = await accounts.createKey(owner.caller, { userName: 'ci' });
    expect(await authenticate(`bearer   ${key.token}`)).toEqual({
      accountId: owner.caller.accountId,
      userName: 'ci',
      keyId: key.keyId,
      role: 'member',
      permissions: ['snapshot:create'],
      operator: false,
    });
  });

  it('answers undefined alike for a missing, malformed, unknown, wrong, revoked, expired or orphaned key', async () => {
    await accounts.createUser(owner.caller, { userName: 'temp' });
    const expiring = await accounts.createKey(owner.caller, { userName: 'temp', expiresInSeconds: 3600 });
    const revoked = await accounts.createKey(owner.caller, { userName: 'temp' });
    await accounts.revokeKey(owner.caller, revoked.keyId);
    expect(await authenticate(`Bearer ${expiring.token}`)).toBeDefined();
    const wrongSecret = `${owner.token.slice(0, -4)}AAAA`;
    for (const header of [
      undefined,
      '',
      'Basic abc',
      'Bearer nope',
      `Bearer ${issueApiKey().token}`,
      `Bearer ${wrongSecret}`,
      `Bearer ${revoked.token}`,
    ]) {
      expect(await authenticate(header), String(header)).toBeUndefined();
    }
    clock.advance(3601 * 1000);
    expect(await authenticate(`Bearer ${expiring.token}`)).toBeUndefined();
    const other = await accounts.createKey(owner.caller, { userName: 'temp' });
    await accounts.deleteUser(owner.caller, 'temp');
    expect(await authenticate(`Bearer ${other.token}`)).toBeUndefined();
  });
});

describe('authenticated routes', () => {
  const audit = new MemoryAuditLog();
  const route = httpHandler(
    { audit: 'thing.create', body: z.object({ name: z.string() }) },
    async ({ caller, body }) => ({
      status: 201,
      body: { account: caller.accountId, name: body.name, volumeId: 'vol-1' },
    }),
    { audit, limiter: null },
  );
  const call = async (context: Record<string, string> | undefined, body?: string) => {
    const event = httpEvent({ method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (context) (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: context };
    return (await route(event, lambdaContext)) as APIGatewayProxyStructuredResultV2;
  };

  it('pass the caller from the authorizer to the route, and record the change in the audit trail', async () => {
    const result = await call({ [CALLER_CONTEXT_KEY]: JSON.stringify(owner.caller) }, '{"name":"x"}');
    expect(result.statusCode).toBe(201);
    expect(JSON.parse(String(result.body))).toMatchObject({ account: owner.caller.accountId, name: 'x' });
    const [entry] = audit.entries;
    expect(entry).toMatchObject({
      accountId: owner.caller.accountId,
      userName: 'owner',
      keyId: owner.caller.keyId,
      action: 'thing.create',
      target: { volumeId: 'vol-1' },
      status: 201,
    });
  });

  it('refuse a request the authorizer could not resolve (or that bypassed it) before its body, with a Bearer challenge', async () => {
    const contexts: (Record<string, string> | undefined)[] = [
      undefined,
      {},
      { [CALLER_CONTEXT_KEY]: '{"accountId":"acct-x"}' },
      { [CALLER_CONTEXT_KEY]: 'not json' },
    ];
    for (const context of contexts) {
      const result = await call(context, '{"invalid": true}');
      expect(result.statusCode).toBe(401);
      expect(result.headers?.['www-authenticate']).toBe('Bearer');
      expect(JSON.parse(String(result.body)).error).toBe('auth.unauthorized');
    }
  });
});
