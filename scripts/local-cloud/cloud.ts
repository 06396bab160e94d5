import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localResourceNames } from '../../infra/resources.ts';
import { createAwsClients, type StaticCredentials } from '../../lib/adapters/aws-clients.ts';
import { systemClock } from '../../lib/adapters/clock.ts';
import { DynamoIdentityRepository } from '../../lib/adapters/dynamodb/accounts.ts';
import { createKeyFile } from '../../lib/adapters/secrets/key-file.ts';
import type { CliConfigFile } from '../../lib/client/config.ts';
import type { RegionEntry } from '../../lib/config/regions.ts';
import { bootstrapAccount, keyAuthenticator } from '../../lib/core/identity/accounts.ts';
import { localRoleCredentials } from './aws-calls.ts';
import { type LocalAwsProfiles, writeAwsProfiles } from './aws-profiles.ts';
import { type Bundles, buildBundles, buildRegionProcess, holdBundles } from './bundles.ts';
import type { FaultSpec } from './faults.ts';
import { IdentityReplication } from './identity-replication.ts';
import {
  assertPortFree,
  checkJava,
  forkReady,
  freePort,
  LOCAL_CREDENTIALS as LOCAL_S3_CREDENTIALS,
  lambdaNodePath,
  type ManagedProcess,
  startDynamoEmulator,
  startS3Emulator,
} from './processes.ts';
import { provisionRegion } from './provision.ts';
import { loadServerlessSpec } from './serverless-spec.ts';
import { Supervisor } from './supervisor.ts';

export const DEFAULT_REGIONS = ['eu-west-1', 'us-east-1'];
export const DEFAULT_PORT_BASE = 4510;
/** What the emulators accept: the local S3 verifies every request's signature against these. */
export const LOCAL_CREDENTIALS: StaticCredentials = LOCAL_S3_CREDENTIALS;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Seeded accounts: two tenants (so sharing can be tried at once) and the service operator. */
const DEMO_ACCOUNTS = ['demo', 'demo-b'];
const OPERATOR_ACCOUNT = 'operator';

export interface LocalCloudOptions {
  dataDir: string;
  regions?: string[];
  /** First port; region i uses base+10i (API), +1 (S3), +2 (DynamoDB), +3 (queue). `auto`: any free ports. */
  portBase?: number | 'auto';
  fresh?: boolean;
  /** serverless.yml to serve (tests point it at fixtures), and the root its handler paths are relative to. */
  specPath?: string;
  specRoot?: string;
  verbose?: boolean;
  /** Run the scheduled functions on their rates (default); tests that drive them on demand turn it off. */
  schedules?: boolean;
  /**
   * A folder to record, in JSON lines, every call each region's functions make to S3, DynamoDB and
   * SQS (with the IAM action and resource ARN it needs on AWS), for the IAM check (./iam-check.ts).
   */
  recordCallsTo?: string | undefined;
  /** Where the supervisor says which child it restarted, and why (default: stderr). */
  log?: (line: string) => void;
  /** Faults the local S3 injects into the functions' and presigned requests (./faults.ts). */
  faults?: FaultSpec | undefined;
}

export interface LocalRegion {
  name: string;
  api: string;
  s3: string;
  dynamodb: string;
  queueUrl: string;
  bucket: string;
  table: string;
  /** This region's replica of the identity table (the first region's takes the writes). */
  identityTable: string;
}

export interface LocalCloud {
  regions: LocalRegion[];
  config: CliConfigFile;
  configPath: string;
  /** Routes, schedules and queues each region serves (from its own process). */
  surfaces: Record<string, { routes: string[]; schedules: string[]; queues: string[] }>;
  /** What the functions run: the bundles of serverless.yml, on this Node version (the regions' own). */
  functions: { node: string; bundles: Bundles };
  /** The pids of the children, kept current across restarts (JSON, see CloudState in ./supervisor.ts). */
  stateFile: string;
  /** The demo SigV4 key and the AWS config/credentials files (EBS direct APIs with the AWS tools). */
  aws: LocalAwsProfiles;
  stop(): Promise<void>;
}

interface Ports {
  api: number;
  s3: number;
  dynamodb: number;
  queue: number;
}

async function choosePorts(regions: string[], base: number | 'auto'): Promise<Ports[]> {
  if (base === 'auto') {
    return Promise.all(
      regions.map(async () => ({
        api: await freePort(),
        s3: await freePort(),
        dynamodb: await freePort(),
        queue: await freePort(),
      })),
    );
  }
  const ports = regions.map((_, i) => ({
    api: base + 10 * i,
    s3: base + 10 * i + 1,
    dynamodb: base + 10 * i + 2,
    queue: base + 10 * i + 3,
  }));
  for (const [i, p] of ports.entries()) {
    for (const [what, port] of Object.entries(p)) await assertPortFree(port, `${regions[i]} ${what}`);
  }
  return ports;
}

/**
 * Starts the local two-region cloud: per region an s3rver, a DynamoDB Local and a process running the
 * functions of serverless.yml; provisions each region from `infra/`, seeds the accounts, and
 * writes the CLI config. On failure everything already started is stopped again.
 */
export async function startLocalCloud(options: LocalCloudOptions): Promise<LocalCloud> {
  const dataDir = resolve(options.dataDir);
  const regionNames = options.regions ?? DEFAULT_REGIONS;
  await checkJava();
  const specPath = options.specPath ?? join(ROOT, 'serverless.yml');
  const nodeBinary = lambdaNodePath();
  // Built while the emulators start (cached by content, so usually a lookup).
  const building = Promise.all([
    buildBundles({ specPath, specRoot: options.specRoot ?? ROOT }),
    buildRegionProcess(),
  ]);
  building.catch(() => {}); // awaited below; a failure before that is not an unhandled rejection
  const ports = await choosePorts(regionNames, options.portBase ?? DEFAULT_PORT_BASE);
  if (options.fresh) await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  const stateFile = join(dataDir, 'cloud-state.json');
  const supervisor = new Supervisor({
    log: options.log ?? ((line) => console.error(line)),
    stateFile,
    describe: () => ({ regions: regionNames, faults: options.faults ?? null }),
  });
  let replication: IdentityReplication | undefined;
  let releaseBundles = () => {};
  const stop = async () => {
    releaseBundles();
    await replication?.stop();
    // Region processes first (they talk to the emulators), then the emulators.
    await supervisor.stop();
  };
  try {
    const regions: LocalRegion[] = await Promise.all(
      regionNames.map((name, i) =>
        startEmulators(name, ports[i] as Ports, join(dataDir, name), {
          roles: regionNames,
          recordCallsTo: options.recordCallsTo,
          supervisor,
          // Each region's S3 its own stream of faults, from the one seed.
          faults: options.faults && { ...options.faults, seed: options.faults.seed + i },
        }),
      ),
    );
    const registry: Record<string, RegionEntry> = Object.fromEntries(
      regions.map((r) => [r.name, registryEntry(r)]),
    );
    await Promise.all(
      regions.map((r) =>
        provisionRegion(createAwsClients(registryEntry(r), LOCAL_CREDENTIALS), {
          table: r.table,
          bucket: r.bucket,
          identityTable: r.identityTable,
        }),
      ),
    );
    if (options.recordCallsTo) await describeRecording(options.recordCallsTo, regionNames);
    const configPath = join(dataDir, 'config.json');
    const accounts = await seedAccounts(regions[0] as LocalRegion, configPath);
    // The deployment's sealing key (KMS's stand-in): SigV4 secrets are sealed with it; kept across restarts.
    const sealingKeyFile = join(dataDir, 'sealing.key');
    createKeyFile(sealingKeyFile);
    // The global table's stand-in: the seeded accounts reach every region before it serves.
    replication = identityReplication(regions, options.verbose ? console.log : undefined);
    await replication.start();
    await loadServerlessSpec(specPath); // fail here, with the parse error, rather than in every region
    const [bundles, regionProcess] = await building;
    releaseBundles = holdBundles([bundles.dir, dirname(regionProcess.file)]);
    const surfaces: LocalCloud['surfaces'] = {};
    const nodeVersions = new Set<string>();
    await Promise.all(
      regions.map(async (r, i) => {
        const p = ports[i] as Ports;
        const env = regionEnvironment(
          regionNames[0] ?? r.name,
          r,
          registry,
          p,
          specPath,
          options.specRoot ?? ROOT,
          options.verbose ?? false,
          options.schedules ?? true,
          bundles,
          options.recordCallsTo,
          sealingKeyFile,
        );
        env.VOLSNAP_TOKEN_KEY_FILE = await tokenKeyFile(join(dataDir, r.name));
        // The schedules go on across restarts of the process, as EventBridge's rules (./schedules.ts).
        env.VOLSNAP_LOCAL_SCHEDULE_RUNS = join(dataDir, r.name, 'schedule-runs.json');
        // A region process that dies is replaced, as Lambda replaces a container (./supervisor.ts).
        const child = (await supervisor.add(
          { name: `region ${r.name}`, kind: 'region', region: r.name },
          (onExit) =>
            forkReady(`region ${r.name}`, regionProcess.file, [], { execPath: nodeBinary, env, onExit }),
        )) as ManagedProcess & { message: Record<string, unknown> };
        surfaces[r.name] = child.message.surface as LocalCloud['surfaces'][string];
        nodeVersions.add(String(child.message.node));
      }),
    );
    const { config, aws } = await writeClientFiles(regions, accounts, configPath, sealingKeyFile);
    const functions = { node: [...nodeVersions].join(', '), bundles };
    return { regions, config, configPath, surfaces, functions, stateFile, aws, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The CLI config and, beside it, the AWS config and credentials files with the demo SigV4 key. */
async function writeClientFiles(
  regions: LocalRegion[],
  accounts: CliConfigFile['accounts'],
  configPath: string,
  sealingKeyFile: string,
): Promise<{ config: CliConfigFile; aws: LocalAwsProfiles }> {
  const demo = DEMO_ACCOUNTS[0] ?? 'demo';
  const config: CliConfigFile = {
    defaultRegion: regions[0]?.name ?? 'eu-west-1',
    regions: Object.fromEntries(regions.map((r) => [r.name, { endpoint: r.api }])),
    defaultAccount: demo,
    accounts,
  };
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  const home = regions[0] as LocalRegion;
  const aws = await writeAwsProfiles({
    dataDir: dirname(configPath),
    identity: new DynamoIdentityRepository(
      createAwsClients(registryEntry(home), LOCAL_CREDENTIALS).documents,
      home.identityTable,
    ),
    sealingKeyFile,
    accountId: accounts[demo]?.accountId ?? '',
    regions: regions.map((r) => ({ name: r.name, api: r.api })),
  });
  return { config, aws };
}

/**
 * The region's EBS token key (the secret its block and page tokens are signed with; on AWS derived
 * from a KMS HMAC key): 32 random bytes in a file of its data dir, made once and kept, so tokens
 * answered before a restart stay valid after it.
 */
async function tokenKeyFile(regionDir: string): Promise<string> {
  const path = join(regionDir, 'ebs-token.key');
  await mkdir(regionDir, { recursive: true });
  try {
    await writeFile(path, randomBytes(32), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return path;
}

/** A region's local S3 and DynamoDB Local, in its data dir, and the region they make. */
async function startEmulators(
  name: string,
  p: Ports,
  dir: string,
  options: {
    roles: string[];
    recordCallsTo: string | undefined;
    supervisor: Supervisor;
    faults: FaultSpec | undefined;
  },
): Promise<LocalRegion> {
  await mkdir(join(dir, 's3'), { recursive: true });
  await mkdir(join(dir, 'dynamodb'), { recursive: true });
  // Each region's endpoints accept every region's role: cross-region work signs as its own.
  const recording = { roles: options.roles, recordCallsTo: options.recordCallsTo };
  // Restarted on the same port and data dir when they die (./supervisor.ts).
  const [s3, dynamodb] = await Promise.all([
    options.supervisor.add({ name: `s3 ${name}`, kind: 's3', region: name }, (onExit) =>
      startS3Emulator(join(dir, 's3'), p.s3, {
        regions: [name],
        onExit,
        ...recording,
        ...(options.faults ? { faults: options.faults } : {}),
      }),
    ),
    options.supervisor.add({ name: `dynamodb ${name}`, kind: 'dynamodb', region: name }, (onExit) =>
      startDynamoEmulator(join(dir, 'dynamodb'), p.dynamodb, { regions: [name], onExit, ...recording }),
    ),
  ]);
  const names = localResourceNames(name);
  return {
    name,
    api: `http://127.0.0.1:${p.api}`,
    s3: `http://127.0.0.1:${s3.port}`,
    dynamodb: `http://127.0.0.1:${dynamodb.port}`,
    queueUrl: `http://127.0.0.1:${p.queue}/000000000000/${names.queue}`,
    bucket: names.bucket,
    table: names.table,
    identityTable: names.identityTable,
  };
}

/** Replicates the first region's identity table to the others' (see {@link IdentityReplication}). */
function identityReplication(regions: LocalRegion[], log?: (line: string) => void): IdentityReplication {
  const replicaOf = (r: LocalRegion) => ({
    region: r.name,
    documents: createAwsClients(registryEntry(r), LOCAL_CREDENTIALS).documents,
    table: r.identityTable,
  });
  const [home, ...others] = regions.map(replicaOf);
  if (!home) throw new Error('The local cloud needs at least one region.');
  return new IdentityReplication({ home, replicas: others, ...(log ? { log } : {}) });
}

function registryEntry(r: LocalRegion): RegionEntry {
  return {
    name: r.name,
    api: r.api,
    bucket: r.bucket,
    table: r.table,
    queueUrl: r.queueUrl,
    s3Endpoint: r.s3,
    dynamodbEndpoint: r.dynamodb,
    sqsEndpoint: new URL(r.queueUrl).origin,
    s3ForcePathStyle: true,
  };
}

/** The environment a Lambda function of region `r` would have, pointing at the emulators. */
function regionEnvironment(
  identityRegion: string,
  r: LocalRegion,
  registry: Record<string, RegionEntry>,
  p: Ports,
  specPath: string,
  specRoot: string,
  verbose: boolean,
  schedules: boolean,
  bundles: Bundles,
  recordCallsTo: string | undefined,
  sealingKeyFile: string,
): NodeJS.ProcessEnv {
  const entry = registryEntry(r);
  // The region's functions sign as its role (an execution role's credentials, on AWS).
  const role = localRoleCredentials(r.name);
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_OPTIONS: [process.env.NODE_OPTIONS, '--enable-source-maps'].filter(Boolean).join(' '),
    AWS_ACCESS_KEY_ID: role.accessKeyId,
    AWS_SECRET_ACCESS_KEY: role.secretAccessKey,
    AWS_REGION: r.name,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    VOLSNAP_STAGE: 'local',
    VOLSNAP_REGION: r.name,
    VOLSNAP_BUCKET: r.bucket,
    VOLSNAP_TABLE: r.table,
    VOLSNAP_QUEUE_URL: r.queueUrl,
    VOLSNAP_API_URL: r.api,
    VOLSNAP_S3_ENDPOINT: entry.s3Endpoint,
    VOLSNAP_DYNAMODB_ENDPOINT: entry.dynamodbEndpoint,
    VOLSNAP_SQS_ENDPOINT: entry.sqsEndpoint,
    VOLSNAP_S3_FORCE_PATH_STYLE: 'true',
    VOLSNAP_REGIONS: JSON.stringify(registry),
    VOLSNAP_IDENTITY_REGION: identityRegion,
    VOLSNAP_IDENTITY_TABLE: r.identityTable,
    VOLSNAP_SEALING_KEY_FILE: sealingKeyFile,
    // Imports may fetch from the regions' own S3 emulators (presigned export URLs), and nothing else local.
    VOLSNAP_IMPORT_ALLOW: Object.values(registry)
      .map((entry) => (entry.s3Endpoint ? new URL(entry.s3Endpoint).host : ''))
      .filter(Boolean)
      .join(','),
    VOLSNAP_LOCAL_SPEC: specPath,
    VOLSNAP_LOCAL_ROOT: specRoot,
    VOLSNAP_LOCAL_BUNDLES: JSON.stringify({ dir: bundles.dir, extension: bundles.extension }),
    VOLSNAP_LOCAL_API_PORT: String(p.api),
    VOLSNAP_LOCAL_QUEUE_PORT: String(p.queue),
    VOLSNAP_LOCAL_QUEUES: JSON.stringify({ WorkQueue: localResourceNames(r.name).queue }),
    VOLSNAP_LOCAL_VERBOSE: verbose ? '1' : '0',
    VOLSNAP_LOCAL_SCHEDULES: schedules ? '1' : '0',
    ...(recordCallsTo ? { VOLSNAP_LOCAL_RECORD_CALLS: recordCallsTo } : {}),
    // Tests only: deliveries to lose (see RegionRuntimeOptions.loseWorkFile).
    ...(process.env.VOLSNAP_LOCAL_LOSE_WORK_FILE
      ? { VOLSNAP_LOCAL_LOSE_WORK_FILE: process.env.VOLSNAP_LOCAL_LOSE_WORK_FILE }
      : {}),
  };
}

/**
 * What the IAM check needs to know of a cloud whose calls it reads: its regions (their resource
 * names follow from them, see localResourceNames) and the identity region, the first.
 */
export interface RecordedCloud {
  regions: string[];
  identityRegion: string;
}

async function describeRecording(dir: string, regions: string[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const cloud: RecordedCloud = { regions, identityRegion: regions[0] ?? '' };
  await writeFile(join(dir, `cloud-${process.pid}.json`), `${JSON.stringify(cloud)}\n`);
}

/**
 * The demo accounts and the operator account, in the identity region (the first): every region
 * reads identity from there. Kept across restarts: the keys in the existing CLI config are reused
 * while they still authenticate; otherwise the account's owner gets a new key.
 */
async function seedAccounts(
  identityRegion: LocalRegion,
  configPath: string,
): Promise<CliConfigFile['accounts']> {
  let previous: CliConfigFile | undefined;
  try {
    previous = JSON.parse(await readFile(configPath, 'utf8')) as CliConfigFile;
  } catch {
    previous = undefined;
  }
  const clients = createAwsClients(registryEntry(identityRegion), LOCAL_CREDENTIALS);
  const identity = new DynamoIdentityRepository(clients.documents, identityRegion.identityTable);
  const authenticate = keyAuthenticator(identity, systemClock);
  const accounts: CliConfigFile['accounts'] = {};
  for (const name of [...DEMO_ACCOUNTS, OPERATOR_ACCOUNT]) {
    const known = previous?.accounts?.[name];
    if (known && (await authenticate(`Bearer ${known.apiKey}`))?.accountId === known.accountId) {
      accounts[name] = known;
      continue;
    }
    const { account, key } = await bootstrapAccount(identity, systemClock, {
      name,
      operator: name === OPERATOR_ACCOUNT,
    });
    accounts[name] = { accountId: account.accountId, apiKey: key.token };
  }
  return accounts;
}
