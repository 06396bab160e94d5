import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { newId } from '../shared/ids.ts';

/**
 * API keys: `vsk_<keyId>_<secret>`. The key id is public (it names the key in lists and logs); the
 * secret is 256 random bits, shown once at creation and stored only as its SHA-256 (a fast hash is
 * enough for a secret of that entropy: there is nothing to brute-force).
 */
export interface IssuedApiKey {
  keyId: string;
  /** The full token to hand to the user, once. */
  token: string;
  /** What is stored. */
  secretHash: string;
}

const TOKEN = /^vsk_(key-[0-9a-z]{16})_([A-Za-z0-9_-]{43})$/;

export function issueApiKey(): IssuedApiKey {
  const keyId = newId('key');
  const secret = randomBytes(32).toString('base64url');
  return { keyId, token: `vsk_${keyId}_${secret}`, secretHash: hashSecret(secret) };
}

/** Splits a token into key id and secret, or `undefined` when it is not shaped like one. */
export function parseApiKey(token: string): { keyId: string; secret: string } | undefined {
  const match = TOKEN.exec(token);
  return match?.[1] && match[2] ? { keyId: match[1], secret: match[2] } : undefined;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, secretHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(secretHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}
