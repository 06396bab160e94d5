import type { IdentityRepository, KeyWithOwner } from './accounts.ts';

/** What a request needs of identity: its key, the key's user and account (and the account's limits). */
export type IdentityLookups = Pick<
  IdentityRepository,
  'getApiKey' | 'getUser' | 'getAccount' | 'getKeyWithOwner'
>;

/**
 * Identity as a region reads it for each request: from its own replica of the identity table, and,
 * for what has not arrived there yet, from the identity region (which takes every write).
 *
 * So a new key, user or account works in every region at once (one cross-region read while it
 * replicates), and a change to one that exists (a revoked key, a removed permission, a deleted
 * user) applies in this region once it has replicated: within the replication delay (DynamoDB
 * global tables: typically under a second). Reads only; idempotent.
 */
export function replicaFirst(replica: IdentityLookups, home: IdentityLookups): IdentityLookups {
  const either =
    <A extends unknown[], T>(read: (from: IdentityLookups, ...args: A) => Promise<T | undefined>) =>
    async (...args: A): Promise<T | undefined> =>
      (await read(replica, ...args)) ?? read(home, ...args);
  return {
    getApiKey: either((from, keyId: string) => from.getApiKey(keyId)),
    getUser: either((from, accountId: string, userName: string) => from.getUser(accountId, userName)),
    getAccount: either((from, accountId: string) => from.getAccount(accountId)),
    // Whatever the replica lacks is read from the identity region, each part on its own.
    getKeyWithOwner: async (keyId, accountId, userName): Promise<KeyWithOwner> => {
      const here = await replica.getKeyWithOwner(keyId, accountId, userName);
      const [key, user, account] = await Promise.all([
        here.key ?? home.getApiKey(keyId),
        here.user ?? home.getUser(accountId, userName),
        here.account ?? home.getAccount(accountId),
      ]);
      return { ...(key ? { key } : {}), ...(user ? { user } : {}), ...(account ? { account } : {}) };
    },
  };
}
