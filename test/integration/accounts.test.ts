import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/adapters/clock.ts';
import { DynamoIdentityRepository } from '../../lib/adapters/dynamodb/accounts.ts';
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
