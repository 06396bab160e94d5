import type { Page } from '../shared/pagination.ts';
import type { Permission, Role } from './identity.ts';
import type { QuotaLimits } from './quotas.ts';

/** Days deleted snapshots stay recoverable unless the account says otherwise (as EBS Recycle Bin rules do). */
export const DEFAULT_RECYCLE_BIN_DAYS = 7;
/** The longest an account may keep deleted snapshots (EBS Recycle Bin allows up to a year). */
export const MAX_RECYCLE_BIN_DAYS = 365;

/** What an account's owners, admins or the operator change on it. */
export interface AccountChanges {
  blockPublicSharing?: boolean;
  recycleBinDays?: number;
  quota?: Partial<QuotaLimits> | null;
}

/** How long an account keeps deleted snapshots, in days (0: not at all). */
export function recycleBinDaysOf(account: Account | undefined): number {
  return account?.recycleBinDays ?? DEFAULT_RECYCLE_BIN_DAYS;
}

/** An account (tenant). */
export interface Account {
  accountId: string;
  /** Readable, unique in the deployment; usable wherever an account id is. */
  name: string;
  createdAt: string;
  /** The service operator's account: its owners and admins manage accounts and quotas. */
  operator?: boolean;
  /** When true, the account's snapshots cannot be made public, and those already public are not. */
  blockPublicSharing: boolean;
  /**
   * Days a deleted snapshot stays in the recycle bin, recoverable with `snapshot undelete`, before it
   * is purged; 0 deletes at once. Absent means {@link DEFAULT_RECYCLE_BIN_DAYS}.
   */
  recycleBinDays?: number;
  /** The operator's override of the default limits (each region applies it to its own usage). */
  quota?: Partial<QuotaLimits>;
}

/** A user of an account: API keys belong to users, and act with their role and permissions. */
export interface User {
  accountId: string;
  userName: string;
  role: Role;
  permissions: Permission[];
  createdAt: string;
}

/**
 * A key as stored. An API key (`vsk_…` bearer token) keeps only its secret's hash; a SigV4 access
 * key (`kind: 'sigv4'`) keeps its secret sealed (lib/core/ports/secrets.ts), since the server recomputes
 * the request's HMAC with it.
 */
export interface ApiKeyRecord {
  keyId: string;
  accountId: string;
  userName: string;
  /** API keys only: the SHA-256 of the secret. */
  secretHash?: string;
  /** Absent for API keys. */
  kind?: 'sigv4';
  /** SigV4 keys: `AKIA…`, derived from the key id (lib/core/identity/sigv4-keys.ts). */
  accessKeyId?: string;
  /** SigV4 keys: the secret access key, sealed for the key id. */
  sealedSecret?: string;
  createdAt: string;
  description?: string;
  /** ISO time after which the key no longer works. */
  expiresAt?: string;
  revokedAt?: string;
}

/** A key as listed: everything but the hash or the sealed secret. */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'secretHash' | 'sealedSecret'>;

/** A key just issued: the token is shown this once and stored nowhere. */
export interface IssuedKey extends ApiKeyInfo {
  token: string;
}

/** A SigV4 access key just issued: the secret access key is shown this once (stored only sealed). */
export interface IssuedSigV4Key extends ApiKeyInfo {
  kind: 'sigv4';
  accessKeyId: string;
  secretAccessKey: string;
}

/** What {@link IdentityRepository.getKeyWithOwner} read. */
export interface KeyWithOwner {
  key?: ApiKeyRecord;
  user?: User;
  account?: Account;
}

/**
 * Where accounts, users and keys are kept: the identity region's table (one per deployment, so a
 * revoked key stops everywhere at once). Writes are conditional: creating what exists fails with
 * the matching `*.exists`/`account.nameTaken` code and changes nothing.
 */
export interface IdentityRepository {
  getAccount(accountId: string): Promise<Account | undefined>;
  findAccountByName(name: string): Promise<Account | undefined>;
  listAccounts(page: { limit: number; nextToken?: string }): Promise<Page<Account>>;
  /** The account, its first user and that user's first key, atomically. */
  createAccount(account: Account, owner: User, key: ApiKeyRecord): Promise<void>;
  updateAccount(accountId: string, changes: AccountChanges): Promise<Account | undefined>;
  getUser(accountId: string, userName: string): Promise<User | undefined>;
  listUsers(accountId: string): Promise<User[]>;
  createUser(user: User): Promise<void>;
  updateUser(
    accountId: string,
    userName: string,
    changes: { role?: Role; permissions?: Permission[] },
  ): Promise<User | undefined>;
  deleteUser(accountId: string, userName: string): Promise<void>;
  getApiKey(keyId: string): Promise<ApiKeyRecord | undefined>;
  /**
   * A key and the user and account it is expected to belong to, read together (DynamoDB: one
   * consistent BatchGetItem), each undefined where absent: what authenticating a request reads once
   * it knows whose the key is. The key comes back as stored, even if it names another user or
   * account (the caller compares). Reads only.
   */
  getKeyWithOwner(keyId: string, accountId: string, userName: string): Promise<KeyWithOwner>;
  listApiKeys(accountId: string): Promise<ApiKeyRecord[]>;
  /** Stores a key; fails with `user.notFound` if its user is gone. */
  createApiKey(key: ApiKeyRecord): Promise<void>;
  revokeApiKey(keyId: string, revokedAt: string): Promise<void>;
}
