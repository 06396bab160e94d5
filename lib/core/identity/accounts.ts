import type { SecretSealer } from '../ports/secrets.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId } from '../shared/ids.ts';
import type { Page } from '../shared/pagination.ts';
import { keyInfo, newAccount, newKeyRecord } from './credentials.ts';
import { type Caller, type Role, requireAdmin, requireOperator } from './identity.ts';
import {
  ACCOUNT_NAME,
  accountNotFound,
  USER_NAME,
  userNotFound,
  validPermissions,
  validRole,
  validUserName,
} from './names.ts';
import {
  type AccountUsage,
  DEFAULT_QUOTA,
  IN_FLIGHT_LIMITS,
  type InFlightCounter,
  limitsOf,
  NO_USAGE,
  type QuotaLimits,
  requestWindowMs,
  type Usage,
} from './quotas.ts';
import {
  type Account,
  type ApiKeyInfo,
  type ApiKeyRecord,
  type IdentityRepository,
  type IssuedKey,
  type IssuedSigV4Key,
  MAX_RECYCLE_BIN_DAYS,
  type User,
} from './records.ts';
import { keyIdOfAccessKey, newSigV4KeyRecord } from './sigv4-keys.ts';

// Accounts as the rest of volsnap imports them: the records, quotas and credentials live in their
// own modules of lib/core/identity; this one is the account service, and names them all.
export { bootstrapAccount, callerOf, callerOfKey, keyAuthenticator } from './credentials.ts';
export {
  type AccountUsage,
  DEFAULT_QUOTA,
  exportQuotaExceeded,
  IN_FLIGHT_LIMITS,
  type InFlightCounter,
  inFlightExceeded,
  limitsOf,
  type Measure,
  NO_USAGE,
  type QuotaLimits,
  quotaExceeded,
  requestWindowMs,
  type Usage,
} from './quotas.ts';
export {
  type Account,
  type AccountChanges,
  type ApiKeyInfo,
  type ApiKeyRecord,
  DEFAULT_RECYCLE_BIN_DAYS,
  type IdentityRepository,
  type IssuedKey,
  type IssuedSigV4Key,
  type KeyWithOwner,
  MAX_RECYCLE_BIN_DAYS,
  recycleBinDaysOf,
  type User,
} from './records.ts';

const MAX_KEY_LIFETIME_MS = 5 * 365 * 86_400_000;

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
  /**
   * What seals SigV4 secret access keys, asked for on first use (without it,
   * {@link AccountService.createSigV4Key} refuses).
   */
  sealer?: () => SecretSealer;
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

  /**
   * Issues a SigV4 access key pair for a user of the caller's account (the caller's own user by
   * default), for the AWS-protocol APIs. The secret access key is in the answer, once; it is stored
   * only sealed. Lists, expires and revokes as an API key does.
   */
  async createSigV4Key(
    caller: Caller,
    input: { userName?: string; expiresInSeconds?: number; description?: string },
  ): Promise<IssuedSigV4Key> {
    requireAdmin(caller);
    const user = await this.#user(caller.accountId, input.userName ?? caller.userName);
    if (user.userName !== caller.userName) this.#mayManage(caller, user);
    this.#checkKeyInput(input);
    const sealer = this.#o.sealer?.();
    if (!sealer) {
      throw new VolsnapError(
        'internal',
        'This deployment has no key to seal SigV4 secrets with (its sealing key is not configured).',
      );
    }
    const { record, issued } = await newSigV4KeyRecord(user, this.#o.clock.now(), input, sealer);
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
  async revokeKey(caller: Caller, keyOrAccessKeyId: string): Promise<ApiKeyInfo> {
    // A SigV4 key may be named by its access key id (`AKIA…`), as AWS tools show it.
    const keyId = keyIdOfAccessKey(keyOrAccessKeyId) ?? keyOrAccessKeyId;
    const key = isId('key', keyId) ? await this.#o.identity.getApiKey(keyId) : undefined;
    if (!key || key.accountId !== caller.accountId) {
      throw new VolsnapError('key.notFound', `No API key ${keyOrAccessKeyId} in this account.`, {
        details: { keyId: keyOrAccessKeyId },
      });
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
    this.#checkKeyInput(input);
    return newKeyRecord(user, this.#o.clock.now(), input);
  }

  #checkKeyInput(input: { expiresInSeconds?: number; description?: string }): void {
    if (input.expiresInSeconds !== undefined) {
      const ms = input.expiresInSeconds * 1000;
      if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_KEY_LIFETIME_MS) {
        throw new VolsnapError('request.invalid', 'A key expires after 1 second to 5 years.');
      }
    }
    if ((input.description?.length ?? 0) > 256) {
      throw new VolsnapError('request.invalid', 'A key description is at most 256 characters.');
    }
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
