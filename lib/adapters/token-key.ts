import { readFile } from 'node:fs/promises';
import { GenerateMacCommand, KMSClient } from '@aws-sdk/client-kms';
import { MIN_TOKEN_KEY_BYTES, type TokenKeySource } from '../core/direct/tokens.ts';
import { VolsnapError } from '../core/shared/errors.ts';

/**
 * What the token key is derived from: a KMS HMAC key never leaves KMS, so the token key is its MAC
 * of this fixed label, the same bytes in every function of the deployment and never stored. A new
 * label (v2) would retire every token at once.
 */
export const TOKEN_KEY_LABEL = 'volsnap ebs direct api token key v1';

/**
 * The token key of a deployment on AWS: `GenerateMac` (HMAC_SHA_256) of {@link TOKEN_KEY_LABEL}
 * under the stack's HMAC KMS key `keyId` (serverless.yml `TokenKey`; the role is granted
 * `kms:GenerateMac` on it alone). One KMS call per container, on the first read that needs a token.
 */
export function kmsTokenKey(keyId: string, region: string): TokenKeySource {
  return async () => {
    const kms = new KMSClient({ region });
    const answer = await kms.send(
      new GenerateMacCommand({
        KeyId: keyId,
        MacAlgorithm: 'HMAC_SHA_256',
        Message: new TextEncoder().encode(TOKEN_KEY_LABEL),
      }),
    );
    kms.destroy();
    if (!answer.Mac || answer.Mac.byteLength < MIN_TOKEN_KEY_BYTES)
      throw new VolsnapError('internal', `KMS answered no usable MAC for the token key ${keyId}.`);
    return answer.Mac;
  };
}

/**
 * The token key of the local cloud: the bytes of a key file in its data directory (written once, at
 * least 32 random bytes, mode 0600, by scripts/local-cloud/cloud.ts).
 */
export function fileTokenKey(path: string): TokenKeySource {
  return async () => {
    const key = await readFile(path);
    if (key.byteLength < MIN_TOKEN_KEY_BYTES)
      throw new VolsnapError(
        'internal',
        `The token key file ${path} holds fewer than ${MIN_TOKEN_KEY_BYTES} bytes.`,
      );
    return key;
  };
}

/** A deployment that configured no token key: the EBS reads refuse to answer, saying so. */
export const missingTokenKey: TokenKeySource = async () => {
  throw new VolsnapError(
    'internal',
    'The deployment is misconfigured: neither VOLSNAP_TOKEN_KEY_ID nor VOLSNAP_TOKEN_KEY_FILE is set.',
  );
};
