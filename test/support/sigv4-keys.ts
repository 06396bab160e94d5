import type { cliFor } from './e2e-cli.ts';

/** A SigV4 access key pair issued through the CLI (`volsnap admin key create --sigv4 --json`). */
export interface SigV4Key {
  accessKeyId: string;
  secretAccessKey: string;
  /** The key's volsnap id (`key-…`), for `volsnap admin key revoke`. */
  keyId: string;
  /** The AWS config profile text the CLI printed. */
  profile: string;
}

/**
 * Issues a SigV4 key through the CLI, as an owner of `account` (an account name of the local
 * cloud's CLI config: `demo`, `demo-b`) in `region`, for `user` (the account's `owner` unless
 * given). Fails the test with the CLI's stderr when the command fails.
 *
 * With the AWS SDK: `new EBSClient({ region, endpoint: `${api}/ebs`, credentials: key })` (the
 * object has `accessKeyId` and `secretAccessKey`).
 */
export async function createSigV4Key(
  cli: ReturnType<typeof cliFor>,
  who: { account: string; region: string; user?: string; expiresIn?: string },
): Promise<SigV4Key> {
  const args = ['admin', 'key', 'create', '--sigv4'];
  if (who.user) args.push('--user', who.user);
  if (who.expiresIn) args.push('--expires-in', who.expiresIn);
  const issued = (await cli.json(who.account, who.region, ...args)) as SigV4Key;
  if (!/^AKIA[0-9A-Z]{16}$/.test(issued.accessKeyId) || issued.secretAccessKey?.length !== 40) {
    throw new Error(`volsnap admin key create --sigv4 answered no key pair: ${JSON.stringify(issued)}`);
  }
  return issued;
}

/**
 * A secret that differs from `secret` in its last character only, so a signature made with it is
 * well-formed and wrong. (Appending a fixed letter instead would return the secret unchanged
 * whenever it already ends in that letter: one key in 64.)
 */
export function wrongSecret(secret: string): string {
  return `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
}
