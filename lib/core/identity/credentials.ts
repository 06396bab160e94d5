import { type Clock, isoTime, parseIsoTime } from '../shared/clock.ts';
import { newId } from '../shared/ids.ts';
import { issueApiKey, parseApiKey, secretMatches } from './api-keys.ts';
import { type Caller, isAdmin } from './identity.ts';
import type { Account, ApiKeyInfo, ApiKeyRecord, IdentityRepository, IssuedKey, User } from './records.ts';

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
    // A SigV4 key has no token: only its signatures authenticate it.
    if (!key || key.kind !== undefined || !key.secretHash || !secretMatches(parsed.secret, key.secretHash))
      return undefined;
    return callerOfKey(identity, key, clock);
  };
}

/**
 * The caller a key acts as, once its secret has been checked: `undefined` when the key is revoked
 * or expired, or its user or account is gone. Reads the store (user and account) on every call.
 */
export async function callerOfKey(
  identity: Pick<IdentityRepository, 'getUser' | 'getAccount'>,
  key: ApiKeyRecord,
  clock: Clock,
): Promise<Caller | undefined> {
  if (!isLive(key, clock)) return undefined;
  const [user, account] = await Promise.all([
    identity.getUser(key.accountId, key.userName),
    identity.getAccount(key.accountId),
  ]);
  return callerOf(key, user, account, clock);
}

/**
 * The caller a key acts as, from its user and account as just read: `undefined` when the key is
 * revoked or expired, the user or account is missing, or they are not the key's. Pure.
 */
export function callerOf(
  key: ApiKeyRecord,
  user: User | undefined,
  account: Account | undefined,
  clock: Clock,
): Caller | undefined {
  if (!isLive(key, clock) || !user || !account) return undefined;
  if (
    user.accountId !== key.accountId ||
    user.userName !== key.userName ||
    account.accountId !== key.accountId
  )
    return undefined;
  return {
    accountId: account.accountId,
    userName: user.userName,
    keyId: key.keyId,
    role: user.role,
    permissions: user.role === 'member' ? user.permissions : [],
    operator: account.operator === true && isAdmin(user),
  };
}

function isLive(key: ApiKeyRecord, clock: Clock): boolean {
  return (
    key.revokedAt === undefined && (key.expiresAt === undefined || parseIsoTime(key.expiresAt) > clock.now())
  );
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
export function newAccount(
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
export function newKeyRecord(
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

/** A key as listed: everything but its hash or its sealed secret. */
export function keyInfo(key: ApiKeyRecord): ApiKeyInfo {
  const { secretHash: _hash, sealedSecret: _sealed, ...info } = key;
  return info;
}
