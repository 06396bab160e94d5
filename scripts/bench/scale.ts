import { randomBytes } from 'node:crypto';
// `npm run bench -- --scale`: how maintenance and listing grow with the table. Starts DynamoDB Local
// (as the project's emulators do), and for 10,000 and then 100,000 snapshot rows over 1,000 accounts
// (seeded with BatchWriteItem, in the items the repositories write) times the reaper, expiry, GC and
// a listing of one account's snapshots, through the real DynamoDB adapters. The work that is due
// (a few queued, pending, lapsed, deleting, recycled snapshots and expired exports), the live
// manifests GC reads and the listed account's snapshots are the same at both sizes: what grows is
// everything else (failed snapshots), which none of them should read. Objects, the queue and identity
// are in memory: the question is the table. Writes bench/results-scale.json and bench/results-scale.md.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateTableCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import pLimit from 'p-limit';
import { createTableInput } from '../../infra/resources.ts';
import { createAwsClients } from '../../lib/adapters/aws-clients.ts';
import { ManualClock } from '../../lib/adapters/clock.ts';
import { batchWriteAll } from '../../lib/adapters/dynamodb/batch.ts';
import { DynamoExportRepository } from '../../lib/adapters/dynamodb/exports.ts';
import { ensureMaintenanceIndexed } from '../../lib/adapters/dynamodb/maintenance-index.ts';
import { createItems } from '../../lib/adapters/dynamodb/snapshot-writes.ts';
import { DynamoSnapshotRepository } from '../../lib/adapters/dynamodb/snapshots.ts';
import { DynamoVolumeRepository } from '../../lib/adapters/dynamodb/volumes.ts';
import { MemoryAuditLog, MemoryIdentityRepository } from '../../lib/adapters/memory/identity.ts';
import { MemoryImageRepository } from '../../lib/adapters/memory/images.ts';
import { MemoryInstanceRepository } from '../../lib/adapters/memory/instances.ts';
import { MemoryObjectStore } from '../../lib/adapters/memory/objects.ts';
import { MemoryPolicyRepository } from '../../lib/adapters/memory/policies.ts';
import { MemoryWorkQueue } from '../../lib/adapters/memory/queue.ts';
import { MemoryRequestCounter } from '../../lib/adapters/memory/request-counter.ts';
import { MemoryUploadSlots } from '../../lib/adapters/memory/uploads.ts';
import { MemoryVerificationRepository } from '../../lib/adapters/memory/verifications.ts';
import { LocalKeySealer } from '../../lib/adapters/secrets/aes-gcm.ts';
import { createZstdCompressor } from '../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../lib/core/format/blocks.ts';
import { encodeManifest } from '../../lib/core/format/manifest.ts';
import { Maintenance, pages } from '../../lib/core/maintenance/maintenance.ts';
import { ObjectLayout } from '../../lib/core/ports/objects.ts';
import { isoTime } from '../../lib/core/shared/clock.ts';
import { newId } from '../../lib/core/shared/ids.ts';
import type { Snapshot } from '../../lib/core/snapshots/snapshots.ts';
import type { Export } from '../../lib/core/tasks/exports.ts';
import { maintenanceOptions } from '../../lib/wiring/maintenance.ts';
import { Cloud, type RegionPorts } from '../../lib/wiring/region.ts';
import { LOCAL_CREDENTIALS } from '../local-cloud/cloud.ts';
import { checkJava, freePort, startDynamoEmulator } from '../local-cloud/processes.ts';

const REGION = 'eu-west-1';
const ACCOUNTS = 1000;
/** Completed snapshots with a manifest (GC reads each): the same at both sizes. */
const LIVE_MANIFESTS = 200;
/** The listed account's snapshots: the same at both sizes. */
const LISTED = 50;
/** Of each kind of due work per run (queued, pending, lapsed, deleting, recycled, expired exports). */
const DUE_EACH = 5;
const RUNS = 3;
/** VOLSNAP_BENCH_SCALE_SCAN=1: also time a scan of the whole table, what maintenance read before (minutes at 100,000 rows). */
const SCAN_TOO = process.env.VOLSNAP_BENCH_SCALE_SCAN === '1';
const NOW = Date.UTC(2026, 5, 1);
const HOUR = 3600_000;

export interface ScaleRow {
  name: string;
  /** Median seconds at each size, in the order of `sizes`. */
  seconds: number[];
  note: string;
}

export interface ScaleResult {
  sizes: number[];
  rows: ScaleRow[];
  seedSeconds: number[];
}

/** A row's parts: one table's repositories and the region's maintenance over them. */
interface Table {
  name: string;
  documents: ReturnType<typeof createAwsClients>['documents'];
  snapshots: DynamoSnapshotRepository;
  exports: DynamoExportRepository;
  maintenance: Maintenance;
  objects: MemoryObjectStore;
}

/** Runs the scale bench at each size (10,000 and 100,000 snapshot rows unless given). */
export async function scaleBench(sizes = [10_000, 100_000]): Promise<ScaleResult> {
  await checkJava();
  const dynamodb = await startDynamoEmulator(':memory:', await freePort(), { regions: [REGION] });
  const endpoint = `http://127.0.0.1:${dynamodb.port}`;
  const samples = new Map<string, number[][]>();
  const seedSeconds: number[] = [];
  try {
    // Every table seeded first, then the runs interleaved (a warm-up run, not recorded, then RUNS):
    // the emulator's warm-up and the machine's load fall on every size alike.
    const tables: Table[] = [];
    for (const size of sizes) {
      const table = await freshTable(endpoint, `scale-${size}`);
      const seeded = performance.now();
      await seed(table, size);
      seedSeconds.push((performance.now() - seeded) / 1000);
      console.log(`scale: ${size} snapshot rows seeded in ${seedSeconds.at(-1)?.toFixed(1)} s`);
      tables.push(table);
    }
    for (let run = -1; run < RUNS; run++) {
      for (const [i, table] of tables.entries()) {
        const measured = await measureRun(table, run);
        if (run < 0) continue;
        for (const [name, seconds] of measured) {
          const row = samples.get(name) ?? sizes.map(() => []);
          row[i]?.push(seconds);
          samples.set(name, row);
        }
        const line = [...measured].map(([name, s]) => `${name} ${(s * 1000).toFixed(0)} ms`).join(', ');
        console.log(`scale: run ${run + 1}, ${sizes[i]} rows: ${line}`);
      }
    }
  } finally {
    await dynamodb.stop();
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const rows = [...samples].map(([name, perSize]) => ({
    name,
    seconds: perSize.map(median),
    note: NOTES[name] ?? '',
  }));
  return { sizes, rows, seedSeconds };
}

const NOTES: Record<string, string> = {
  // (the last one only with VOLSNAP_BENCH_SCALE_SCAN=1)
  reaper: `${DUE_EACH} each: queued and pending past deadline, lapsed leases (re-sent), stuck deletions`,
  expiry: `${DUE_EACH} expired exports, ${DUE_EACH} recycled snapshots purged`,
  gc: `${LIVE_MANIFESTS} live manifests`,
  'list one account': `${LISTED} snapshots, one page`,
  'table scan (the old reaper read)': 'every row, as the reaper and expiry read before #20',
};

async function freshTable(endpoint: string, name: string): Promise<Table> {
  const clients = createAwsClients(
    { name: REGION, table: name, bucket: 'scale-unused', dynamodbEndpoint: endpoint },
    LOCAL_CREDENTIALS,
  );
  await clients.dynamodb.send(new CreateTableCommand(createTableInput(name)));
  await waitUntilTableExists({ client: clients.dynamodb, maxWaitTime: 60 }, { TableName: name });
  const clock = new ManualClock(NOW);
  const snapshots = new DynamoSnapshotRepository(clients.documents, name, () => Math.floor(NOW / 1000));
  const exports = new DynamoExportRepository(clients.documents, name);
  const objects = new MemoryObjectStore(() => clock.now() - 48 * HOUR);
  const ports: RegionPorts = {
    settings: { name: REGION, bucket: 'scale', imageBuckets: [], exportBuckets: [], knownRegions: [REGION] },
    clock,
    identity: new MemoryIdentityRepository(),
    audit: new MemoryAuditLog(),
    verifications: new MemoryVerificationRepository(),
    // Unused by maintenance: what the EBS direct API seals and signs with.
    secrets: new LocalKeySealer(randomBytes(32)),
    tokenKey: async () => randomBytes(32),
    requests: new MemoryRequestCounter(),
    volumes: new DynamoVolumeRepository(clients.documents, name),
    snapshots,
    exports,
    policies: new MemoryPolicyRepository(),
    instances: new MemoryInstanceRepository(),
    images: new MemoryImageRepository(),
    uploads: new MemoryUploadSlots(),
    objects,
    objectsIn: () => objects,
    queue: new MemoryWorkQueue(),
    compressor: createZstdCompressor(),
    openRemote: async () => {
      throw new Error('no imports in the scale bench');
    },
  };
  const region = new Cloud(() => ports).region(REGION);
  // A new table is marked indexed by its first listing (the upgrade pass over an empty table).
  await ensureMaintenanceIndexed(clients.documents, name);
  return {
    name,
    documents: clients.documents,
    snapshots,
    exports,
    maintenance: new Maintenance(maintenanceOptions(region)),
    objects,
  };
}

const accountOf = (i: number) => `acct-${String(i % ACCOUNTS).padStart(16, '0')}`;
const volumeOf = (i: number) => `vol-${String(i % ACCOUNTS).padStart(16, '0')}`;
const LISTED_ACCOUNT = 'acct-listed-0000000';

function row(i: number, fields: Partial<Snapshot>): Snapshot {
  return {
    snapshotId: newId('snapshot'),
    accountId: accountOf(i),
    volumeId: volumeOf(i),
    volumeSize: 64 * BLOCK_SIZE,
    blockSize: BLOCK_SIZE,
    name: `s${i}`,
    description: '',
    tags: {},
    state: 'error',
    stateReason: 'seeded',
    progress: 0,
    region: REGION,
    createdAt: isoTime(NOW - 30 * 24 * HOUR + i),
    deadline: isoTime(NOW - 29 * 24 * HOUR),
    ...fields,
  };
}

/** Puts snapshot items as the repository stores them (createItems' item), 16 batches at a time. */
async function putSnapshots(table: Table, snapshots: Snapshot[]): Promise<void> {
  const items = snapshots.map((s) => ({
    PutRequest: { Item: createItems(table.name, s, {}, undefined, undefined)[0]?.Put?.Item ?? {} },
  }));
  const limit = pLimit(16);
  const chunk = 500;
  await Promise.all(
    Array.from({ length: Math.ceil(items.length / chunk) }, (_, c) =>
      limit(() => batchWriteAll(table.documents, table.name, items.slice(c * chunk, (c + 1) * chunk))),
    ),
  );
}

/** The volumes (one per account), the live manifests, the listed account, then failed snapshots up to `size` rows. */
async function seed(table: Table, size: number): Promise<void> {
  const volumes = Array.from({ length: ACCOUNTS }, (_, i) => ({
    PutRequest: {
      Item: {
        pk: `VOLUME#${volumeOf(i)}`,
        sk: 'VOLUME',
        type: 'volume',
        volumeId: volumeOf(i),
        accountId: accountOf(i),
        snapshotCount: 1000,
      },
    },
  }));
  await batchWriteAll(table.documents, table.name, volumes);
  const live = Array.from({ length: LIVE_MANIFESTS }, (_, i) =>
    row(i, { state: 'completed', stateReason: undefined, progress: 100 }),
  );
  for (const s of live) {
    const segmentId = newId('segment');
    await table.objects.put(ObjectLayout.segment(s.accountId, segmentId), Buffer.alloc(64));
    const manifest = encodeManifest({
      volumeSize: s.volumeSize,
      blockSize: BLOCK_SIZE,
      segments: new Map([[segmentId, 64]]),
      entries: [
        { blockIndex: 0, hash: Buffer.alloc(32, 1), segmentId, offset: 0, storedLength: 64, encoding: 0 },
      ],
    });
    await table.objects.put(ObjectLayout.manifest(s.snapshotId), manifest);
  }
  const listed = Array.from({ length: LISTED }, (_, i) => row(i, { accountId: LISTED_ACCOUNT }));
  const rest = Array.from({ length: size - live.length - listed.length }, (_, i) => row(i, {}));
  await putSnapshots(table, [...live, ...listed, ...rest]);
}

/** Work that is due now: the reaper's and expiry's, made anew before each run. */
async function seedDue(table: Table): Promise<void> {
  const past = isoTime(NOW - HOUR);
  const due = Array.from({ length: DUE_EACH }, (_, i) => [
    row(i, { state: 'queued', deadline: past }),
    row(i, { state: 'pending', deadline: past }),
    row(i, {
      state: 'pending',
      deadline: isoTime(NOW + HOUR),
      leaseUntil: past,
      parts: 1,
      leaseParts: 0,
      dispatches: 0,
      copiedFrom: { region: REGION, snapshotId: newId('snapshot'), accountId: accountOf(i) },
    }),
    row(i, { state: 'deleting', deletedAt: isoTime(NOW - HOUR) }),
    row(i, { state: 'recycled', deletedAt: isoTime(NOW - 2 * HOUR), purgeAt: past, stateReason: undefined }),
  ]).flat();
  await putSnapshots(table, due);
  for (let i = 0; i < DUE_EACH; i++) {
    const record: Export = {
      exportId: newId('export'),
      accountId: accountOf(i),
      snapshotId: newId('snapshot'),
      format: 'vsnap',
      state: 'completed',
      progress: 100,
      region: REGION,
      key: `exports/scale-${i}.vsnap`,
      size: 0,
      parts: 1,
      partSize: 1,
      uploadId: 'none',
      createdAt: isoTime(NOW - 2 * HOUR),
      expiresAt: past,
    };
    await table.exports.create(record);
  }
}

/** Seconds of one call. */
async function timed(what: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await what();
  return (performance.now() - start) / 1000;
}

/** One run's seconds of each measure on one seeded table; checks the run did the due work. */
async function measureRun(table: Table, run: number): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  const add = (name: string, seconds: number) => result.set(name, seconds);
  await seedDue(table);
  let reaped = 0;
  add(
    'reaper',
    await timed(async () => {
      const report = await table.maintenance.reap();
      reaped =
        report.queuedExpired.length +
        report.snapshotsFailed.length +
        report.redispatched.length +
        report.deletionsFinished.length;
    }),
  );
  let expired = 0;
  add(
    'expiry',
    await timed(async () => {
      const report = await table.maintenance.expire();
      expired = report.exportsDeleted.length + report.snapshotsPurged.length;
    }),
  );
  if (reaped < 4 * DUE_EACH || expired < 2 * DUE_EACH)
    throw new Error(
      `scale bench: the reaper handled ${reaped} of ${4 * DUE_EACH}, expiry ${expired} of ${2 * DUE_EACH}`,
    );
  let live = 0;
  add(
    'gc',
    await timed(async () => {
      live = (await table.maintenance.gc({ graceMs: HOUR })).segmentsLive;
    }),
  );
  if (live !== LIVE_MANIFESTS)
    throw new Error(`scale bench: GC marked ${live} live segments, not ${LIVE_MANIFESTS}`);
  let listed = 0;
  add(
    'list one account',
    await timed(async () => {
      listed = (await table.snapshots.list(LISTED_ACCOUNT, {}, { limit: 100 })).items.length;
    }),
  );
  if (listed !== LISTED) throw new Error(`scale bench: listed ${listed} snapshots, not ${LISTED}`);
  if (run === 0 && SCAN_TOO) {
    let rows = 0;
    add(
      'table scan (the old reaper read)',
      await timed(async () => {
        for await (const _ of pages((page) => table.snapshots.listAll(page))) rows++;
      }),
    );
    console.log(`scale: ${table.name}: the old read scanned ${rows} snapshots`);
  }
  return result;
}

/** The results as a Markdown table: seconds at each size and the ratio of the largest to the smallest. */
export function scaleMarkdown(result: ScaleResult): string {
  const sizes = result.sizes.map((n) => n.toLocaleString('en-US'));
  const lines = [
    `| operation | ${sizes.map((s) => `${s} rows`).join(' | ')} | ratio ${sizes.at(-1)}/${sizes[0]} | what it handles |`,
    `|---|${sizes.map(() => '---:|').join('')}---:|---|`,
  ];
  for (const r of result.rows) {
    const ratio = (r.seconds.at(-1) ?? 0) / (r.seconds[0] || 1);
    lines.push(
      `| ${r.name} | ${r.seconds.map((s) => `${(s * 1000).toFixed(0)} ms`).join(' | ')} | ${ratio.toFixed(2)}× | ${r.note} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** `npm run bench -- --scale`: runs the bench, prints the table, writes bench/results-scale.{json,md}. */
export async function runScaleBench(root: string): Promise<void> {
  const started = performance.now();
  const result = await scaleBench();
  const markdown = scaleMarkdown(result);
  console.log(`\n${markdown}`);
  console.log(
    `scale bench: ${((performance.now() - started) / 1000).toFixed(0)} s (seeding ${result.seedSeconds.map((s) => `${s.toFixed(0)} s`).join(', ')})`,
  );
  const dir = join(root, 'bench');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'results-scale.json'), `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(join(dir, 'results-scale.md'), markdown);
}
