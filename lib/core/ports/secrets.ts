/**
 * Sealing secrets the server must read back (SigV4 secret access keys: the server recomputes their
 * HMACs, so a hash will not do). A sealed secret is envelope-encrypted with a key the deployment
 * holds (KMS on AWS, a key file in the local cloud) and bound to `context` (the key id it belongs
 * to), so a sealed value copied onto another record does not unseal there.
 */
export interface SecretSealer {
  /**
   * Seals `secret` for `context`. The result is printable text (it goes into a table item) and
   * never contains the secret. Not idempotent (a fresh nonce each call); safe to retry.
   */
  seal(secret: string, context: string): Promise<string>;
  /**
   * The secret `sealed` holds, or throws when it was sealed for another context, with another key,
   * or was altered. Reads only; safe to retry. Implementations cache what makes this cheap (a
   * KMS-decrypted data key), so a request does not cost a KMS call.
   */
  unseal(sealed: string, context: string): Promise<string>;
}
