import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ManualClock } from '../../../../lib/adapters/clock.ts';
import type { MemoryPolicyRepository } from '../../../../lib/adapters/memory/policies.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest } from '../../../../lib/core/format/manifest.ts';
import { readSegmentBlock } from '../../../../lib/core/format/segment.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import {
  type CreatePolicyInput,
  POLICY_TAG,
  type Policy,
  type PolicyRunReport,
  type PolicyService,
} from '../../../../lib/core/maintenance/policies.ts';
import type { PolicyRunner, PolicyRunSummary } from '../../../../lib/core/maintenance/policy-runner.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { isoTime } from '../../../../lib/core/shared/clock.ts';
import type { Snapshot } from '../../../../lib/core/snapshots/snapshots.ts';
import { lineageVolumeId } from '../../../../lib/core/tasks/snapshot-copy.ts';
import { policyRunner } from '../../../../lib/wiring/maintenance.ts';
import { type MemoryCloud, type MemoryRegion, memoryCloud } from '../../../support/memory-region.ts';
import { writeSnapshot } from '../../../support/writes.ts';

const zstd = createZstdCompressor();
const BLOCKS = 8;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const BUCKET = 'region-bucket';
const TARGET = { backup: 'daily' };

/** One region of the cloud, by the names the tests use: its own table (repositories), bucket, queue, services and workers. */
function regionParts(r: MemoryRegion) {
  return {
    name: r.name,
    volumeRepo: r.ports.volumes,
    snapshotRepo: r.ports.snapshots,
    objects: r.ports.objects,
    queue: r.ports.queue,
    service: r.snapshots,
    volumes: r.volumes,
    worker: r.imageSnapshotter,
    copier: r.copier,
  };
}
type Region = ReturnType<typeof regionParts>;

let clock: ManualClock;
let cloud: MemoryCloud;
let r1: Region;
let r2: Region;
let policies: MemoryPolicyRepository;
let policyService: PolicyService;
let runner: PolicyRunner;
let alice: Caller;
let bob: Caller;

/** A new runner of r1's policies (two of them race as two scheduled invocations would). */
function newRunner(): PolicyRunner {
  return policyRunner(cloud.region('r1').region);
}

beforeEach(async () => {
  cloud = memoryCloud(['r1', 'r2'], { bucket: BUCKET, settings: { tuning: { copies: { partBlocks: 4 } } } });
  clock = cloud.clock;
  r1 = regionParts(cloud.region('r1'));
  r2 = regionParts(cloud.region('r2'));
  policies = cloud.region('r1').ports.policies;
  policyService = cloud.region('r1').policies;
  runner = newRunner();
  alice = await cloud.region('r1').account('alice');
  bob = await cloud.region('r1').account('bob');
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
  // The CLI reads the parent's manifest through the URL the service issues for a completed snapshot.
  if (started.parentSnapshotId) await r1.service.manifestUrl(caller, started.parentSnapshotId);
  return (await writeSnapshot(cloud.region('r1'), caller, started, data)).snapshot;
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
  it('keep 3: five runs leave the 3 newest completed policy snapshots and the one written since; the oldest in the recycle bin', async () => {
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
    // The snapshot a run makes counts once it completes: the fifth run finds 4 completed.
    expect(deleted).toEqual([[], [], [], [], [created[0]]]);
    const all = await policySnapshots(r1, alice.accountId, policy.policyId);
    expect(notInBin(all)).toEqual(created.slice(1).reverse());
    expect(inBin(all)).toEqual([created[0]]);
    for (const s of all) {
      expect(s.volumeId).toBe(volume.volumeId);
      expect(s.tags).toEqual({ [POLICY_TAG]: policy.policyId });
      expect(s.name).toMatch(/^daily 2026-/);
      expect(s.state).toBe(created.indexOf(s.snapshotId) < 1 ? 'recycled' : 'completed');
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

  it('keep N counts only completed snapshots; a failed one goes once a newer one completed', async () => {
    const { key, data } = await imageVolume(alice);
    const policy = await policyService.create(alice, policyInput({ retention: { keep: 2 } }));
    const s0 = (await forcedRun(policy)).created[0] as string;
    await r1.objects.delete(key);
    const s1 = (await forcedRun(policy)).created[0] as string;
    expect((await r1.snapshotRepo.get(s1))?.state).toBe('error');
    await r1.objects.put(key, data);
    // While the third is written, the failure is the newest news: it stays, and s0 is the one good one.
    expect((await forcedRun(policy)).deleted).toEqual([]);
    // The third completed: the failure goes; s0 is the second of 2 completed.
    expect((await forcedRun(policy)).deleted).toEqual([s1]);
    expect(await r1.snapshotRepo.get(s1)).toBeUndefined();
    expect((await r1.snapshotRepo.get(s0))?.state).toBe('completed');
    expect((await forcedRun(policy)).deleted).toEqual([s0]);
    expect((await r1.snapshotRepo.get(s0))?.state).toBe('recycled');
  });

  it("keep-for: deletes the policy's snapshots older than the window once a newer one completed", async () => {
    const { key, data } = await imageVolume(alice);
    const policy = await policyService.create(alice, policyInput({ retention: { keepForMs: 90 * MINUTE } }));
    const s0 = (await forcedRun(policy)).created[0] as string;
    // The image is gone during the second run: that snapshot fails.
    await r1.objects.delete(key);
    const s1 = (await forcedRun(policy)).created[0] as string;
    expect((await r1.snapshotRepo.get(s1))?.state).toBe('error');
    await r1.objects.put(key, data);
    // s0 is past the window, but still the newest completed snapshot: it stays, and so does the failure.
    const third = await forcedRun(policy);
    expect(third.deleted).toEqual([]);
    expect((await r1.snapshotRepo.get(s1))?.state).toBe('error');
    const fourth = await forcedRun(policy);
    expect(fourth.deleted).toEqual([s1, s0]);
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
    const [plain, shared, published, held, newest] = [
      (await forcedRun(policy)).created[0],
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
    expect([...later.deleted].sort()).toEqual([held, shared, newest].sort());
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
    // Copies count once completed: the fourth run found 2 completed, and the third on its way.
    expect(notInBin(inR2)).toEqual([copies[2], copies[1], copies[0]]);
    expect(inBin(inR2)).toEqual([]);
    for (const [i, copy] of inR2.entries()) {
      expect(copy).toMatchObject({
        region: 'r2',
        volumeId: lineage,
        tags: { [POLICY_TAG]: policy.policyId },
        copiedFrom: { region: 'r1', snapshotId: created[2 - i] },
      });
    }
    expect(reports[3]?.deleted).toEqual([]);
    expect((await r2.service.get(alice, copies[2] as string)).state).toBe('completed');
    expect((await restoreIn(r2, alice.accountId, copies[2] as string)).equals(data)).toBe(true);
    // Home retention is its own: 3 kept in r1, and the one written since.
    expect(notInBin(await policySnapshots(r1, alice.accountId, policy.policyId))).toHaveLength(4);
    // The next run catches up the last snapshot; each region trims to its count.
    const fifth = await forcedRun(policy);
    await work(r2);
    expect(fifth.copied).toHaveLength(1);
    expect(fifth.deleted).toEqual([created[0], copies[0]]);
    const after = await policySnapshots(r2, alice.accountId, policy.policyId);
    expect(notInBin(after)).toEqual([fifth.copied[0], copies[2], copies[1]]);
    expect(inBin(after)).toEqual([copies[0]]);
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

/** What the host's agent and the region's workers do between two runs. */
type Between = 'complete' | 'fail' | 'absent';

/**
 * A volume the policy snapshots, and how its bytes get written: by `volsnap agent` on a host (the
 * snapshot is queued), or by a worker reading an image object (pending from the start).
 */
interface Target {
  volumeId: string;
  /** Writes (or fails, or leaves alone) what the run left for it; the outcomes. */
  between(what: Between): Promise<string[]>;
}

async function hostTarget(caller: Caller): Promise<Target> {
  const data = randomBytes(BLOCKS * BLOCK_SIZE);
  const volume = await r1.volumes.register(caller, { name: 'host', sizeBytes: data.length, tags: TARGET });
  return {
    volumeId: volume.volumeId,
    // One pass of `volsnap agent`: every queued snapshot, oldest first; one it cannot write is failed.
    between: async (what) => {
      if (what === 'absent') return [];
      const queued = await r1.snapshotRepo.list(
        caller.accountId,
        { volumeId: volume.volumeId, state: 'queued' },
        { limit: 100 },
      );
      const outcomes: string[] = [];
      for (const snapshot of queued.items.reverse()) {
        if (what === 'fail') {
          await r1.service.start(caller, snapshot.snapshotId);
          await r1.service.fail(caller, snapshot.snapshotId, '/dev/sdb: no such device');
          outcomes.push('failed');
          continue;
        }
        randomBytes(BLOCK_SIZE).copy(data, 0);
        try {
          outcomes.push((await agent(caller, snapshot.snapshotId, data)).state);
        } catch (error) {
          await r1.service.fail(caller, snapshot.snapshotId, (error as Error).message);
          outcomes.push(`failed: ${(error as Error).message}`);
        }
      }
      return outcomes;
    },
  };
}

async function imageTarget(caller: Caller): Promise<Target> {
  const { volume, key, data } = await imageVolume(caller, TARGET, 'image');
  return {
    volumeId: volume.volumeId,
    // The workers run (the image gone meanwhile for a failure), or their messages wait for later.
    between: async (what) => {
      if (what === 'absent') return [];
      if (what === 'fail') await r1.objects.delete(key);
      else randomBytes(BLOCK_SIZE).copy(data, 0);
      const outcomes = await work(r1);
      await r1.objects.put(key, data);
      return outcomes;
    },
  };
}

/** A volume's snapshots in r1 outside the recycle bin, newest first. */
async function live(caller: Caller, volumeId: string): Promise<Snapshot[]> {
  const { items } = await r1.snapshotRepo.list(caller.accountId, { volumeId }, { limit: 1000 });
  return items.filter((s) => s.state !== 'recycled' && s.state !== 'deleting');
}

/**
 * Runs the policy once per entry of `script`, each run followed by what the agent and workers do
 * then and an hour passing, and checks after each run that every snapshot being written still has
 * its parent, and after each cycle that every volume keeps a completed snapshot.
 */
async function cycles(policy: Policy, targets: Target[], script: Between[]): Promise<PolicyRunReport[]> {
  const reports: PolicyRunReport[] = [];
  for (const [i, what] of script.entries()) {
    const report = reportOf(await runner.run({ force: true }), policy);
    expect(report.errors, `run ${i}`).toEqual([]);
    reports.push(report);
    for (const target of targets) {
      const snapshots = await live(alice, target.volumeId);
      for (const child of snapshots.filter((s) => s.state === 'queued' || s.state === 'pending')) {
        if (!child.parentSnapshotId) continue;
        const parent = await r1.snapshotRepo.get(child.parentSnapshotId);
        expect(parent?.state, `run ${i}: the parent of ${child.snapshotId}`).toBe('completed');
      }
      const outcomes = await target.between(what);
      if (what === 'complete')
        expect(
          outcomes.every((o) => o === 'completed'),
          `run ${i}: ${outcomes}`,
        ).toBe(true);
      const after = await live(alice, target.volumeId);
      expect(
        after.filter((s) => s.state === 'completed').length,
        `after run ${i} and the agent, a completed snapshot of ${target.volumeId}`,
      ).toBeGreaterThan(0);
    }
    clock.advance(HOUR);
  }
  return reports;
}

const completedOf = async (volumeId: string) =>
  (await live(alice, volumeId)).filter((s) => s.state === 'completed');
const failedOf = async (volumeId: string) => (await live(alice, volumeId)).filter((s) => s.state === 'error');

describe('retention always leaves a good snapshot', () => {
  it('keep 1, agent completing every time: the parent of the queued snapshot stays until it completes', async () => {
    const host = await hostTarget(alice);
    const image = await imageTarget(alice);
    const policy = await policyService.create(alice, policyInput({ retention: { keep: 1 } }));
    const reports = await cycles(policy, [host, image], ['complete', 'complete', 'complete', 'complete']);
    // Each run recycles what the snapshot before the new one replaced: the newest completed one stays.
    expect(reports.map((r) => r.deleted.length)).toEqual([0, 0, 2, 2]);
    for (const target of [host, image]) {
      const completed = await completedOf(target.volumeId);
      // The one kept by the last run and the one written since (trimmed by the next run).
      expect(completed).toHaveLength(2);
      expect(completed[1]?.snapshotId).toBe(completed[0]?.parentSnapshotId);
    }
  });

  it('keep 1, the agent and workers failing every other time: a failed snapshot never costs the good one', async () => {
    const host = await hostTarget(alice);
    const image = await imageTarget(alice);
    const policy = await policyService.create(alice, policyInput({ retention: { keep: 1 } }));
    await cycles(policy, [host, image], ['complete', 'fail', 'complete', 'fail', 'fail', 'complete', 'fail']);
    for (const target of [host, image]) {
      const completed = await completedOf(target.volumeId);
      expect(completed).toHaveLength(1);
      // The newest failure stays, for its reason to be read; the older ones go.
      expect(await failedOf(target.volumeId)).toHaveLength(1);
    }
  });

  it('keep 2, the agent missing runs: snapshots queued against the same parent keep it', async () => {
    const host = await hostTarget(alice);
    const image = await imageTarget(alice);
    const policy = await policyService.create(alice, policyInput({ retention: { keep: 2 } }));
    await cycles(
      policy,
      [host, image],
      ['complete', 'complete', 'absent', 'absent', 'complete', 'fail', 'absent', 'complete'],
    );
    for (const target of [host, image]) {
      // The two newest completed ones kept by the last run, the failure newer than them, and the two
      // written since (against the same parent).
      const states = (await live(alice, target.volumeId)).map((s) => s.state);
      expect(states).toEqual(['completed', 'completed', 'error', 'completed', 'completed']);
    }
  });

  it('keep-for: the newest completed snapshot outlives the window while nothing newer completes', async () => {
    const host = await hostTarget(alice);
    const image = await imageTarget(alice);
    const policy = await policyService.create(alice, policyInput({ retention: { keepForMs: 90 * MINUTE } }));
    const first = (await cycles(policy, [host, image], ['complete'])).flatMap((r) => r.created);
    await cycles(policy, [host, image], ['absent', 'absent', 'fail', 'fail', 'fail']);
    // Five hours on, the first snapshots are far past 90 minutes, and still the newest good ones.
    const keptFirst = await Promise.all(first.map((id) => r1.snapshotRepo.get(id)));
    expect(keptFirst.map((s) => s?.state)).toEqual(['completed', 'completed']);
    for (const target of [host, image]) {
      expect(ids(await completedOf(target.volumeId))).toEqual(
        first.filter((id) => keptFirst.find((s) => s?.snapshotId === id)?.volumeId === target.volumeId),
      );
    }
    // Once newer ones complete, the old ones go when their time is up.
    const later = await cycles(policy, [host, image], ['complete', 'complete', 'complete']);
    expect(later.flatMap((r) => r.deleted)).toEqual(expect.arrayContaining(first));
    for (const target of [host, image]) {
      const completed = await completedOf(target.volumeId);
      expect(completed.every((s) => s.createdAt > isoTime(clock.now() - HOUR - 90 * MINUTE))).toBe(true);
      expect(await failedOf(target.volumeId)).toEqual([]);
    }
  });

  it("a policy's failed snapshots do not pile up: only the newest stays, until a newer one completes", async () => {
    const host = await hostTarget(alice);
    const image = await imageTarget(alice);
    for (const retention of [{ keep: 3 }, { keepForMs: 10 * HOUR }]) {
      const policy = await policyService.create(
        alice,
        policyInput({ name: `r${Object.keys(retention)}`, retention }),
      );
      await cycles(policy, [host, image], ['complete', 'fail', 'fail', 'fail', 'fail']);
      for (const target of [host, image]) {
        const mine = (await live(alice, target.volumeId)).filter(
          (s) => s.tags[POLICY_TAG] === policy.policyId,
        );
        // The newest failure the last run kept, the one that failed since, and the good one.
        expect(mine.map((s) => s.state)).toEqual(['error', 'error', 'completed']);
      }
      await cycles(policy, [host, image], ['complete', 'complete']);
      for (const target of [host, image]) {
        const mine = (await live(alice, target.volumeId)).filter(
          (s) => s.tags[POLICY_TAG] === policy.policyId,
        );
        expect(mine.map((s) => s.state)).toEqual(['completed', 'completed', 'completed']);
      }
      await policyService.delete(alice, policy.policyId);
    }
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
