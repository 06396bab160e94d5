import { beforeEach, describe, expect, it } from 'vitest';
import type { Account, ApiKeyRecord, IdentityRepository, User } from '../../lib/core/identity/accounts.ts';
import { issueApiKey } from '../../lib/core/identity/api-keys.ts';
import { newId } from '../../lib/core/shared/ids.ts';

/** The behaviour every IdentityRepository must have; run against each implementation. */
export function identityRepositoryContract(name: string, make: () => Promise<IdentityRepository>) {
  describe(`IdentityRepository contract: ${name}`, () => {
    let repo: IdentityRepository;
    const at = '2026-01-01T00:00:00.000Z';
    const account = (accountName: string): Account => ({
      accountId: newId('account'),
      name: accountName,
      createdAt: at,
      blockPublicSharing: false,
    });
    const user = (a: Account, userName: string, extra: Partial<User> = {}): User => ({
      accountId: a.accountId,
      userName,
      role: 'owner',
      permissions: [],
      createdAt: at,
      ...extra,
    });
    const key = (u: User): ApiKeyRecord => {
      const issued = issueApiKey();
      return {
        keyId: issued.keyId,
        accountId: u.accountId,
        userName: u.userName,
        secretHash: issued.secretHash,
        createdAt: at,
      };
    };

    beforeEach(async () => {
      repo = await make();
    });

    it('creates an account with its owner and key, findable by id and by name; a taken name changes nothing', async () => {
      const name = `acme-${newId('request').slice(4, 12)}`;
      const a = account(name);
      const owner = user(a, 'owner');
      const k = key(owner);
      await repo.createAccount(a, owner, k);
      expect(await repo.getAccount(a.accountId)).toEqual(a);
      expect(await repo.findAccountByName(name)).toEqual(a);
      expect(await repo.getUser(a.accountId, 'owner')).toEqual(owner);
      expect(await repo.getApiKey(k.keyId)).toEqual(k);
      const b = account(name);
      const bOwner = user(b, 'owner');
      const bKey = key(bOwner);
      await expect(repo.createAccount(b, bOwner, bKey)).rejects.toMatchObject({ code: 'account.nameTaken' });
      expect(await repo.getAccount(b.accountId)).toBeUndefined();
      expect(await repo.getApiKey(bKey.keyId)).toBeUndefined();
    });

    it('keeps users with roles and permissions; a second user of the same name is refused', async () => {
      const a = account(`u-${newId('request').slice(4, 12)}`);
      await repo.createAccount(a, user(a, 'owner'), key(user(a, 'owner')));
      const ci = user(a, 'ci', { role: 'member', permissions: ['snapshot:create', 'volume:create'] });
      await repo.createUser(ci);
      await expect(repo.createUser(ci)).rejects.toMatchObject({ code: 'user.exists' });
      expect((await repo.listUsers(a.accountId)).map((u) => u.userName).sort()).toEqual(['ci', 'owner']);
      expect(await repo.updateUser(a.accountId, 'ci', { permissions: [] })).toMatchObject({
        permissions: [],
      });
      expect(await repo.updateUser(a.accountId, 'ci', { role: 'admin' })).toMatchObject({ role: 'admin' });
      await repo.deleteUser(a.accountId, 'ci');
      expect(await repo.getUser(a.accountId, 'ci')).toBeUndefined();
      expect(await repo.updateUser(a.accountId, 'ci', { role: 'member' })).toBeUndefined();
    });

    it('keeps keys per account; revoking records the first time only; a key of a missing user is refused', async () => {
      const a = account(`k-${newId('request').slice(4, 12)}`);
      const owner = user(a, 'owner');
      const first = key(owner);
      await repo.createAccount(a, owner, first);
      const second = key(owner);
      await repo.createApiKey(second);
      await expect(repo.createApiKey(key(user(a, 'ghost')))).rejects.toMatchObject({ code: 'user.notFound' });
      expect((await repo.listApiKeys(a.accountId)).map((k) => k.keyId).sort()).toEqual(
        [first.keyId, second.keyId].sort(),
      );
      await repo.revokeApiKey(second.keyId, '2026-02-01T00:00:00.000Z');
      await repo.revokeApiKey(second.keyId, '2026-03-01T00:00:00.000Z');
      expect((await repo.getApiKey(second.keyId))?.revokedAt).toBe('2026-02-01T00:00:00.000Z');
    });

    it('reads a key with its user and account together, each as stored, absent ones left out', async () => {
      const a = account(`o-${newId('request').slice(4, 12)}`);
      const owner = user(a, 'owner');
      const k = key(owner);
      await repo.createAccount(a, owner, k);
      await repo.revokeApiKey(k.keyId, '2026-02-01T00:00:00.000Z');
      expect(await repo.getKeyWithOwner(k.keyId, a.accountId, 'owner')).toEqual({
        key: await repo.getApiKey(k.keyId),
        user: await repo.getUser(a.accountId, 'owner'),
        account: await repo.getAccount(a.accountId),
      });
      expect((await repo.getKeyWithOwner(k.keyId, a.accountId, 'owner')).key?.revokedAt).toBe(
        '2026-02-01T00:00:00.000Z',
      );
      // Asked for another owner: the key as stored, no such user, and that account absent too.
      const other = await repo.getKeyWithOwner(k.keyId, newId('account'), 'owner');
      expect(other).toEqual({ key: await repo.getApiKey(k.keyId) });
      expect(await repo.getKeyWithOwner(issueApiKey().keyId, a.accountId, 'ghost')).toEqual({
        account: await repo.getAccount(a.accountId),
      });
    });

    it('updates settings and quota overrides, and removes an override', async () => {
      const a = account(`q-${newId('request').slice(4, 12)}`);
      await repo.createAccount(a, user(a, 'owner'), key(user(a, 'owner')));
      expect(
        await repo.updateAccount(a.accountId, { blockPublicSharing: true, quota: { maxSnapshots: 5 } }),
      ).toMatchObject({
        blockPublicSharing: true,
        quota: { maxSnapshots: 5 },
      });
      const reset = await repo.updateAccount(a.accountId, { quota: null });
      expect(reset?.quota).toBeUndefined();
      expect(reset?.blockPublicSharing).toBe(true);
      expect(await repo.updateAccount(newId('account'), { blockPublicSharing: true })).toBeUndefined();
    });
  });
}
