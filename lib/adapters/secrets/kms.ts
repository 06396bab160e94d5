import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { SecretSealer } from '../../core/ports/secrets.ts';
import { aesGcmOpen, aesGcmSeal, b64, boxOf, boxText, SealedSecretError, unb64 } from './aes-gcm.ts';

export interface KmsSealerOptions {
  /** Sends KMS commands (only `send` is used). */
  kms: Pick<KMSClient, 'send'>;
  /** The KMS key (id, ARN or alias ARN): the deployment's identity key, in the identity region. */
  keyId: string;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** How long one data key seals new secrets before another is made (default 5 minutes). */
  dataKeyTtlMs?: number;
  /** How many decrypted data keys are kept (default 256; the oldest is dropped). */
  cachedDataKeys?: number;
}

/** Every data key is asked for, and opened, under this context: KMS logs it, and refuses others. */
const ENCRYPTION_CONTEXT = { purpose: 'volsnap-sealed-secret' };

/**
 * Envelope encryption with KMS: a secret is sealed with AES-256-GCM under a data key, and the data
 * key travels encrypted by the KMS key beside it (`v1.kms.<encrypted data key>.<iv>.<ciphertext>.<tag>`;
 * the secret's key id is the GCM additional data). A data key seals for `dataKeyTtlMs`, then a new
 * one is made (one GenerateDataKey per container and period); decrypted data keys are cached by
 * their encrypted form, so checking a request's signature costs one KMS Decrypt per data key and
 * container, not one per request. The plain data keys live only in this process's memory.
 */
export class KmsSecretSealer implements SecretSealer {
  readonly #o: Required<KmsSealerOptions>;
  #current: { encrypted: string; plain: Promise<Uint8Array>; until: number } | undefined;
  readonly #opened = new Map<string, Promise<Uint8Array>>();

  constructor(options: KmsSealerOptions) {
    this.#o = { dataKeyTtlMs: 5 * 60_000, cachedDataKeys: 256, ...options };
  }

  async seal(secret: string, context: string): Promise<string> {
    const key = await this.#sealingKey();
    return ['v1', 'kms', key.encrypted, boxText(aesGcmSeal(await key.plain, secret, context))].join('.');
  }

  async unseal(sealed: string, context: string): Promise<string> {
    const [version, kind, encrypted, ...rest] = sealed.split('.');
    const box = boxOf(rest);
    if (version !== 'v1' || kind !== 'kms' || !encrypted || !box) {
      throw new SealedSecretError('The sealed secret is not one KMS sealed (unknown format).');
    }
    const plain = await this.#dataKey(encrypted);
    try {
      return aesGcmOpen(plain, box, context);
    } catch {
      throw new SealedSecretError('The sealed secret does not open: altered, or sealed for another key id.');
    }
  }

  async #sealingKey(): Promise<{ encrypted: string; plain: Promise<Uint8Array> }> {
    const now = this.#o.now();
    if (this.#current && this.#current.until > now) return this.#current;
    const answer = await this.#o.kms.send(
      new GenerateDataKeyCommand({
        KeyId: this.#o.keyId,
        KeySpec: 'AES_256',
        EncryptionContext: ENCRYPTION_CONTEXT,
      }),
    );
    if (!answer.CiphertextBlob || !answer.Plaintext) throw new Error('KMS returned no data key.');
    const encrypted = b64(answer.CiphertextBlob);
    const plain = Promise.resolve(answer.Plaintext);
    this.#current = { encrypted, plain, until: now + this.#o.dataKeyTtlMs };
    this.#remember(encrypted, plain);
    return this.#current;
  }

  #dataKey(encrypted: string): Promise<Uint8Array> {
    const known = this.#opened.get(encrypted);
    if (known) return known;
    const opening = this.#o.kms
      .send(
        new DecryptCommand({
          KeyId: this.#o.keyId,
          CiphertextBlob: unb64(encrypted),
          EncryptionContext: ENCRYPTION_CONTEXT,
        }),
      )
      .then((answer) => {
        if (!answer.Plaintext) throw new Error('KMS returned no plaintext for the data key.');
        return answer.Plaintext;
      });
    // A failed Decrypt (throttled, denied) is not kept: the next request asks again.
    opening.catch(() => this.#opened.delete(encrypted));
    this.#remember(encrypted, opening);
    return opening;
  }

  #remember(encrypted: string, plain: Promise<Uint8Array>): void {
    this.#opened.delete(encrypted);
    this.#opened.set(encrypted, plain);
    while (this.#opened.size > this.#o.cachedDataKeys) {
      const oldest = this.#opened.keys().next().value;
      if (oldest === undefined) break;
      this.#opened.delete(oldest);
    }
  }
}
