import { randomBytes } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/adapters/clock.ts';
import { DynamoIdentityRepository } from '../../lib/adapters/dynamodb/accounts.ts';
import { LocalKeySealer } from '../../lib/adapters/secrets/aes-gcm.ts';
import { AccountService, bootstrapAccount, keyAuthenticator } from '../../lib/core/identity/accounts.ts';
import { parseApiKey } from '../../lib/core/identity/api-keys.ts';
import type { Caller } from '../../lib/core/identity/identity.ts';
import { freshRegion } from '../support/emulators.ts';
import { identityRepositoryContract } from '../support/identity-repository-contract.ts';

identityRepositoryContract('DynamoDB', async () => {
  const { entry, clients } = await freshRegion();
  return new DynamoIdentityRepository(clients.documents, entry.table);
});

describe('API keys in DynamoDB', () => {
  it('are stored as hashes only: no token or secret of any issued key appears anywhere in the table', async () => {
    const { entry, clients } = await freshRegion();
    const identity = new DynamoIdentityRepository(clients.documents, entry.table);
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const authenticate = keyAuthenticator(identity, clock);
    const boot = await bootstrapAccount(identity, clock, { name: 'operator', operator: true });
    const operator = (await authenticate(`Bearer ${boot.key.token}`)) as Caller;
    const accounts = new AccountService({
      identity,
      clock,
      region: entry.name,
      usage: async () => ({ snapshots: 0, storedBytes: 0 }),
    });
    const acme = await accounts.createAccount(operator, { name: 'acme' });
    const owner = (await authenticate(`Bearer ${acme.key.token}`)) as Caller;
    await accounts.createUser(owner, { userName: 'ci', permissions: ['snapshot:create'] });
    const ci = await accounts.createKey(owner, { userName: 'ci', expiresInSeconds: 3600 });
    const tokens = [boot.key.token, acme.key.token, ci.token];
    const { Items = [] } = await clients.documents.send(new ScanCommand({ TableName: entry.table }));
    const everything = JSON.stringify(Items, (_k, v) => (v instanceof Set ? [...v] : v));
    expect(Items.filter((i) => i.type === 'apiKey')).toHaveLength(3);
    for (const token of tokens) {
      const { secret } = parseApiKey(token) ?? { secret: 'unparseable' };
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain(token);
      expect(await authenticate(`Bearer ${token}`)).toBeDefined();
    }
  });
});

describe('SigV4 keys in DynamoDB', () => {
  it('are stored sealed: no secret access key appears anywhere in the table, and the stored seal opens to it', async () => {
    const { entry, clients } = await freshRegion();
    const identity = new DynamoIdentityRepository(clients.documents, entry.table);
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const sealer = new LocalKeySealer(randomBytes(32));
    const boot = await bootstrapAccount(identity, clock, { name: 'acme' });
    const owner = (await keyAuthenticator(identity, clock)(`Bearer ${boot.key.token}`)) as Caller;
    const accounts = new AccountService({
      identity,
      clock,
      region: entry.name,
      usage: async () => ({ snapshots: 0, storedBytes: 0 }),
      sealer: () => sealer,
    });
    const issued = await Promise.all([
      accounts.createSigV4Key(owner, {}),
      accounts.createSigV4Key(owner, { expiresInSeconds: 3600, description: 'backup' }),
    ]);
    const { Items = [] } = await clients.documents.send(new ScanCommand({ TableName: entry.table }));
    const everything = JSON.stringify(Items, (_k, v) => (v instanceof Set ? [...v] : v));
    for (const key of issued) {
      expect(key.secretAccessKey).toMatch(/^[A-Za-z0-9+/]{40}$/);
      expect(everything).not.toContain(key.secretAccessKey);
      const stored = await identity.getApiKey(key.keyId);
      expect(stored).toMatchObject({ kind: 'sigv4', accessKeyId: key.accessKeyId });
      expect(stored?.secretHash).toBeUndefined();
      expect(await sealer.unseal(stored?.sealedSecret ?? '', key.keyId)).toBe(key.secretAccessKey);
    }
    // Listed like API keys, without the seal; revocable by the access key id.
    const listed = await accounts.listKeys(owner);
    expect(
      listed
        .filter((k) => k.kind === 'sigv4')
        .map((k) => k.accessKeyId)
        .sort(),
    ).toEqual(issued.map((k) => k.accessKeyId).sort());
    expect(JSON.stringify(listed)).not.toContain('sealedSecret');
    const revoked = await accounts.revokeKey(owner, issued[0]?.accessKeyId ?? '');
    expect(revoked.revokedAt).toBeDefined();
    // A sigv4 key is no bearer token, whatever is presented.
    expect(
      await keyAuthenticator(identity, clock)(`Bearer vsk_${issued[1]?.keyId}_${'A'.repeat(43)}`),
    ).toBeUndefined();
  });
});
