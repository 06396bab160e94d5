import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../lib/adapters/clock.ts';
import type { DynamoIdentityRepository } from '../../lib/adapters/dynamodb/accounts.ts';
import { keyFileSealer } from '../../lib/adapters/secrets/key-file.ts';
import { awsCredentialsText, awsProfileText } from '../../lib/client/aws-profile.ts';
import { callerOfKey } from '../../lib/core/identity/accounts.ts';
import { keyIdOfAccessKey, newSigV4KeyRecord } from '../../lib/core/identity/sigv4-keys.ts';

/** The demo SigV4 key and the AWS config and credentials files the local cloud writes beside its CLI config. */
export interface LocalAwsProfiles {
  /** `AWS_CONFIG_FILE`: a profile per region plus `volsnap-demo` (the first region), with `services` endpoints. */
  configPath: string;
  /** `AWS_SHARED_CREDENTIALS_FILE`: the same profiles' keys. */
  credentialsPath: string;
  /** The default profile's name. */
  profile: string;
  /** Every profile and its region: `volsnap-demo`, then `volsnap-demo-<region>` for each region. */
  profiles: Record<string, { name: string; api: string }>;
  accessKeyId: string;
  secretAccessKey: string;
  /** The demo account's id. */
  accountId: string;
}

export const DEMO_PROFILE = 'volsnap-demo';

/**
 * Issues (or, across restarts, keeps) a SigV4 key of the demo account's owner, sealed with the
 * cloud's key file, and writes the AWS config and credentials files with one profile per region.
 * A key kept from the last start is reused while it still authenticates (exists, live, unseals to
 * the same secret).
 */
export async function writeAwsProfiles(options: {
  dataDir: string;
  identity: DynamoIdentityRepository;
  sealingKeyFile: string;
  accountId: string;
  regions: { name: string; api: string }[];
}): Promise<LocalAwsProfiles> {
  const configPath = join(options.dataDir, 'aws-config');
  const credentialsPath = join(options.dataDir, 'aws-credentials');
  const sealer = keyFileSealer(options.sealingKeyFile);
  const kept = await keptKey(credentialsPath, options, sealer);
  let pair = kept;
  if (!pair) {
    const { record, issued } = await newSigV4KeyRecord(
      { accountId: options.accountId, userName: 'owner' },
      systemClock.now(),
      { description: 'local cloud demo profile' },
      sealer,
    );
    await options.identity.createApiKey(record);
    pair = { accessKeyId: issued.accessKeyId, secretAccessKey: issued.secretAccessKey };
  }
  const [first] = options.regions;
  if (!first) throw new Error('The local cloud needs at least one region.');
  const profiles: LocalAwsProfiles['profiles'] = { [DEMO_PROFILE]: first };
  for (const r of options.regions) profiles[`${DEMO_PROFILE}-${r.name}`] = r;
  const entries = Object.entries(profiles);
  await writeFile(
    configPath,
    entries
      .map(([profile, r]) => awsProfileText({ profile, region: r.name, api: r.api, ...pair }))
      .join('\n'),
    { mode: 0o600 },
  );
  await writeFile(
    credentialsPath,
    entries.map(([profile]) => awsCredentialsText({ profile, ...pair })).join('\n'),
    { mode: 0o600 },
  );
  return {
    configPath,
    credentialsPath,
    profile: DEMO_PROFILE,
    profiles,
    ...pair,
    accountId: options.accountId,
  };
}

async function keptKey(
  credentialsPath: string,
  options: { identity: DynamoIdentityRepository; accountId: string },
  sealer: ReturnType<typeof keyFileSealer>,
): Promise<{ accessKeyId: string; secretAccessKey: string } | undefined> {
  let text: string;
  try {
    text = await readFile(credentialsPath, 'utf8');
  } catch {
    return undefined;
  }
  const accessKeyId = /aws_access_key_id = (\S+)/.exec(text)?.[1];
  const secretAccessKey = /aws_secret_access_key = (\S+)/.exec(text)?.[1];
  const keyId = accessKeyId ? keyIdOfAccessKey(accessKeyId) : undefined;
  if (!accessKeyId || !secretAccessKey || !keyId) return undefined;
  const key = await options.identity.getApiKey(keyId);
  if (!key?.sealedSecret || key.accountId !== options.accountId) return undefined;
  if (!(await callerOfKey(options.identity, key, systemClock))) return undefined;
  try {
    return (await sealer.unseal(key.sealedSecret, keyId)) === secretAccessKey
      ? { accessKeyId, secretAccessKey }
      : undefined;
  } catch {
    return undefined; // sealed with a key file since replaced (--fresh removes both)
  }
}
