import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localResourceNames } from '../../infra/resources.ts';
import { createAwsClients, type StaticCredentials } from '../../lib/adapters/aws-clients.ts';
import { systemClock } from '../../lib/adapters/clock.ts';
import { DynamoIdentityRepository } from '../../lib/adapters/dynamodb/accounts.ts';
import type { CliConfigFile } from '../../lib/client/config.ts';
import type { RegionEntry } from '../../lib/config/regions.ts';
import { bootstrapAccount, keyAuthenticator } from '../../lib/core/identity/accounts.ts';
import {
  assertPortFree,
  checkJava,
  forkReady,
  freePort,
  LOCAL_CREDENTIALS as LOCAL_S3_CREDENTIALS,
  type ManagedProcess,
  startDynamoEmulator,
  startS3Emulator,
} from './processes.ts';
import { provisionRegion } from './provision.ts';
import { loadServerlessSpec } from './serverless-spec.ts';

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
  /** Called when a child dies on its own: the cloud is no longer whole. */
  onChildExit?: (name: string, code: number | null) => void;
}

export interface LocalRegion {
  name: string;
  api: string;
  s3: string;
  dynamodb: string;
  queueUrl: string;
  bucket: string;
  table: string;
}

export interface LocalCloud {
  regions: LocalRegion[];
  config: CliConfigFile;
  configPath: string;
  /** Routes, schedules and queues each region serves (from its own process). */
  surfaces: Record<string, { routes: string[]; schedules: string[]; queues: string[] }>;
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
  const ports = await choosePorts(regionNames, options.portBase ?? DEFAULT_PORT_BASE);
  if (options.fresh) await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  const children: ManagedProcess[] = [];
  let stopping = false;
  const stop = async () => {
    stopping = true;
    // Region processes first (they talk to the emulators), then the emulators.
    const [regions, emulators] = [
      children.filter((c) => c.name.startsWith('region')),
      children.filter((c) => !c.name.startsWith('region')),
    ];
    await Promise.all(regions.map((c) => c.stop()));
    await Promise.all(emulators.map((c) => c.stop()));
  };
  const watch = (name: string) => (code: number | null) => {
    if (!stopping) options.onChildExit?.(name, code);
  };
  try {
    const regions: LocalRegion[] = await Promise.all(
      regionNames.map(async (name, i) => {
        const p = ports[i] as Ports;
        const dir = join(dataDir, name);
        await mkdir(join(dir, 's3'), { recursive: true });
        await mkdir(join(dir, 'dynamodb'), { recursive: true });
        const [s3, dynamodb] = await Promise.all([
          startS3Emulator(join(dir, 's3'), p.s3, { regions: [name], onExit: watch(`s3 ${name}`) }),
          startDynamoEmulator(join(dir, 'dynamodb'), p.dynamodb, {
            regions: [name],
            onExit: watch(`dynamodb ${name}`),
          }),
        ]);
        children.push(s3, dynamodb);
        const names = localResourceNames(name);
        return {
          name,
          api: `http://127.0.0.1:${p.api}`,
          s3: `http://127.0.0.1:${s3.port}`,
          dynamodb: `http://127.0.0.1:${dynamodb.port}`,
          queueUrl: `http://127.0.0.1:${p.queue}/000000000000/${names.queue}`,
          bucket: names.bucket,
          table: names.table,
        };
      }),
    );
    const registry: Record<string, RegionEntry> = Object.fromEntries(
      regions.map((r) => [r.name, registryEntry(r)]),
    );
    await Promise.all(
      regions.map((r) =>
        provisionRegion(createAwsClients(registryEntry(r), LOCAL_CREDENTIALS), {
          table: r.table,
          bucket: r.bucket,
        }),
      ),
    );
    const configPath = join(dataDir, 'config.json');
    const accounts = await seedAccounts(regions[0] as LocalRegion, configPath);
    const specPath = options.specPath ?? join(ROOT, 'serverless.yml');
    await loadServerlessSpec(specPath); // fail here, with the parse error, rather than in every region
    const surfaces: LocalCloud['surfaces'] = {};
    await Promise.all(
      regions.map(async (r, i) => {
        const p = ports[i] as Ports;
        const child = await forkReady(
          `region ${r.name}`,
          fileURLToPath(new URL('./region-process.ts', import.meta.url)),
          [],
          {
            execArgv: ['--import', 'tsx'],
            env: regionEnvironment(
              regionNames[0] ?? r.name,
              r,
              registry,
              p,
              specPath,
              options.specRoot ?? ROOT,
              options.verbose ?? false,
              options.schedules ?? true,
            ),
            onExit: watch(`region ${r.name}`),
          },
        );
        children.push(child);
        surfaces[r.name] = child.message.surface as LocalCloud['surfaces'][string];
      }),
    );
    const config: CliConfigFile = {
      defaultRegion: regionNames[0] ?? 'eu-west-1',
      regions: Object.fromEntries(regions.map((r) => [r.name, { endpoint: r.api }])),
      defaultAccount: DEMO_ACCOUNTS[0] ?? 'demo',
      accounts,
    };
    await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    return { regions, config, configPath, surfaces, stop };
  } catch (error) {
    await stop();
    throw error;
  }
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
): NodeJS.ProcessEnv {
  const entry = registryEntry(r);
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_OPTIONS: [process.env.NODE_OPTIONS, '--enable-source-maps'].filter(Boolean).join(' '),
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
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
    // Imports may fetch from the regions' own S3 emulators (presigned export URLs), and nothing else local.
    VOLSNAP_IMPORT_ALLOW: Object.values(registry)
      .map((entry) => (entry.s3Endpoint ? new URL(entry.s3Endpoint).host : ''))
      .filter(Boolean)
      .join(','),
    VOLSNAP_LOCAL_SPEC: specPath,
    VOLSNAP_LOCAL_ROOT: specRoot,
    VOLSNAP_LOCAL_API_PORT: String(p.api),
    VOLSNAP_LOCAL_QUEUE_PORT: String(p.queue),
    VOLSNAP_LOCAL_QUEUES: JSON.stringify({ WorkQueue: localResourceNames(r.name).queue }),
    VOLSNAP_LOCAL_VERBOSE: verbose ? '1' : '0',
    VOLSNAP_LOCAL_SCHEDULES: schedules ? '1' : '0',
    // Tests only: deliveries to lose (see RegionRuntimeOptions.loseWorkFile).
    ...(process.env.VOLSNAP_LOCAL_LOSE_WORK_FILE
      ? { VOLSNAP_LOCAL_LOSE_WORK_FILE: process.env.VOLSNAP_LOCAL_LOSE_WORK_FILE }
      : {}),
  };
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
  const identity = new DynamoIdentityRepository(clients.documents, identityRegion.table);
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
