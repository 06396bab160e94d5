import registryFile from '../../infra/regions.json' with { type: 'json' };
import packageJson from '../../package.json' with { type: 'json' };
import { DEFAULT_QUOTA, type QuotaLimits } from '../core/identity/accounts.ts';
import { VolsnapError } from '../core/shared/errors.ts';
import { type RegionEntry, RegionRegistry } from './regions.ts';

/** What a handler needs to know about the deployment it runs in. */
export interface RuntimeConfig {
  /** The region this deployment serves. */
  region: RegionEntry;
  /** Every region, this one included. */
  registry: RegionRegistry;
  stage: string;
  version: string;
  /** Buckets besides the region's own that image-backed volumes may be read from (`VOLSNAP_IMAGE_BUCKETS`, comma-separated). */
  imageBuckets: string[];
  /**
   * The region whose table holds accounts, users and API keys (`VOLSNAP_IDENTITY_REGION`, default
   * this one): one place for identity, so a revoked key stops in every region at once.
   */
  identityRegion: string;
  /**
   * The identity table (`VOLSNAP_IDENTITY_TABLE`): the same name in every region, a replica of one
   * global table in each. Writes go to the identity region's replica; each request is authenticated
   * from this region's. Unset, identity lives in the identity region's own table (one region, or a
   * deployment from before identity was replicated): every region reads it there.
   */
  identityTable?: string;
  /**
   * `host:port` pairs imports may fetch although they resolve to private addresses
   * (`VOLSNAP_IMPORT_ALLOW`, comma-separated; the local cloud lists its S3 emulators).
   */
  importAllow: string[];
  /** Buckets besides the region's that exports may be written to (`VOLSNAP_EXPORT_BUCKETS`, comma-separated). */
  exportBuckets: string[];
  /** Default per-region limits of an account (`VOLSNAP_DEFAULT_MAX_SNAPSHOTS`, `VOLSNAP_DEFAULT_MAX_STORED_BYTES`). */
  defaultQuota: QuotaLimits;
  /** Garbage younger than this is not collected (`VOLSNAP_GC_GRACE_SECONDS`; default 24 h). */
  gcGraceMs?: number;
  /**
   * What seals SigV4 secret access keys: the KMS key `VOLSNAP_SEALING_KMS_KEY` (an alias ARN in the
   * identity region, the same for every region), or, in the local cloud, the key file
   * `VOLSNAP_SEALING_KEY_FILE`. Unset: SigV4 keys can be neither issued nor checked.
   */
  sealing?: { kmsKeyId: string } | { keyFile: string };
  /**
   * Where the EBS direct API's token key comes from: the stack's HMAC KMS key (`VOLSNAP_TOKEN_KEY_ID`,
   * on AWS) or a key file (`VOLSNAP_TOKEN_KEY_FILE`, the local cloud).
   */
  tokenKey?: { kmsKeyId?: string; file?: string };
}

/** The version of volsnap, from package.json. */
export const VERSION: string = packageJson.version;

type Env = Record<string, string | undefined>;

function required(env: Env, name: string): string {
  const value = env[name];
  if (!value) {
    throw new VolsnapError(
      'internal',
      `The deployment is misconfigured: environment variable ${name} is not set.`,
    );
  }
  return value;
}

/**
 * Reads the runtime configuration from the environment: the only place in lib/ and functions/
 * that does. Own region from `VOLSNAP_REGION`, `VOLSNAP_BUCKET`, `VOLSNAP_TABLE`, `VOLSNAP_QUEUE_URL`
 * (+ optional emulator endpoints); other regions from `VOLSNAP_REGIONS` (JSON), else the bundled
 * `infra/regions.json`.
 */
export function loadRuntimeConfig(env: Env): RuntimeConfig {
  const name = required(env, 'VOLSNAP_REGION');
  const own: RegionEntry = {
    name,
    bucket: required(env, 'VOLSNAP_BUCKET'),
    table: required(env, 'VOLSNAP_TABLE'),
    queueUrl: env.VOLSNAP_QUEUE_URL || undefined,
    s3Endpoint: env.VOLSNAP_S3_ENDPOINT || undefined,
    dynamodbEndpoint: env.VOLSNAP_DYNAMODB_ENDPOINT || undefined,
    sqsEndpoint: env.VOLSNAP_SQS_ENDPOINT || undefined,
    s3ForcePathStyle: env.VOLSNAP_S3_FORCE_PATH_STYLE === 'true' || undefined,
    api: env.VOLSNAP_API_URL || undefined,
  };
  const others = env.VOLSNAP_REGIONS
    ? RegionRegistry.parse(env.VOLSNAP_REGIONS, 'VOLSNAP_REGIONS')
    : RegionRegistry.parse(JSON.stringify(registryFile), 'infra/regions.json');
  // The environment describes this region; the registry may add what it alone knows (the API URL).
  const merged: RegionEntry = { ...(others.has(name) ? others.get(name) : {}), ...withoutUndefined(own) };
  const registry = new RegionRegistry([
    ...others
      .names()
      .filter((n) => n !== name)
      .map((n) => others.get(n)),
    merged,
  ]);
  const imageBuckets = (env.VOLSNAP_IMAGE_BUCKETS ?? '')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  const identityRegion = env.VOLSNAP_IDENTITY_REGION || name;
  registry.get(identityRegion); // an unknown identity region fails here, naming the known ones
  return {
    region: merged,
    registry,
    stage: env.VOLSNAP_STAGE ?? 'dev',
    version: VERSION,
    imageBuckets,
    identityRegion,
    ...(env.VOLSNAP_IDENTITY_TABLE ? { identityTable: env.VOLSNAP_IDENTITY_TABLE } : {}),
    exportBuckets: (env.VOLSNAP_EXPORT_BUCKETS ?? '')
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
    importAllow: (env.VOLSNAP_IMPORT_ALLOW ?? '')
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean),
    // VOLSNAP_DEFAULT_MAX_SNAPSHOTS, VOLSNAP_DEFAULT_REQUESTS_PER_SECOND, …: one per limit.
    defaultQuota: Object.fromEntries(
      Object.entries(DEFAULT_QUOTA).map(([name, value]) => [
        name,
        wholeNumber(env, `VOLSNAP_DEFAULT_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`) ?? value,
      ]),
    ) as unknown as QuotaLimits,
    ...(env.VOLSNAP_SEALING_KMS_KEY
      ? { sealing: { kmsKeyId: env.VOLSNAP_SEALING_KMS_KEY } }
      : env.VOLSNAP_SEALING_KEY_FILE
        ? { sealing: { keyFile: env.VOLSNAP_SEALING_KEY_FILE } }
        : {}),
    ...(env.VOLSNAP_TOKEN_KEY_ID || env.VOLSNAP_TOKEN_KEY_FILE
      ? {
          tokenKey: {
            ...(env.VOLSNAP_TOKEN_KEY_ID ? { kmsKeyId: env.VOLSNAP_TOKEN_KEY_ID } : {}),
            ...(env.VOLSNAP_TOKEN_KEY_FILE ? { file: env.VOLSNAP_TOKEN_KEY_FILE } : {}),
          },
        }
      : {}),
    ...(wholeNumber(env, 'VOLSNAP_GC_GRACE_SECONDS') !== undefined
      ? { gcGraceMs: (wholeNumber(env, 'VOLSNAP_GC_GRACE_SECONDS') ?? 0) * 1000 }
      : {}),
  };
}

function wholeNumber(env: Env, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new VolsnapError(
      'internal',
      `The deployment is misconfigured: ${name} must be a whole number ≥ 0.`,
    );
  }
  return value;
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
