import { type Clock, isoTime, parseIsoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import type { Page } from '../shared/pagination.ts';
import { issueApiKey, parseApiKey, secretMatches } from './api-keys.ts';
import {
  type Caller,
  isAdmin,
  isPermission,
  type Permission,
  ROLES,
  type Role,
  requireAdmin,
  requireOperator,
} from './identity.ts';

/** Per-region limits of an account. */
export interface QuotaLimits {
  /** Snapshots that may exist at once (any state but deleted). */
  maxSnapshots: number;
  /**
   * Bytes the account may store: what its snapshots added (compressed, after deduplication) plus its
   * exports' objects (their full size, reserved before they are written).
   */
  maxStoredBytes: number;
  /** Snapshots being written at once (`queued` or `pending`), copies and imports aside. */
  maxPendingSnapshots: number;
  /** Of those, on any one volume. */
  maxPendingSnapshotsPerVolume: number;
  /** Copies into this region being written at once. */
  maxCopiesInFlight: number;
  /** Imports being written at once. */
  maxImportsInFlight: number;
  /** Exports being written at once. */
  maxExportsInFlight: number;
  /** Uploads for import (`POST /v1/uploads`) open at once: until imported, or their URLs expire. */
  maxOpenUploads: number;
  /** Requests per second the account may make to this region's API, sustained… */
  requestsPerSecond: number;
  /** …and at once (the window is `requestBurst / requestsPerSecond` seconds). */
  requestBurst: number;
}

/** The limits on work in flight, with the usage counter each one bounds. */
export const IN_FLIGHT_LIMITS = {
  pendingSnapshots: 'maxPendingSnapshots',
  copiesInFlight: 'maxCopiesInFlight',
  importsInFlight: 'maxImportsInFlight',
  exportsInFlight: 'maxExportsInFlight',
  openUploads: 'maxOpenUploads',
} as const satisfies Record<string, keyof QuotaLimits>;
export type InFlightCounter = keyof typeof IN_FLIGHT_LIMITS;

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

/** An API key as stored: the secret only as its hash. */
export interface ApiKeyRecord {
  keyId: string;
  accountId: string;
  userName: string;
  secretHash: string;
  createdAt: string;
  description?: string;
  /** ISO time after which the key no longer works. */
  expiresAt?: string;
  revokedAt?: string;
}

/** An API key as listed: everything but the hash. */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'secretHash'>;

/** A key just issued: the token is shown this once and stored nowhere. */
export interface IssuedKey extends ApiKeyInfo {
  token: string;
}

/** What this region counts against an account's quota. */
export interface Usage {
  snapshots: number;
  /** Snapshots' added bytes plus exports' reserved bytes. */
  storedBytes: number;
  /** Of `storedBytes`, what exports hold. */
  exportBytes: number;
  pendingSnapshots: number;
  copiesInFlight: number;
  importsInFlight: number;
  exportsInFlight: number;
  openUploads: number;
}

/** An account that has used nothing yet. */
export const NO_USAGE: Usage = {
  snapshots: 0,
  storedBytes: 0,
  exportBytes: 0,
  pendingSnapshots: 0,
  copiesInFlight: 0,
  importsInFlight: 0,
  exportsInFlight: 0,
  openUploads: 0,
};

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
  listApiKeys(accountId: string): Promise<ApiKeyRecord[]>;
  /** Stores a key; fails with `user.notFound` if its user is gone. */
  createApiKey(key: ApiKeyRecord): Promise<void>;
  revokeApiKey(keyId: string, revokedAt: string): Promise<void>;
}

/**
 * What an account may do unless the operator says otherwise: sized like a small provider's defaults
 * (EBS: 100 concurrent snapshots per account, 20 concurrent copies per destination region).
 */
export const DEFAULT_QUOTA: QuotaLimits = {
  maxSnapshots: 10_000,
  maxStoredBytes: 50 * 2 ** 40,
  maxPendingSnapshots: 100,
  maxPendingSnapshotsPerVolume: 20,
  maxCopiesInFlight: 20,
  maxImportsInFlight: 20,
  maxExportsInFlight: 20,
  maxOpenUploads: 20,
  requestsPerSecond: 50,
  requestBurst: 100,
};

/** The limits that apply to an account: the override where it has one, else the default. */
export function limitsOf(account: Account | undefined, defaults: QuotaLimits = DEFAULT_QUOTA): QuotaLimits {
  return { ...defaults, ...(account?.quota ?? {}) };
}

const ACCOUNT_NAME = /^[a-z][a-z0-9-]{1,62}$/;
const USER_NAME = /^[a-z][a-z0-9._-]{0,62}$/;
const MAX_KEY_LIFETIME_MS = 5 * 365 * 86_400_000;

/**
 * Resolves an `Authorization: Bearer vsk_…` header to the caller, or `undefined` for every kind of
 * failure alike (no header, not a volsnap key, unknown key, wrong secret, revoked, expired, user or
 * account gone). Reads the store on every call, so revocation and permission changes apply at once.
 */
export function keyAuthenticator(
  identity: Pick<IdentityRepository, 'getApiKey' | 'getUser' | 'getAccount'>,
  clock: Clock,
) {
  return async (authorization: string | undefined): Promise<Caller | undefined> => {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization?.trim() ?? '')?.[1];
    const parsed = token ? parseApiKey(token) : undefined;
    if (!parsed) return undefined;
    const key = await identity.getApiKey(parsed.keyId);
    if (
      !key ||
      !secretMatches(parsed.secret, key.secretHash) ||
      key.revokedAt !== undefined ||
      (key.expiresAt !== undefined && parseIsoTime(key.expiresAt) <= clock.now())
    )
      return undefined;
    const [user, account] = await Promise.all([
      identity.getUser(key.accountId, key.userName),
      identity.getAccount(key.accountId),
    ]);
    if (!user || !account) return undefined;
    return {
      accountId: account.accountId,
      userName: user.userName,
      keyId: key.keyId,
      role: user.role,
      permissions: user.role === 'member' ? user.permissions : [],
      operator: account.operator === true && isAdmin(user),
    };
  };
}

export interface AccountServiceOptions {
  /** Where identity is managed (the identity region's replica: consistent with its own writes). */
  identity: IdentityRepository;
  /**
   * Where an account's limits are read for each request (this region's replica first); default
   * `identity`.
   */
  lookups?: Pick<IdentityRepository, 'getAccount'>;
  clock: Clock;
  region: string;
  /** This region's usage counters (absent ones are 0). */
  usage(accountId: string): Promise<Partial<Usage>>;
  defaults?: QuotaLimits;
  /** Requests the account made in the current rate window (for `account usage`). */
  requestsInWindow?(accountId: string): Promise<number>;
}

/** This region's usage of an account beside its limits, as `account usage` shows it. */
export interface AccountUsage extends Record<InFlightCounter, Measure> {
  accountId: string;
  region: string;
  snapshots: Measure;
  /** `exports`: the part of `used` that exports hold. */
  storedBytes: Measure & { exports: number };
  /** Per volume: no account-wide count. */
  pendingSnapshotsPerVolume: { limit: number };
  /** Requests in the current window of `perSeconds` seconds, at most `limit` (the burst). */
  requestRate: Measure & { perSeconds: number; requestsPerSecond: number };
}

/** Accounts, users, keys, settings and quotas: who may act, and how much. */
export class AccountService {
  readonly #o: AccountServiceOptions & { defaults: QuotaLimits };

  constructor(options: AccountServiceOptions) {
    this.#o = { defaults: DEFAULT_QUOTA, ...options };
  }

  /**
   * Creates an account with its owner user and the owner's first key (operator only). The key's
   * token is in the answer, once.
   */
  async createAccount(
    caller: Caller,
    input: { name: string; ownerName?: string; operator?: boolean },
  ): Promise<{ account: Account; owner: User; key: IssuedKey }> {
    requireOperator(caller);
    if (!ACCOUNT_NAME.test(input.name) || isId('account', input.name)) {
      throw new VolsnapError(
        'request.invalid',
        `Account name '${input.name}' is not valid: 2–63 characters, lower-case letters, digits and '-', starting with a letter.`,
      );
    }
    const { account, owner } = newAccount(
      { ...input, ownerName: validUserName(input.ownerName ?? 'owner') },
      this.#o.clock.now(),
    );
    const { record, issued } = this.#newKey(owner, {});
    await this.#o.identity.createAccount(account, owner, record);
    return { account, owner, key: issued };
  }

  listAccounts(caller: Caller, page: { limit: number; nextToken?: string }): Promise<Page<Account>> {
    requireOperator(caller);
    return this.#o.identity.listAccounts(page);
  }

  /** Sets (or with `null`, removes) an account's quota override (operator only). */
  async setQuota(
    caller: Caller,
    accountRef: string,
    quota: Partial<QuotaLimits> | null,
  ): Promise<{ account: Account; limits: QuotaLimits }> {
    requireOperator(caller);
    for (const [name, value] of Object.entries(quota ?? {})) {
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
        throw new VolsnapError('request.invalid', `Quota ${name} must be a whole number ≥ 0, got ${value}.`);
      }
    }
    const target = await this.resolveAccount(accountRef);
    // Limits not named keep their override: `{}` (null) alone resets them all.
    const merged = quota === null ? null : { ...(target.quota ?? {}), ...quota };
    if (merged && merged.requestsPerSecond === 0) {
      throw new VolsnapError('request.invalid', 'Quota requestsPerSecond must be at least 1.');
    }
    const updated = await this.#o.identity.updateAccount(target.accountId, { quota: merged });
    if (!updated) throw accountNotFound(accountRef);
    return { account: updated, limits: limitsOf(updated, this.#o.defaults) };
  }

  /** The caller's account, and who the caller is in it. */
  async whoami(caller: Caller): Promise<{ account: Account; user: User; keyId: string }> {
    const [account, user] = await Promise.all([
      this.#o.identity.getAccount(caller.accountId),
      this.#o.identity.getUser(caller.accountId, caller.userName),
    ]);
    if (!account || !user) throw new VolsnapError('auth.unauthorized', 'Your API key no longer resolves.');
    return { account, user, keyId: caller.keyId };
  }

  async updateSettings(
    caller: Caller,
    changes: { blockPublicSharing?: boolean; recycleBinDays?: number },
  ): Promise<Account> {
    requireAdmin(caller);
    const days = changes.recycleBinDays;
    if (days !== undefined && (!Number.isInteger(days) || days < 0 || days > MAX_RECYCLE_BIN_DAYS)) {
      throw new VolsnapError(
        'request.invalid',
        `The recycle bin keeps deleted snapshots 0 to ${MAX_RECYCLE_BIN_DAYS} whole days (0 deletes at once); ${days} was given.`,
      );
    }
    const updated = await this.#o.identity.updateAccount(caller.accountId, changes);
    if (!updated) throw accountNotFound(caller.accountId);
    return updated;
  }

  /** This region's usage of the caller's account, beside its limits. */
  async usage(caller: Caller): Promise<AccountUsage> {
    const [account, counted, requests] = await Promise.all([
      this.#o.identity.getAccount(caller.accountId),
      this.#o.usage(caller.accountId),
      this.#o.requestsInWindow?.(caller.accountId),
    ]);
    const usage: Usage = { ...NO_USAGE, ...counted };
    const limits = limitsOf(account, this.#o.defaults);
    return {
      accountId: caller.accountId,
      region: this.#o.region,
      snapshots: { used: usage.snapshots, limit: limits.maxSnapshots },
      storedBytes: { used: usage.storedBytes, limit: limits.maxStoredBytes, exports: usage.exportBytes },
      ...Object.fromEntries(
        Object.entries(IN_FLIGHT_LIMITS).map(([counter, limit]) => [
          counter,
          { used: usage[counter as InFlightCounter], limit: limits[limit] },
        ]),
      ),
      pendingSnapshotsPerVolume: { limit: limits.maxPendingSnapshotsPerVolume },
      requestRate: {
        used: requests ?? 0,
        limit: limits.requestBurst,
        perSeconds: requestWindowMs(limits) / 1000,
        requestsPerSecond: limits.requestsPerSecond,
      },
    } as AccountUsage;
  }

  /** The limits of an account in this region (for the snapshot service's quota check). */
  async limits(accountId: string): Promise<QuotaLimits> {
    return limitsOf(await (this.#o.lookups ?? this.#o.identity).getAccount(accountId), this.#o.defaults);
  }

  /** An account by id or by name; `account.notFound` otherwise. */
  async resolveAccount(ref: string): Promise<Account> {
    const account = isId('account', ref)
      ? await this.#o.identity.getAccount(ref)
      : ACCOUNT_NAME.test(ref)
        ? await this.#o.identity.findAccountByName(ref)
        : undefined;
    if (!account) throw accountNotFound(ref);
    return account;
  }

  async createUser(
    caller: Caller,
    input: { userName: string; role?: Role; permissions?: string[] },
  ): Promise<User> {
    requireAdmin(caller);
    const role = validRole(input.role ?? 'member');
    this.#mayGrant(caller, role);
    const user: User = {
      accountId: caller.accountId,
      userName: validUserName(input.userName),
      role,
      permissions: role === 'member' ? validPermissions(input.permissions ?? []) : [],
      createdAt: isoTime(this.#o.clock.now()),
    };
    await this.#o.identity.createUser(user);
    return user;
  }

  async listUsers(caller: Caller): Promise<User[]> {
    requireAdmin(caller);
    return this.#o.identity.listUsers(caller.accountId);
  }

  async updateUser(
    caller: Caller,
    userName: string,
    changes: { role?: Role; permissions?: string[] },
  ): Promise<User> {
    requireAdmin(caller);
    const user = await this.#user(caller.accountId, userName);
    this.#mayManage(caller, user);
    const role = changes.role === undefined ? user.role : validRole(changes.role);
    this.#mayGrant(caller, role);
    if (user.role === 'owner' && role !== 'owner') await this.#keepAnOwner(caller.accountId, userName);
    const permissions =
      role !== 'member' ? [] : changes.permissions ? validPermissions(changes.permissions) : user.permissions;
    const updated = await this.#o.identity.updateUser(caller.accountId, userName, { role, permissions });
    if (!updated) throw userNotFound(userName);
    return updated;
  }

  /** Deletes a user and revokes its keys (keys first: a half-done delete leaves no working key). */
  async deleteUser(caller: Caller, userName: string): Promise<void> {
    requireAdmin(caller);
    const user = await this.#user(caller.accountId, userName);
    this.#mayManage(caller, user);
    if (user.role === 'owner') await this.#keepAnOwner(caller.accountId, userName);
    const now = isoTime(this.#o.clock.now());
    const keys = await this.#o.identity.listApiKeys(caller.accountId);
    for (const key of keys.filter((k) => k.userName === userName && !k.revokedAt)) {
      await this.#o.identity.revokeApiKey(key.keyId, now);
    }
    await this.#o.identity.deleteUser(caller.accountId, userName);
  }

  /**
   * Issues a key for a user of the caller's account (the caller's own user by default). The token
   * is in the answer, once; only its hash is stored.
   */
  async createKey(
    caller: Caller,
    input: { userName?: string; expiresInSeconds?: number; description?: string },
  ): Promise<IssuedKey> {
    requireAdmin(caller);
    const user = await this.#user(caller.accountId, input.userName ?? caller.userName);
    if (user.userName !== caller.userName) this.#mayManage(caller, user);
    const { record, issued } = this.#newKey(user, input);
    await this.#o.identity.createApiKey(record);
    return issued;
  }

  /** The account's keys (never their secrets or hashes), optionally of one user. */
  async listKeys(caller: Caller, userName?: string): Promise<ApiKeyInfo[]> {
    requireAdmin(caller);
    const keys = await this.#o.identity.listApiKeys(caller.accountId);
    return keys.filter((k) => userName === undefined || k.userName === userName).map(keyInfo);
  }

  /** Revokes a key: admins any of their account's, every user its own. Revoking twice is a no-op. */
  async revokeKey(caller: Caller, keyId: string): Promise<ApiKeyInfo> {
    const key = isId('key', keyId) ? await this.#o.identity.getApiKey(keyId) : undefined;
    if (!key || key.accountId !== caller.accountId) {
      throw new VolsnapError('key.notFound', `No API key ${keyId} in this account.`, { details: { keyId } });
    }
    if (key.userName !== caller.userName) {
      requireAdmin(caller);
      this.#mayManage(caller, await this.#user(caller.accountId, key.userName));
    }
    if (key.revokedAt) return keyInfo(key);
    const revokedAt = isoTime(this.#o.clock.now());
    await this.#o.identity.revokeApiKey(keyId, revokedAt);
    return keyInfo({ ...key, revokedAt });
  }

  #newKey(
    user: User,
    input: { expiresInSeconds?: number; description?: string },
  ): { record: ApiKeyRecord; issued: IssuedKey } {
    const now = this.#o.clock.now();
    if (input.expiresInSeconds !== undefined) {
      const ms = input.expiresInSeconds * 1000;
      if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_KEY_LIFETIME_MS) {
        throw new VolsnapError('request.invalid', 'A key expires after 1 second to 5 years.');
      }
    }
    if ((input.description?.length ?? 0) > 256) {
      throw new VolsnapError('request.invalid', 'A key description is at most 256 characters.');
    }
    return newKeyRecord(user, now, input);
  }

  async #user(accountId: string, userName: string): Promise<User> {
    const user = USER_NAME.test(userName) ? await this.#o.identity.getUser(accountId, userName) : undefined;
    if (!user) throw userNotFound(userName);
    return user;
  }

  /** Admins manage members (and themselves); owners manage everyone. */
  #mayManage(caller: Caller, user: User): void {
    if (caller.role === 'owner' || user.role === 'member' || user.userName === caller.userName) return;
    throw new VolsnapError('auth.forbidden', `Only an owner can manage ${user.role} ${user.userName}.`);
  }

  /** Only owners make owners and admins. */
  #mayGrant(caller: Caller, role: Role): void {
    if (role !== 'member' && caller.role !== 'owner') {
      throw new VolsnapError('auth.forbidden', `Only an owner can make a user ${role}.`);
    }
  }

  async #keepAnOwner(accountId: string, leaving: string): Promise<void> {
    const owners = (await this.#o.identity.listUsers(accountId)).filter(
      (u) => u.role === 'owner' && u.userName !== leaving,
    );
    if (owners.length === 0) {
      throw new VolsnapError(
        'request.invalid',
        `${leaving} is the account's last owner: make another user owner first.`,
      );
    }
  }
}

export interface Measure {
  used: number;
  limit: number;
}

function keyInfo(key: ApiKeyRecord): ApiKeyInfo {
  const { secretHash: _hash, ...info } = key;
  return info;
}

function validUserName(name: string): string {
  if (!USER_NAME.test(name)) {
    throw new VolsnapError(
      'request.invalid',
      `User name '${name}' is not valid: 1–63 characters, lower-case letters, digits, '.', '_' and '-', starting with a letter.`,
    );
  }
  return name;
}

function validRole(role: string): Role {
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new VolsnapError('request.invalid', `Role '${role}' is not one of ${ROLES.join(', ')}.`);
  }
  return role as Role;
}

function validPermissions(permissions: string[]): Permission[] {
  const unknown = permissions.filter((p) => !isPermission(p));
  if (unknown.length > 0) {
    throw new VolsnapError(
      'request.invalid',
      `Unknown permission(s): ${unknown.join(', ')}. Permissions are volume:create, volume:delete, snapshot:create, snapshot:update, snapshot:delete, snapshot:share, snapshot:export, snapshot:copy and snapshot:import.`,
    );
  }
  return [...new Set(permissions as Permission[])].sort();
}

function accountNotFound(ref: string): VolsnapError {
  return new VolsnapError('account.notFound', `No account ${ref}.`, { details: { account: ref } });
}

function userNotFound(userName: string): VolsnapError {
  return new VolsnapError('user.notFound', `No user ${userName} in this account.`, {
    details: { userName },
  });
}

/** The 4xx of a create that would pass a quota: names the limit and the usage. */
export function quotaExceeded(
  region: string,
  limits: Pick<QuotaLimits, 'maxSnapshots' | 'maxStoredBytes'>,
  usage: Pick<Usage, 'snapshots' | 'storedBytes'>,
): VolsnapError {
  const bySnapshots = usage.snapshots >= limits.maxSnapshots;
  const message = bySnapshots
    ? `The account has ${usage.snapshots} snapshots in ${region}, its quota is ${limits.maxSnapshots}: delete snapshots or ask the operator for a higher quota.`
    : `The account's snapshots and exports hold ${usage.storedBytes} bytes in ${region}, its quota is ${limits.maxStoredBytes}: delete snapshots or exports, or ask the operator for a higher quota.`;
  return new VolsnapError('quota.exceeded', message, {
    details: {
      region,
      quota: bySnapshots ? 'snapshots' : 'storedBytes',
      limit: bySnapshots ? limits.maxSnapshots : limits.maxStoredBytes,
      used: bySnapshots ? usage.snapshots : usage.storedBytes,
    },
  });
}

/** The 4xx of an export whose object would take the account past its stored bytes. */
export function exportQuotaExceeded(region: string, limit: number, used: number, size: number): VolsnapError {
  return new VolsnapError(
    'quota.exceeded',
    `The export would write ${size} bytes; the account's snapshots and exports hold ${used} bytes in ${region} and its quota is ${limit}: delete exports or snapshots, export in a smaller format (vsnap stores only the data), or ask the operator for a higher quota.`,
    { details: { region, quota: 'storedBytes', limit, used, size } },
  );
}

/** The 429 of work that would pass a limit on work in flight: names it, the count, and what to do. */
export function inFlightExceeded(
  region: string,
  counter: InFlightCounter | 'pendingSnapshotsPerVolume',
  used: number,
  limit: number,
): VolsnapError {
  const what = {
    pendingSnapshots: 'snapshots being written',
    pendingSnapshotsPerVolume: 'snapshots being written on this volume',
    copiesInFlight: 'copies in flight',
    importsInFlight: 'imports in flight',
    exportsInFlight: 'exports in flight',
    openUploads: 'open uploads',
  }[counter];
  const quota =
    counter === 'pendingSnapshotsPerVolume' ? 'maxPendingSnapshotsPerVolume' : IN_FLIGHT_LIMITS[counter];
  const finish =
    counter === 'openUploads'
      ? 'import or let expire the uploads you have'
      : 'wait for some to finish (or delete those you do not need)';
  return new VolsnapError(
    'quota.inFlight',
    `The account has ${used} ${what} in ${region}, its limit (${quota}) is ${limit}: ${finish}, then retry; or ask the operator for a higher limit.`,
    { details: { region, quota, limit, used } },
  );
}

/** The length of a rate window: `requestBurst` requests may be made in it. */
export function requestWindowMs(limits: Pick<QuotaLimits, 'requestBurst' | 'requestsPerSecond'>): number {
  return Math.max(1, Math.ceil((1000 * limits.requestBurst) / Math.max(1, limits.requestsPerSecond)));
}

/**
 * Makes sure an account named `name` exists with an owner user `owner`, and issues that owner a new
 * key: how a deployment gets its operator account, and the local cloud its demo accounts, before any
 * key exists to call the API with. Idempotent on the name: an existing account is kept as it is.
 */
export async function bootstrapAccount(
  identity: IdentityRepository,
  clock: Clock,
  input: { name: string; operator?: boolean },
): Promise<{ account: Account; key: IssuedKey }> {
  const existing = await identity.findAccountByName(input.name);
  const now = clock.now();
  if (existing) {
    if (!(await identity.getUser(existing.accountId, 'owner'))) {
      await identity.createUser(newAccount({ name: existing.name }, now, existing.accountId).owner);
    }
    const { record, issued } = newKeyRecord({ accountId: existing.accountId, userName: 'owner' }, now, {
      description: 'bootstrap',
    });
    await identity.createApiKey(record);
    return { account: existing, key: issued };
  }
  const { account, owner } = newAccount(input, now);
  const { record, issued } = newKeyRecord(owner, now, { description: 'bootstrap' });
  await identity.createAccount(account, owner, record);
  return { account, key: issued };
}

/** A new account and its owner user (validated input). */
function newAccount(
  input: { name: string; ownerName?: string; operator?: boolean },
  nowMs: number,
  accountId = newId('account'),
): { account: Account; owner: User } {
  const createdAt = isoTime(nowMs);
  return {
    account: {
      accountId,
      name: input.name,
      createdAt,
      blockPublicSharing: false,
      ...(input.operator ? { operator: true } : {}),
    },
    owner: { accountId, userName: input.ownerName ?? 'owner', role: 'owner', permissions: [], createdAt },
  };
}

/** A new key of a user: the record to store (hash only) and what to show once (the token). */
function newKeyRecord(
  user: Pick<User, 'accountId' | 'userName'>,
  nowMs: number,
  input: { expiresInSeconds?: number; description?: string },
): { record: ApiKeyRecord; issued: IssuedKey } {
  const key = issueApiKey();
  const record: ApiKeyRecord = {
    keyId: key.keyId,
    accountId: user.accountId,
    userName: user.userName,
    secretHash: key.secretHash,
    createdAt: isoTime(nowMs),
    ...(input.description ? { description: input.description } : {}),
    ...(input.expiresInSeconds ? { expiresAt: isoTime(nowMs + input.expiresInSeconds * 1000) } : {}),
  };
  return { record, issued: { ...keyInfo(record), token: key.token } };
}
