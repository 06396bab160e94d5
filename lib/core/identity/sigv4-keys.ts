import { randomBytes } from 'node:crypto';
import type { SecretSealer } from '../ports/secrets.ts';
import { isoTime } from '../shared/clock.ts';
import { newId } from '../shared/ids.ts';
import type { ApiKeyRecord, IssuedSigV4Key, User } from './records.ts';

/**
 * SigV4 access keys, for the AWS-protocol APIs (the EBS direct APIs, EC2 DescribeSnapshots). The
 * access key id is the key id in AWS's shape: `key-0k3v9x2m4q7r8t1w` is `AKIA0K3V9X2M4Q7R8T1W`
 * (20 characters, `[A-Z0-9]`), so a request's credential names its key record without an index.
 * The secret access key is 40 base64 characters (240 random bits), as AWS's are.
 */
const ACCESS_KEY_ID = /^AKIA([0-9A-Z]{16})$/;

/** The access key id of a key id. */
export function accessKeyIdOf(keyId: string): string {
  return `AKIA${keyId.slice('key-'.length).toUpperCase()}`;
}

/** The key id an access key id names, or `undefined` when it is not one of ours. */
export function keyIdOfAccessKey(accessKeyId: string): string | undefined {
  const match = ACCESS_KEY_ID.exec(accessKeyId);
  return match?.[1] ? `key-${match[1].toLowerCase()}` : undefined;
}

/**
 * A new SigV4 key of a user: the record to store (the secret sealed for its key id) and what to
 * show once. Seals through `sealer` (one KMS call at most); nothing is stored here.
 */
export async function newSigV4KeyRecord(
  user: Pick<User, 'accountId' | 'userName'>,
  nowMs: number,
  input: { expiresInSeconds?: number; description?: string },
  sealer: SecretSealer,
): Promise<{ record: ApiKeyRecord; issued: IssuedSigV4Key }> {
  const keyId = newId('key');
  const accessKeyId = accessKeyIdOf(keyId);
  const secretAccessKey = randomBytes(30).toString('base64');
  const record: ApiKeyRecord = {
    keyId,
    accountId: user.accountId,
    userName: user.userName,
    kind: 'sigv4',
    accessKeyId,
    sealedSecret: await sealer.seal(secretAccessKey, keyId),
    createdAt: isoTime(nowMs),
    ...(input.description ? { description: input.description } : {}),
    ...(input.expiresInSeconds ? { expiresAt: isoTime(nowMs + input.expiresInSeconds * 1000) } : {}),
  };
  const { sealedSecret: _sealed, ...info } = record;
  return { record, issued: { ...info, kind: 'sigv4', accessKeyId, secretAccessKey } };
}
