import type {
  Account,
  AccountChanges,
  ApiKeyRecord,
  IdentityRepository,
  KeyWithOwner,
  User,
} from '../../core/identity/accounts.ts';
import type { Permission, Role } from '../../core/identity/identity.ts';
import type { AuditEntry, AuditLog } from '../../core/ports/audit.ts';
import { VolsnapError } from '../../core/shared/errors.ts';
import type { Page } from '../../core/shared/pagination.ts';
import { pageOf } from './paging.ts';

/** Accounts, users and keys in memory, for unit tests: the same contract as the DynamoDB repository. */
export class MemoryIdentityRepository implements IdentityRepository {
  readonly accounts = new Map<string, Account>();
  readonly users = new Map<string, User>();
  readonly keys = new Map<string, ApiKeyRecord>();

  async getAccount(accountId: string): Promise<Account | undefined> {
    return structuredClone(this.accounts.get(accountId));
  }

  async findAccountByName(name: string): Promise<Account | undefined> {
    return structuredClone([...this.accounts.values()].find((a) => a.name === name));
  }

  async listAccounts(page: { limit: number; nextToken?: string }): Promise<Page<Account>> {
    const all = [...this.accounts.values()].sort((a, b) =>
      `${b.createdAt}#${b.accountId}`.localeCompare(`${a.createdAt}#${a.accountId}`),
    );
    return pageOf(all, page);
  }

  async createAccount(account: Account, owner: User, key: ApiKeyRecord): Promise<void> {
    if ([...this.accounts.values()].some((a) => a.name === account.name)) {
      throw new VolsnapError(
        'account.nameTaken',
        `An account named ${account.name} exists: choose another name.`,
      );
    }
    this.accounts.set(account.accountId, structuredClone(account));
    this.users.set(`${owner.accountId}/${owner.userName}`, structuredClone(owner));
    this.keys.set(key.keyId, structuredClone(key));
  }

  async updateAccount(accountId: string, changes: AccountChanges): Promise<Account | undefined> {
    const account = this.accounts.get(accountId);
    if (!account) return undefined;
    if (changes.blockPublicSharing !== undefined) account.blockPublicSharing = changes.blockPublicSharing;
    if (changes.recycleBinDays !== undefined) account.recycleBinDays = changes.recycleBinDays;
    if (changes.quota === null) delete account.quota;
    else if (changes.quota !== undefined) account.quota = structuredClone(changes.quota);
    return structuredClone(account);
  }

  async getUser(accountId: string, userName: string): Promise<User | undefined> {
    return structuredClone(this.users.get(`${accountId}/${userName}`));
  }

  async listUsers(accountId: string): Promise<User[]> {
    return [...this.users.values()]
      .filter((u) => u.accountId === accountId)
      .sort((a, b) => a.userName.localeCompare(b.userName))
      .map((u) => structuredClone(u));
  }

  async createUser(user: User): Promise<void> {
    if (!this.accounts.has(user.accountId))
      throw new VolsnapError('account.notFound', `No account ${user.accountId}.`);
    const id = `${user.accountId}/${user.userName}`;
    if (this.users.has(id)) {
      throw new VolsnapError('user.exists', `A user named ${user.userName} exists in this account.`);
    }
    this.users.set(id, structuredClone(user));
  }

  async updateUser(
    accountId: string,
    userName: string,
    changes: { role?: Role; permissions?: Permission[] },
  ): Promise<User | undefined> {
    const user = this.users.get(`${accountId}/${userName}`);
    if (!user) return undefined;
    if (changes.role) user.role = changes.role;
    if (changes.permissions) user.permissions = [...changes.permissions].sort();
    return structuredClone(user);
  }

  async deleteUser(accountId: string, userName: string): Promise<void> {
    this.users.delete(`${accountId}/${userName}`);
  }

  async getApiKey(keyId: string): Promise<ApiKeyRecord | undefined> {
    return structuredClone(this.keys.get(keyId));
  }

  async getKeyWithOwner(keyId: string, accountId: string, userName: string): Promise<KeyWithOwner> {
    const [key, user, account] = await Promise.all([
      this.getApiKey(keyId),
      this.getUser(accountId, userName),
      this.getAccount(accountId),
    ]);
    return { ...(key ? { key } : {}), ...(user ? { user } : {}), ...(account ? { account } : {}) };
  }

  async listApiKeys(accountId: string): Promise<ApiKeyRecord[]> {
    return [...this.keys.values()].filter((k) => k.accountId === accountId).map((k) => structuredClone(k));
  }

  async createApiKey(key: ApiKeyRecord): Promise<void> {
    if (!this.users.has(`${key.accountId}/${key.userName}`)) {
      throw new VolsnapError('user.notFound', `No user ${key.userName} in this account.`);
    }
    this.keys.set(key.keyId, structuredClone(key));
  }

  async revokeApiKey(keyId: string, revokedAt: string): Promise<void> {
    const key = this.keys.get(keyId);
    if (key && !key.revokedAt) key.revokedAt = revokedAt;
  }
}

/** An audit trail in memory, for unit tests. */
export class MemoryAuditLog implements AuditLog {
  readonly entries: AuditEntry[] = [];

  async record(entry: AuditEntry): Promise<void> {
    if (!this.entries.some((e) => e.eventId === entry.eventId)) this.entries.push(structuredClone(entry));
  }

  async list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<AuditEntry>> {
    const mine = this.entries
      .filter((e) => e.accountId === accountId)
      .sort((a, b) => `${b.at}#${b.eventId}`.localeCompare(`${a.at}#${a.eventId}`));
    return pageOf(mine, page);
  }
}
