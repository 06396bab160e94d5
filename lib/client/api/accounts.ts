import { listQuery, type PageRequest, type Requester, withQuery } from './transport.ts';
import type {
  Account,
  AccountUsage,
  ApiKeyInfo,
  AuditEntry,
  IssuedKey,
  IssuedSigV4Key,
  QuotaLimits,
  RegionCheckPage,
  Role,
  User,
} from './types.ts';

/** The caller's account (usage, audit, settings), its users and keys, and the operator's calls. */
export function accountRequests<Base extends Requester>(base: Base) {
  return class AccountRequests extends base {
    whoami(): Promise<{ account: Account; user: User; keyId: string }> {
      return this.request('GET', '/v1/account');
    }

    updateAccount(changes: { blockPublicSharing?: boolean; recycleBinDays?: number }): Promise<Account> {
      return this.request('PATCH', '/v1/account', changes);
    }

    usage(): Promise<AccountUsage> {
      return this.request('GET', '/v1/account/usage');
    }

    audit(page: PageRequest = {}): Promise<{ events: AuditEntry[]; nextToken?: string }> {
      return this.request('GET', withQuery('/v1/account/audit', listQuery(page)));
    }

    createUser(input: { userName: string; role?: Role; permissions?: string[] }): Promise<User> {
      return this.request('POST', '/v1/account/users', input);
    }

    listUsers(): Promise<{ users: User[] }> {
      return this.request('GET', '/v1/account/users');
    }

    updateUser(userName: string, changes: { role?: Role; permissions?: string[] }): Promise<User> {
      return this.request('PATCH', `/v1/account/users/${encodeURIComponent(userName)}`, changes);
    }

    async deleteUser(userName: string): Promise<void> {
      await this.request<void>('DELETE', `/v1/account/users/${encodeURIComponent(userName)}`);
    }

    createKey(input: {
      userName?: string;
      expiresInSeconds?: number;
      description?: string;
    }): Promise<IssuedKey> {
      return this.request('POST', '/v1/account/keys', input);
    }

    /** A SigV4 access key pair (its secret shown once), and the region that issued it (for a profile). */
    createSigV4Key(input: {
      userName?: string;
      expiresInSeconds?: number;
      description?: string;
    }): Promise<IssuedSigV4Key & { region: string }> {
      return this.request('POST', '/v1/account/keys', { ...input, sigv4: true });
    }

    listKeys(userName?: string): Promise<{ keys: ApiKeyInfo[] }> {
      return this.request('GET', withQuery('/v1/account/keys', listQuery({ userName })));
    }

    revokeKey(keyId: string): Promise<ApiKeyInfo> {
      return this.request('DELETE', `/v1/account/keys/${encodeURIComponent(keyId)}`);
    }

    createAccount(input: { name: string; ownerName?: string }): Promise<{
      account: Account;
      owner: User;
      key: IssuedKey;
    }> {
      return this.request('POST', '/v1/admin/accounts', input);
    }

    listAccounts(page: PageRequest = {}): Promise<{ accounts: Account[]; nextToken?: string }> {
      return this.request('GET', withQuery('/v1/admin/accounts', listQuery(page)));
    }

    setQuota(
      accountId: string,
      quota: Partial<QuotaLimits>,
    ): Promise<{ account: Account; limits: QuotaLimits }> {
      return this.request('PUT', `/v1/admin/accounts/${encodeURIComponent(accountId)}/quota`, quota);
    }

    /** Runs a scheduled job now (operator): gc, reaper, expiry, policies or scrub; returns its report. */
    runJob(
      job: string,
      options: { graceSeconds?: number; force?: boolean; policyId?: string } = {},
    ): Promise<Record<string, unknown>> {
      // Every job is idempotent and safe when two runs overlap (serverless.yml): safe to send again.
      return this.request('POST', `/v1/admin/run/${encodeURIComponent(job)}`, options, { idempotent: true });
    }

    /** One page of the region's check of its stored data (operator); `nextToken` while accounts remain. */
    checkRegion(options: { nextToken?: string; graceSeconds?: number } = {}): Promise<RegionCheckPage> {
      // Only reads the region.
      return this.request('POST', '/v1/admin/check', options, { idempotent: true });
    }
  };
}
