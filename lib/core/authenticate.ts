import { parseApiKey, secretMatches } from './api-keys.ts';
import { type Clock, parseIsoTime } from './clock.ts';
import { VolsnapError } from './errors.ts';
import type { Caller } from './identity.ts';

/** A stored API key, as authentication needs it. */
export interface StoredApiKey {
  keyId: string;
  accountId: string;
  role: Caller['role'];
  secretHash: string;
  /** ISO time after which the key no longer works. */
  expiresAt?: string;
  revokedAt?: string;
}

/** Where API keys are looked up (the region table). */
export interface ApiKeyStore {
  getApiKey(keyId: string): Promise<StoredApiKey | undefined>;
}

const UNAUTHORIZED = 'Missing or invalid API key. Send it as `Authorization: Bearer vsk_…`.';

/**
 * Resolves an `Authorization: Bearer vsk_…` header to the caller. Every failure (no header, not a
 * volsnap key, unknown key, wrong secret, revoked, expired) is the same 401 with the same message,
 * so a caller cannot tell which. Reads the key store on every call: a revoked key stops at once.
 */
export function apiKeyAuthenticator(keys: ApiKeyStore, clock: Clock) {
  return async (authorization: string | undefined): Promise<Caller> => {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization?.trim() ?? '')?.[1];
    const parsed = token ? parseApiKey(token) : undefined;
    const stored = parsed ? await keys.getApiKey(parsed.keyId) : undefined;
    const valid =
      parsed !== undefined &&
      stored !== undefined &&
      secretMatches(parsed.secret, stored.secretHash) &&
      stored.revokedAt === undefined &&
      (stored.expiresAt === undefined || parseIsoTime(stored.expiresAt) > clock.now());
    if (!valid || !stored) throw new VolsnapError('auth.unauthorized', UNAUTHORIZED);
    return { accountId: stored.accountId, keyId: stored.keyId, role: stored.role };
  };
}
