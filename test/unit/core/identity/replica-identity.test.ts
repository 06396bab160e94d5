import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import { MemoryIdentityRepository } from '../../../../lib/adapters/memory/identity.ts';
import {
  AccountService,
  bootstrapAccount,
  keyAuthenticator,
} from '../../../../lib/core/identity/accounts.ts';
import { replicaFirst } from '../../../../lib/core/identity/replica-identity.ts';

describe('identity read replica first', () => {
  it('reads the replica and, only for what is missing there, the identity region', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const home = new MemoryIdentityRepository();
    const replica = new MemoryIdentityRepository();
    const boot = await bootstrapAccount(home, clock, { name: 'acme' });
    const lookups = replicaFirst(replica, home);
    expect((await keyAuthenticator(lookups, clock)(`Bearer ${boot.key.token}`))?.accountId).toBe(
      boot.account.accountId,
    );
    // The replica holds an older copy of the key: it wins until the revocation reaches it.
    const key = structuredClone(home.keys.get(boot.key.keyId));
    if (!key) throw new Error('bootstrap stored no key');
    replica.keys.set(key.keyId, key);
    await home.revokeApiKey(key.keyId, new Date(clock.now()).toISOString());
    expect(await keyAuthenticator(lookups, clock)(`Bearer ${boot.key.token}`)).toBeDefined();
    replica.keys.set(key.keyId, { ...key, revokedAt: new Date(clock.now()).toISOString() });
    expect(await keyAuthenticator(lookups, clock)(`Bearer ${boot.key.token}`)).toBeUndefined();
  });

  it('reads a key with its owner from the replica, and only the parts missing there from the identity region', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const home = new MemoryIdentityRepository();
    const replica = new MemoryIdentityRepository();
    const boot = await bootstrapAccount(home, clock, { name: 'acme' });
    const { accountId } = boot.account;
    const key = structuredClone(home.keys.get(boot.key.keyId));
    if (!key) throw new Error('bootstrap stored no key');
    // Only the key has replicated, in an older state (not revoked yet).
    replica.keys.set(key.keyId, key);
    await home.revokeApiKey(key.keyId, new Date(clock.now()).toISOString());
    const read = await replicaFirst(replica, home).getKeyWithOwner(key.keyId, accountId, 'owner');
    expect(read.key?.revokedAt).toBeUndefined();
    expect(read.user).toEqual(await home.getUser(accountId, 'owner'));
    expect(read.account).toEqual(await home.getAccount(accountId));
    expect(
      await replicaFirst(replica, home).getKeyWithOwner(key.keyId, accountId, 'ghost'),
    ).not.toHaveProperty('user');
  });

  it("reads an account's limits through the lookups, and manages identity in the identity region", async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const home = new MemoryIdentityRepository();
    const replica = new MemoryIdentityRepository();
    const boot = await bootstrapAccount(home, clock, { name: 'acme' });
    const account = home.accounts.get(boot.account.accountId);
    if (!account) throw new Error('bootstrap stored no account');
    replica.accounts.set(account.accountId, { ...account, quota: { maxSnapshots: 7 } });
    const accounts = new AccountService({
      identity: home,
      lookups: replicaFirst(replica, home),
      clock,
      region: 'us-east-1',
      usage: async () => ({}),
    });
    expect((await accounts.limits(account.accountId)).maxSnapshots).toBe(7);
  });
});
