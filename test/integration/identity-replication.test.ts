import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/adapters/clock.ts';
import { DynamoIdentityRepository } from '../../lib/adapters/dynamodb/accounts.ts';
import { AccountService, bootstrapAccount, keyAuthenticator } from '../../lib/core/identity/accounts.ts';
import type { Caller } from '../../lib/core/identity/identity.ts';
import { replicaFirst } from '../../lib/core/identity/replica-identity.ts';
import { IdentityReplication } from '../../scripts/local-cloud/identity-replication.ts';
import { provisionRegion } from '../../scripts/local-cloud/provision.ts';
import { freshRegion } from '../support/emulators.ts';

/** Two replicas of the identity table (home takes the writes) on the shared DynamoDB Local. */
async function twoReplicas() {
  const { entry, clients } = await freshRegion();
  const tables = {
    home: `id-home-${randomBytes(3).toString('hex')}`,
    far: `id-far-${randomBytes(3).toString('hex')}`,
  };
  for (const table of Object.values(tables))
    await provisionRegion(clients, { table: entry.table, bucket: entry.bucket, identityTable: table });
  const replication = new IdentityReplication({
    home: { region: 'eu-west-1', documents: clients.documents, table: tables.home },
    replicas: [{ region: 'us-east-1', documents: clients.documents, table: tables.far }],
  });
  const home = new DynamoIdentityRepository(clients.documents, tables.home);
  const far = new DynamoIdentityRepository(clients.documents, tables.far);
  return { replication, home, far };
}

describe('identity replication (the local stand-in for a global table)', () => {
  it('copies accounts, users (with their permission sets) and keys, then revocations and deletions', async () => {
    const { replication, home, far } = await twoReplicas();
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const boot = await bootstrapAccount(home, clock, { name: 'operator', operator: true });
    const accounts = new AccountService({
      identity: home,
      clock,
      region: 'eu-west-1',
      usage: async () => ({}),
    });
    const operator = (await keyAuthenticator(home, clock)(`Bearer ${boot.key.token}`)) as Caller;
    const acme = await accounts.createAccount(operator, { name: 'acme' });
    const owner = (await keyAuthenticator(home, clock)(`Bearer ${acme.key.token}`)) as Caller;
    await accounts.createUser(owner, { userName: 'ci', permissions: ['snapshot:create', 'snapshot:share'] });
    const ci = await accounts.createKey(owner, { userName: 'ci' });

    const authenticateFar = keyAuthenticator(far, clock);
    expect(await authenticateFar(`Bearer ${ci.token}`)).toBeUndefined(); // not replicated yet
    expect(await replication.sync()).toBeGreaterThan(0);
    expect((await authenticateFar(`Bearer ${ci.token}`))?.permissions).toEqual([
      'snapshot:create',
      'snapshot:share',
    ]);
    expect(await far.findAccountByName('acme')).toMatchObject({ accountId: acme.account.accountId });
    expect(await replication.sync()).toBe(0); // nothing changed, nothing written

    await accounts.revokeKey(owner, ci.keyId);
    expect(await authenticateFar(`Bearer ${ci.token}`)).toBeDefined(); // the replica lags…
    await replication.sync();
    expect(await authenticateFar(`Bearer ${ci.token}`)).toBeUndefined(); // …then refuses it too
    expect((await far.getApiKey(ci.keyId))?.revokedAt).toBeDefined();

    await accounts.deleteUser(owner, 'ci');
    await replication.sync();
    expect(await far.getUser(acme.account.accountId, 'ci')).toBeUndefined();
  });

  it('lets a region read its replica first and the identity region for what has not arrived', async () => {
    const { replication, home, far } = await twoReplicas();
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const authenticate = keyAuthenticator(replicaFirst(far, home), clock);
    const boot = await bootstrapAccount(home, clock, { name: 'operator', operator: true });
    // A new key works at once in the far region, before replication…
    expect((await authenticate(`Bearer ${boot.key.token}`))?.accountId).toBe(boot.account.accountId);
    await replication.sync();
    await home.revokeApiKey(boot.key.keyId, new Date(clock.now()).toISOString());
    // …a revocation applies there once it has replicated.
    expect(await authenticate(`Bearer ${boot.key.token}`)).toBeDefined();
    await replication.sync();
    expect(await authenticate(`Bearer ${boot.key.token}`)).toBeUndefined();
  });

  it('keeps replicating on its own, and stops when told', async () => {
    const { replication, home, far } = await twoReplicas();
    await replication.start();
    try {
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      const boot = await bootstrapAccount(home, clock, { name: 'later' });
      await expect.poll(() => far.getApiKey(boot.key.keyId), { timeout: 10_000 }).toBeDefined();
    } finally {
      await replication.stop();
    }
  });
});
