import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/adapters/clock.ts';
import { MemoryIdentityRepository } from '../../lib/adapters/memory/identity.ts';
import { MemoryObjectStore } from '../../lib/adapters/memory/objects.ts';
import { MemoryPolicyRepository } from '../../lib/adapters/memory/policies.ts';
import { MemoryWorkQueue } from '../../lib/adapters/memory/queue.ts';
import { MemorySnapshotRepository } from '../../lib/adapters/memory/snapshots.ts';
import { MemoryVolumeRepository } from '../../lib/adapters/memory/volumes.ts';
import { createZstdCompressor } from '../../lib/adapters/zstd.ts';
import { AccountService, bootstrapAccount } from '../../lib/core/accounts.ts';
import { BLOCK_SIZE } from '../../lib/core/blocks.ts';
import { isoTime } from '../../lib/core/clock.ts';
import { VolsnapError } from '../../lib/core/errors.ts';
import type { Caller } from '../../lib/core/identity.ts';
import { ImageSnapshotter } from '../../lib/core/image-snapshot.ts';
import { decodeManifest, encodeManifest } from '../../lib/core/manifest.ts';
import { ObjectLayout } from '../../lib/core/objects.ts';
import {
  type CreatePolicyInput,
  POLICY_TAG,
  type Policy,
  type PolicyRunReport,
  PolicyService,
} from '../../lib/core/policies.ts';
import { type PolicyRegion, PolicyRunner, type PolicyRunSummary } from '../../lib/core/policy-runner.ts';
import { readSegmentBlock } from '../../lib/core/segment.ts';
import { copySourceOf, lineageVolumeId, SnapshotCopier } from '../../lib/core/snapshot-copy.ts';
import { SnapshotService } from '../../lib/core/snapshot-service.ts';
import { SnapshotWriter } from '../../lib/core/snapshot-writer.ts';
import type { Snapshot } from '../../lib/core/snapshots.ts';
import { VolumeService } from '../../lib/core/volumes.ts';
import { testCaller } from '../support/callers.ts';

const zstd = createZstdCompressor();
const BLOCKS = 8;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const BUCKET = 'region-bucket';
const access = { regionBucket: BUCKET, extraBuckets: [] };
const TARGET = { backup: 'daily' };

/** One region: its own table (repositories), bucket, queue, services and workers. */
function region(name: string, clock: ManualClock, accounts: AccountService) {
  const volumeRepo = new MemoryVolumeRepository();
  const snapshotRepo = new MemorySnapshotRepository(volumeRepo);
  const objects = new MemoryObjectStore(() => clock.now());
  const queue = new MemoryWorkQueue();
  const service = new SnapshotService({
    compressor: createZstdCompressor(),
    snapshots: snapshotRepo,
    volumes: volumeRepo,
    objects,
    clock,
    region: name,
    queue,
    accounts,
  });
  const volumes = new VolumeService(volumeRepo, clock, name, access);
  const worker = new ImageSnapshotter({
    snapshots: snapshotRepo,
    volumes: volumeRepo,
    objects,
    objectsIn: () => objects,
    service,
    compressor: zstd,
    access,
    queue,
  });
  return { name, volumeRepo, snapshotRepo, objects, queue, service, volumes, worker };
}
type Region = ReturnType<typeof region> & { copier: SnapshotCopier };

let clock: ManualClock;
let accounts: AccountService;
let r1: Region;
let r2: Region;
let regions: Map<string, Region>;
let policies: MemoryPolicyRepository;
let policyService: PolicyService;
let runner: PolicyRunner;
let alice: Caller;
let bob: Caller;

function regionOf(name: string): PolicyRegion {
  const r = regions.get(name);
  if (!r) throw new VolsnapError('region.unknown', `Unknown region '${name}'.`);
  return { snapshots: r.snapshotRepo, service: r.service, copier: r.copier };
}

function newRunner(): PolicyRunner {
  return new PolicyRunner({ policies, volumes: r1.volumeRepo, clock, region: 'r1', regionOf });
}

beforeEach(async () => {
  clock = new ManualClock();
  const identity = new MemoryIdentityRepository();
  accounts = new AccountService({
    identity,
    clock,
    region: 'r1',
    usage: async () => ({ snapshots: 0, storedBytes: 0 }),
  });
  regions = new Map();
  for (const name of ['r1', 'r2']) {
    const r = region(name, clock, accounts);
    const copier = new SnapshotCopier({
      region: name,
      source: (from) => {
        const source = regions.get(from);
        if (!source) throw new VolsnapError('region.unknown', `Unknown region '${from}'.`);
        return copySourceOf(source.service, source.objects);
      },
      snapshots: r.snapshotRepo,
      volumes: r.volumeRepo,
      objects: r.objects,
      service: r.service,
      compressor: zstd,
      partBlocks: 4,
    });
    regions.set(name, { ...r, copier });
  }
  r1 = regions.get('r1') as Region;
  r2 = regions.get('r2') as Region;
  policies = new MemoryPolicyRepository();
  policyService = new PolicyService({ policies, clock, region: 'r1', knownRegions: ['r1', 'r2'] });
  runner = newRunner();
  const callerOf = async (name: string) =>
    testCaller({ accountId: (await bootstrapAccount(identity, clock, { name })).account.accountId });
  alice = await callerOf('alice');
  bob = await callerOf('bob');
});

function policyInput(overrides: Partial<CreatePolicyInput> = {}): CreatePolicyInput {
  return {
    name: 'daily',
    targetTags: TARGET,
    schedule: { everyMs: HOUR },
    retention: { keep: 3 },
    ...overrides,
  };
}

/** An image-backed volume in r1 (its bytes an image object in the region's bucket). */
async function imageVolume(caller: Caller, tags = TARGET, name = 'img') {
  const key = `${ObjectLayout.imagePrefix(caller.accountId)}${name}.img`;
  const data = randomBytes(BLOCKS * BLOCK_SIZE);
  await r1.objects.put(key, data);
  const volume = await r1.volumes.register(caller, {
    name,
    sizeBytes: data.length,
    tags,
    imageUri: `s3://${BUCKET}/${key}`,
  });
  return { volume, key, data };
}

/** Delivers a region's queued messages to its workers, as SQS would, until none is left. */
async function work(r: Region): Promise<string[]> {
  const outcomes: string[] = [];
  for (let rounds = 0; r.queue.messages.length > 0 && rounds < 100; rounds++) {
    const m = r.queue.messages.shift();
    if (m?.kind === 'snapshot.fromImage') outcomes.push(await r.worker.run(m.snapshotId));
    else if (m?.kind === 'snapshot.fromImagePart')
      outcomes.push(await r.worker.runPart(m.snapshotId, m.part));
    else if (m?.kind === 'snapshot.copyPart') outcomes.push(await r.copier.runPart(m.snapshotId, m.part));
  }
  return outcomes;
}

/** What `volsnap agent` does with a queued snapshot of a host volume: takes it, writes the blocks, completes. */
async function agent(caller: Caller, snapshotId: string, data: Buffer): Promise<Snapshot> {
  const started = await r1.service.start(caller, snapshotId);
  const parentBytes = started.parentSnapshotId
    ? await r1.objects.get(ObjectLayout.manifest(started.parentSnapshotId))
    : undefined;
  const writer = new SnapshotWriter({
    volumeSize: data.length,
    compressor: zstd,
    parent: parentBytes ? decodeManifest(parentBytes) : undefined,
    nextSegmentId: async () =>
      (await r1.service.uploadUrls(caller, snapshotId, 1)).segments[0]?.segmentId ?? '',
    store: (id, object) => r1.objects.put(ObjectLayout.segment(caller.accountId, id), object),
  });
  for (let i = 0; i * BLOCK_SIZE < data.length; i++)
    await writer.add(i, data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  await r1.objects.put(ObjectLayout.manifestUpload(snapshotId), encodeManifest(await writer.finish()));
  return r1.service.complete(caller, snapshotId);
}

async function restoreIn(r: Region, accountId: string, snapshotId: string): Promise<Buffer> {
  const manifest = decodeManifest(
    (await r.objects.get(ObjectLayout.manifest(snapshotId))) ?? new Uint8Array(),
  );
  const out = Buffer.alloc(manifest.volumeSize);
  for (const e of manifest.entries) {
    const stored = await r.objects.getRange(
      ObjectLayout.segment(accountId, e.segmentId),
      e.offset,
      e.offset + e.storedLength,
    );
    Buffer.from(readSegmentBlock(zstd, { ...e, plainLength: BLOCK_SIZE }, stored)).copy(
      out,
      e.blockIndex * BLOCK_SIZE,
    );
  }
  return out;
}

/** Every snapshot of the policy in a region, newest first, whatever its state. */
async function policySnapshots(r: Region, accountId: string, policyId: string): Promise<Snapshot[]> {
  return (await r.snapshotRepo.list(accountId, { tags: { [POLICY_TAG]: policyId } }, { limit: 1000 })).items;
}

const ids = (snapshots: Snapshot[]) => snapshots.map((s) => s.snapshotId);
const inBin = (snapshots: Snapshot[]) => ids(snapshots.filter((s) => s.state === 'recycled'));
const notInBin = (snapshots: Snapshot[]) => ids(snapshots.filter((s) => s.state !== 'recycled'));

/** The report of the one run of `policy` in a summary. */
function reportOf(summary: PolicyRunSummary, policy: Policy): PolicyRunReport {
  const runs = summary.runs.filter((r) => r.policyId === policy.policyId);
  expect(runs).toHaveLength(1);
  return (runs[0] as { report: PolicyRunReport }).report;
}

/** A forced run, its snapshots then written by the workers, and an hour passing. */
async function forcedRun(policy: Policy): Promise<PolicyRunReport> {
  const report = reportOf(await runner.run({ force: true }), policy);
  expect(report.errors).toEqual([]);
  await work(r1);
  clock.advance(HOUR);
  return report;
}

describe('policy runs', () => {
  it('keep 3: five runs leave the 3 newest policy snapshots, and the 2 oldest in the recycle bin', async () => {
    const { volume, data } = await imageVolume(alice);
    const untagged = await imageVolume(alice, { backup: 'never' }, 'other');
    const policy = await policyService.create(alice, policyInput({ retention: { keep: 3 } }));
    const created: string[] = [];
    const deleted: string[][] = [];
    for (let run = 0; run < 5; run++) {
      const report = await forcedRun(policy);
      expect(report.created).toHaveLength(1);
      created.push(...report.created);
      deleted.push(report.deleted);
    }
    expect(deleted).toEqual([[], [], [], [created[0]], [created[1]]]);
    const all = await policySnapshots(r1, alice.accountId, policy.policyId);
    expect(notInBin(all)).toEqual(created.slice(2).reverse());
    expect(inBin(all)).toEqual(created.slice(0, 2).reverse());
    for (const s of all) {
      expect(s.volumeId).toBe(volume.volumeId);
      expect(s.tags).toEqual({ [POLICY_TAG]: policy.policyId });
      expect(s.name).toMatch(/^daily 2026-/);
      expect(s.state).toBe(created.indexOf(s.snapshotId) < 2 ? 'recycled' : 'completed');
    }
    expect((await r1.service.get(alice, created[4] as string)).state).toBe('completed');
    expect((await restoreIn(r1, alice.accountId, created[4] as string)).equals(data)).toBe(true);
    // Only volumes carrying the target tags are snapshotted.
    expect(
      (await r1.snapshotRepo.list(alice.accountId, { volumeId: untagged.volume.volumeId }, { limit: 10 }))
        .items,
    ).toEqual([]);
    // The last run's report is kept on the policy.
    expect((await policies.get(policy.policyId))?.lastRun?.created).toEqual([created[4]]);
  });

  it('keep N counts only snapshots that did not fail; failed ones beyond it are deleted', async () => {
    const { key, data } = await imageVolume(alice);
    const policy = await policyService.create(alice, policyInput({ retention: { keep: 2 } }));
    const s0 = (await forcedRun(policy)).created[0] as string;
    await r1.objects.delete(key);
    const s1 = (await forcedRun(policy)).created[0] as string;
    expect((await r1.snapshotRepo.get(s1))?.state).toBe('error');
    await r1.objects.put(key, data);
    expect((await forcedRun(policy)).deleted).toEqual([]);
    expect((await forcedRun(policy)).deleted).toEqual([s1, s0]);
    expect(await r1.snapshotRepo.get(s1)).toBeUndefined();
    expect((await r1.snapshotRepo.get(s0))?.state).toBe('recycled');
  });

  it("keep-for: deletes the policy's snapshots older than the window; failed ones stay while inside it", async () => {
    const { key, data } = await imageVolume(alice);
    const policy = await policyService.create(alice, policyInput({ retention: { keepForMs: 90 * MINUTE } }));
    const s0 = (await forcedRun(policy)).created[0] as string;
    // The image is gone during the second run: that snapshot fails.
    await r1.objects.delete(key);
    const s1 = (await forcedRun(policy)).created[0] as string;
    expect((await r1.snapshotRepo.get(s1))?.state).toBe('error');
    await r1.objects.put(key, data);
    const third = await forcedRun(policy);
    expect(third.deleted).toEqual([s0]);
    expect((await r1.snapshotRepo.get(s1))?.state).toBe('error');
    const fourth = await forcedRun(policy);
    expect(fourth.deleted).toEqual([s1]);
    // Not completed, it skips the recycle bin.
    expect(await r1.snapshotRepo.get(s1)).toBeUndefined();
    const all = await policySnapshots(r1, alice.accountId, policy.policyId);
    expect(inBin(all)).toEqual([s0]);
    expect(notInBin(all)).toEqual([...fourth.created, ...third.created]);
    expect(all.filter((s) => s.state === 'completed')).toHaveLength(2);
  });

  it('retention leaves shared, public and held snapshots alone, and says so in `skipped`', async () => {
    await imageVolume(alice);
    const policy = await policyService.create(alice, policyInput({ retention: { keep: 10 } }));
    const [plain, shared, published, held] = [
      (await forcedRun(policy)).created[0],
      (await forcedRun(policy)).created[0],
      (await forcedRun(policy)).created[0],
      (await forcedRun(policy)).created[0],
    ] as string[];
    await r1.service.share(alice, shared as string, 'bob');
    await r1.service.publish(alice, published as string);
    await r1.service.hold(held as string, 'exp-someexport', isoTime(clock.now() + DAY));
    await policies.update(policy.policyId, { retention: { keep: 1 } });
    const report = await forcedRun(policy);
    expect(report.deleted).toEqual([plain]);
    expect(report.skipped).toEqual([
      `${held}: being copied or exported, so retention keeps it for now`,
      `${published}: shared, so retention keeps it`,
      `${shared}: shared, so retention keeps it`,
    ]);
    for (const id of [shared, published, held])
      expect((await r1.snapshotRepo.get(id as string))?.state).toBe('completed');
    // A lapsed hold keeps it no longer; unshared, it goes too.
    clock.advance(DAY);
    await r1.service.unshare(alice, shared as string, 'bob');
    const later = await forcedRun(policy);
    expect([...later.deleted].sort()).toEqual([held, shared, report.created[0]].sort());
    expect(later.skipped).toEqual([`${published}: shared, so retention keeps it`]);
    expect((await r1.service.get(bob, published as string)).state).toBe('completed');
  });

  it('queue snapshots of host volumes for the agent (deadline: the policy’s agent timeout), and start workers for image-backed ones', async () => {
    const host = await r1.volumes.register(alice, {
      name: 'host',
      sizeBytes: BLOCKS * BLOCK_SIZE,
      tags: TARGET,
    });
    const { volume: img } = await imageVolume(alice);
    const policy = await policyService.create(alice, policyInput({ agentTimeoutMs: 30 * MINUTE }));
    const report = reportOf(await runner.run({ force: true }), policy);
    expect(report.errors).toEqual([]);
    expect(report.created).toHaveLength(2);
    const made = await Promise.all(report.created.map((id) => r1.snapshotRepo.get(id)));
    const queued = made.find((s) => s?.volumeId === host.volumeId) as Snapshot;
    const pending = made.find((s) => s?.volumeId === img.volumeId) as Snapshot;
    expect(queued).toMatchObject({
      state: 'queued',
      deadline: isoTime(clock.now() + 30 * MINUTE),
      tags: { [POLICY_TAG]: policy.policyId },
    });
    expect(queued.leaseUntil).toBeUndefined();
    expect(pending).toMatchObject({ state: 'pending', tags: { [POLICY_TAG]: policy.policyId } });
    expect(pending.leaseUntil).toBeDefined();
    expect(r1.queue.messages).toEqual([{ kind: 'snapshot.fromImage', snapshotId: pending.snapshotId }]);
    // The agent on the host takes its snapshot and writes it.
    const data = randomBytes(BLOCKS * BLOCK_SIZE);
    expect((await agent(alice, queued.snapshotId, data)).state).toBe('completed');
    expect(await work(r1)).toEqual(['completed']);
    expect((await restoreIn(r1, alice.accountId, queued.snapshotId)).equals(data)).toBe(true);
  });

  it('copy rule: copies land in the other region, tagged with the policy, and its retention keeps its own count', async () => {
    const { volume, data } = await imageVolume(alice);
    const policy = await policyService.create(
      alice,
      policyInput({ retention: { keep: 3 }, copyRules: [{ region: 'r2', retention: { keep: 2 } }] }),
    );
    const reports: PolicyRunReport[] = [];
    for (let run = 0; run < 4; run++) {
      reports.push(await forcedRun(policy));
      await work(r2);
    }
    const created = reports.map((r) => r.created[0] as string);
    // A snapshot is copied by the run after the one that made it (it is written meanwhile).
    expect(reports.map((r) => r.copied.length)).toEqual([0, 1, 1, 1]);
    const copies = reports.flatMap((r) => r.copied);
    const lineage = lineageVolumeId(alice.accountId, 'r1', volume.volumeId);
    const inR2 = await policySnapshots(r2, alice.accountId, policy.policyId);
    expect(notInBin(inR2)).toEqual([copies[2], copies[1]]);
    expect(inBin(inR2)).toEqual([copies[0]]);
    for (const [i, copy] of inR2.entries()) {
      expect(copy).toMatchObject({
        region: 'r2',
        volumeId: lineage,
        tags: { [POLICY_TAG]: policy.policyId },
        copiedFrom: { region: 'r1', snapshotId: created[2 - i] },
      });
    }
    expect(reports[3]?.deleted).toEqual([created[0], copies[0]]);
    expect((await r2.service.get(alice, copies[2] as string)).state).toBe('completed');
    expect((await restoreIn(r2, alice.accountId, copies[2] as string)).equals(data)).toBe(true);
    // Home retention is its own: 3 kept in r1.
    expect(notInBin(await policySnapshots(r1, alice.accountId, policy.policyId))).toHaveLength(3);
    // The next run catches up the last snapshot, and r2 keeps 2.
    const fifth = await forcedRun(policy);
    await work(r2);
    expect(fifth.copied).toHaveLength(1);
    expect(notInBin(await policySnapshots(r2, alice.accountId, policy.policyId))).toEqual([
      fifth.copied[0],
      copies[2],
    ]);
  });

  it('report a step that failed (here an unknown copy region) and go on with the others', async () => {
    await imageVolume(alice);
    const policy = await policyService.create(alice, policyInput());
    await policies.update(policy.policyId, { copyRules: [{ region: 'r9', retention: { keep: 1 } }] });
    const report = reportOf(await runner.run({ force: true }), policy);
    expect(report.created).toHaveLength(1);
    expect(report.errors).toEqual([expect.stringMatching(/^copy of vol-\w+ to r9: Unknown region 'r9'/)]);
    expect((await policies.get(policy.policyId))?.lastRun?.errors).toEqual(report.errors);
  });
});

describe('scheduling runs', () => {
  it('runs a policy only when due, then not again until its next time', async () => {
    await imageVolume(alice);
    const policy = await policyService.create(alice, policyInput());
    expect(policy.nextRunAt).toBe(isoTime(clock.now() + HOUR));
    expect(await runner.run()).toEqual({ runs: [] });
    clock.advance(HOUR - 1);
    expect(await runner.run()).toEqual({ runs: [] });
    expect(await policySnapshots(r1, alice.accountId, policy.policyId)).toEqual([]);
    clock.advance(1);
    const due = await runner.run();
    expect(reportOf(due, policy).created).toHaveLength(1);
    const after = await policies.get(policy.policyId);
    expect(after).toMatchObject({ nextRunAt: isoTime(clock.now() + HOUR), lastRunAt: isoTime(clock.now()) });
    expect(await runner.run()).toEqual({ runs: [] });
    expect(await policySnapshots(r1, alice.accountId, policy.policyId)).toHaveLength(1);
  });

  it('runs one policy by id on demand, never a disabled one', async () => {
    await imageVolume(alice);
    const policy = await policyService.create(alice, policyInput());
    const other = await policyService.create(alice, policyInput({ name: 'other' }));
    const one = await runner.run({ policyId: policy.policyId });
    expect(one.runs.map((r) => r.policyId)).toEqual([policy.policyId]);
    await policyService.update(alice, other.policyId, { enabled: false });
    clock.advance(HOUR);
    expect((await runner.run({ force: true })).runs.map((r) => r.policyId)).toEqual([policy.policyId]);
    expect(await runner.run({ policyId: other.policyId })).toEqual({ runs: [] });
    expect(await policySnapshots(r1, alice.accountId, other.policyId)).toEqual([]);
  });

  it('two runners overlapping on the same due policy: only one runs it', async () => {
    const { volume } = await imageVolume(alice);
    const policy = await policyService.create(alice, policyInput());
    clock.advance(HOUR);
    const [a, b] = await Promise.all([newRunner().run(), newRunner().run()]);
    expect(a.runs.length + b.runs.length).toBe(1);
    const made = await r1.snapshotRepo.list(alice.accountId, { volumeId: volume.volumeId }, { limit: 10 });
    expect(made.items).toHaveLength(1);
    expect(r1.queue.messages).toHaveLength(1);
    expect((await policies.get(policy.policyId))?.nextRunAt).toBe(isoTime(clock.now() + HOUR));
  });
});
