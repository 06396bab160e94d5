import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { SecretSealer } from '../../core/ports/secrets.ts';

/**
 * AES-256-GCM over one secret: a fresh 96-bit nonce per seal, the context (the key id) as
 * additional authenticated data, so a sealed value moved to another record fails to open.
 */
export interface AesGcmBox {
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

const AAD_PREFIX = 'volsnap-sealed-secret:';

export function aesGcmSeal(key: Uint8Array, plaintext: string, context: string): AesGcmBox {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(AAD_PREFIX + context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

/** Throws (the GCM tag does not match) for another key, another context or altered bytes. */
export function aesGcmOpen(key: Uint8Array, box: AesGcmBox, context: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, box.iv);
  decipher.setAAD(Buffer.from(AAD_PREFIX + context, 'utf8'));
  decipher.setAuthTag(box.tag);
  return Buffer.concat([decipher.update(box.ciphertext), decipher.final()]).toString('utf8');
}

export const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
export const unb64 = (text: string) => Buffer.from(text, 'base64url');

/** The box's three parts as text, `.`-separated. */
export function boxText(box: AesGcmBox): string {
  return [b64(box.iv), b64(box.ciphertext), b64(box.tag)].join('.');
}

export function boxOf(parts: readonly string[]): AesGcmBox | undefined {
  const [iv, ciphertext, tag] = parts;
  if (parts.length !== 3 || !iv || ciphertext === undefined || !tag) return undefined;
  return { iv: unb64(iv), ciphertext: unb64(ciphertext), tag: unb64(tag) };
}

export class SealedSecretError extends Error {
  override name = 'SealedSecretError';
}

/**
 * Seals with a 256-bit key the deployment holds itself: the local cloud's key file (see
 * key-file.ts), tests' random keys. Sealed text: `v1.local.<key fingerprint>.<iv>.<ciphertext>.<tag>`;
 * the fingerprint (first 8 bytes of the key's SHA-256) lets a wrong key be named as such.
 */
export class LocalKeySealer implements SecretSealer {
  readonly #key: Buffer;
  readonly #fingerprint: string;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new Error(`A sealing key is 32 bytes; this one is ${key.length}.`);
    this.#key = Buffer.from(key);
    this.#fingerprint = createHash('sha256').update(this.#key).digest('hex').slice(0, 16);
  }

  async seal(secret: string, context: string): Promise<string> {
    return ['v1', 'local', this.#fingerprint, boxText(aesGcmSeal(this.#key, secret, context))].join('.');
  }

  async unseal(sealed: string, context: string): Promise<string> {
    const [version, kind, fingerprint, ...rest] = sealed.split('.');
    const box = boxOf(rest);
    if (version !== 'v1' || kind !== 'local' || !box) {
      throw new SealedSecretError('The sealed secret is not one this local key sealed (unknown format).');
    }
    if (fingerprint !== this.#fingerprint) {
      throw new SealedSecretError(
        `The secret was sealed with another key (fingerprint ${fingerprint}, this key's ${this.#fingerprint}).`,
      );
    }
    try {
      return aesGcmOpen(this.#key, box, context);
    } catch {
      throw new SealedSecretError('The sealed secret does not open: altered, or sealed for another key id.');
    }
  }
}
