import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest } from '../../../../lib/core/format/manifest.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { RegionCheck } from '../../../../lib/core/maintenance/region-check.ts';
import { type ScrubReport, scrub } from '../../../../lib/core/maintenance/scrub.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import type { WorkMessage } from '../../../../lib/core/ports/queue.ts';
import type { Snapshot } from '../../../../lib/core/snapshots/snapshots.ts';
import { type MemoryRegion, memoryRegion } from '../../../support/memory-region.ts';
import { writeSnapshot } from '../../../support/writes.ts';

const HOUR = 3600 * 1000;
let region: MemoryRegion;
let operator: Caller;
let alice: Caller;

beforeEach(async () => {
  region = memoryRegion();
  operator = await region.account('ops', { operator: true });
  alice = await region.account('alice');
});

async function stored(caller: Caller, blocks: number): Promise<Snapshot> {
  const data = randomBytes(blocks * BLOCK_SIZE);
  const volume = await region.volumes.register(caller, { name: 'disk', sizeBytes: data.length });
  const pending = await region.snapshots.create(caller, { volumeId: volume.volumeId });
  return (await writeSnapshot(region, caller, pending, data, { segmentTargetSize: 2 * BLOCK_SIZE })).snapshot;
}

async function segmentsOf(snapshot: Snapshot): Promise<string[]> {
  const bytes = await region.ports.objects.get(ObjectLayout.manifest(snapshot.snapshotId));
  return [...decodeManifest(bytes as Uint8Array).segments.keys()];
}

function check(budgetMs?: number) {
  return new RegionCheck({
    identity: region.ports.identity,
    snapshots: region.ports.snapshots,
    objects: region.ports.objects,
    clock: region.clock,
    region: region.name,
    gcGraceMs: 24 * HOUR,
    ...(budgetMs !== undefined ? { budgetMs } : {}),
  });
}

async function runWorkers(): Promise<void> {
  const queue = region.ports.queue.messages;
  while (queue.length > 0) {
    const message = queue.shift() as WorkMessage;
    if (message.kind === 'verification.part')
      await region.verifications.runPart(message.verificationId, message.part);
  }
}

describe('admin check (the region check)', () => {
  it('finds a segment missing from a live manifest and an orphan older than the grace period; counts and bytes per account', async () => {
    const snapshot = await stored(alice, 6);
    const [gone] = await segmentsOf(snapshot);
    const goneKey = ObjectLayout.segment(alice.accountId, gone as string);
    await region.ports.objects.delete(goneKey);
    const orphanKey = ObjectLayout.segment(alice.accountId, 'seg-00000000000000orphan');
    await region.ports.objects.put(orphanKey, randomBytes(1000));
    region.clock.advance(25 * HOUR);
    const young = ObjectLayout.segment(alice.accountId, 'seg-0000000000000000young');
    await region.ports.objects.put(young, randomBytes(10));

    const page = await check().check(operator);
    expect(page.nextToken).toBeUndefined();
    const mine = page.accounts.find((a) => a.accountId === alice.accountId);
    expect(mine).toMatchObject({
      name: 'alice',
      snapshots: 1,
      // 3 segments written, 1 deleted, 1 orphan, 1 young one.
      segments: 4,
      missing: [{ snapshotId: snapshot.snapshotId, key: goneKey }],
      orphans: [{ key: orphanKey, size: 1000 }],
      manifestsMissing: [],
    });
    expect(mine?.bytes).toBeGreaterThan(1000);
    expect(page.problems).toBe(2);
    // With a grace period of 0 the young one counts too (once it is older than now).
    region.clock.advance(1000);
    expect((await check().check(operator, { graceMs: 0 })).problems).toBe(3);
  });

  it('reports nothing for a sound region, and only the operator may run it', async () => {
    await stored(alice, 4);
    region.clock.advance(25 * HOUR);
    expect((await check().check(operator)).problems).toBe(0);
    await expect(check().check(alice)).rejects.toMatchObject({ code: 'auth.forbidden' });
  });

  it('pages by account once its time budget is spent, and the pages cover every account once', async () => {
    const bob = await region.account('bob');
    await stored(alice, 2);
    await stored(bob, 2);
    // A budget of 0: every page stops after its first account.
    const seen: string[] = [];
    let token: string | undefined;
    let pagesRead = 0;
    do {
      const page = await check(0).check(operator, token ? { nextToken: token } : {});
      seen.push(...page.accounts.map((a) => a.accountId));
      token = page.nextToken;
      pagesRead++;
    } while (token);
    expect(pagesRead).toBe(3);
    expect(seen.sort()).toEqual([operator.accountId, alice.accountId, bob.accountId].sort());
    await expect(check().check(operator, { nextToken: 'junk' })).rejects.toMatchObject({
      code: 'request.invalid',
    });
  });
});

describe('the daily scrub', () => {
  it('verifies a bounded sample, never-verified and least recently verified first, and skips those being verified', async () => {
    const first = await stored(alice, 2);
    region.clock.advance(HOUR);
    const second = await stored(alice, 2);
    region.clock.advance(HOUR);
    const third = await stored(alice, 2);

    const run1 = (await scrub({
      snapshots: region.ports.snapshots,
      verifications: region.ports.verifications,
      service: region.verifications,
      limits: { count: 2 },
    })) as ScrubReport;
    expect(run1.started.map((s) => s.snapshotId)).toEqual([first.snapshotId, second.snapshotId]);
    // Not yet run by workers: being verified, so the next run takes only the third.
    const run2 = await region.jobs.run('schedule', 'scrub');
    expect((run2 as ScrubReport).started.map((s) => s.snapshotId)).toEqual([third.snapshotId]);
    await runWorkers();
    region.clock.advance(HOUR);
    // All verified now: the oldest check comes first again.
    const run3 = await scrub({
      snapshots: region.ports.snapshots,
      verifications: region.ports.verifications,
      service: region.verifications,
      limits: { count: 1 },
    });
    expect(run3.started.map((s) => s.snapshotId)).toEqual([first.snapshotId]);
  });

  it('stops at the byte budget (always taking one), and marks what it finds, reporting damaged snapshots', async () => {
    const damaged = await stored(alice, 4);
    // Completed later: never verified, the older completion is due first.
    region.clock.advance(1000);
    const sound = await stored(alice, 4);
    const [victim] = await segmentsOf(damaged);
    await region.ports.objects.delete(ObjectLayout.segment(alice.accountId, victim as string));
    const limits = { count: 10, bytes: 1 };
    const run1 = await scrub({
      snapshots: region.ports.snapshots,
      verifications: region.ports.verifications,
      service: region.verifications,
      limits,
    });
    expect(run1.started.map((s) => s.snapshotId)).toEqual([damaged.snapshotId]);
    await runWorkers();
    const marked = await region.snapshots.get(alice, damaged.snapshotId);
    expect(marked.integrity).toMatchObject({ state: 'damaged', badBlockCount: 2 });
    const audit = await region.ports.audit.list(alice.accountId, { limit: 10 });
    expect(audit.items.find((e) => e.action === 'snapshot.damaged')).toMatchObject({
      userName: 'volsnap-scrub',
      target: { snapshotId: damaged.snapshotId },
    });
    const run2 = await scrub({
      snapshots: region.ports.snapshots,
      verifications: region.ports.verifications,
      service: region.verifications,
      limits,
    });
    expect(run2.started.map((s) => s.snapshotId)).toEqual([sound.snapshotId]);
    expect(run2.damaged).toEqual([
      expect.objectContaining({ snapshotId: damaged.snapshotId, badBlockCount: 2 }),
    ]);
  });
});
