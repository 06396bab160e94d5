import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, blockHash } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest, type Manifest } from '../../../../lib/core/format/manifest.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { BlockEncoding } from '../../../../lib/core/ports/codec.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import type { WorkMessage } from '../../../../lib/core/ports/queue.ts';
import type { Snapshot } from '../../../../lib/core/snapshots/snapshots.ts';
import { partKey } from '../../../../lib/core/tasks/parts.ts';
import { snapshotView } from '../../../../lib/http/views.ts';
import { type MemoryRegion, memoryRegion } from '../../../support/memory-region.ts';
import { writeSnapshot } from '../../../support/writes.ts';

const BLOCKS = 12;
let region: MemoryRegion;
let alice: Caller;

beforeEach(async () => {
  // Two segments per part, so a snapshot of 3 segments is verified in 2 parts.
  region = memoryRegion('eu-west-1', { settings: { tuning: { verifications: { segmentsPerPart: 2 } } } });
  alice = await region.account('alice');
});

/** A completed snapshot of random (incompressible: stored raw) blocks, 4 blocks per segment. */
async function storedSnapshot(
  caller = alice,
): Promise<{ snapshot: Snapshot; data: Buffer; manifest: Manifest }> {
  const data = randomBytes(BLOCKS * BLOCK_SIZE);
  const volume = await region.volumes.register(caller, { name: 'disk', sizeBytes: data.length });
  const pending = await region.snapshots.create(caller, { volumeId: volume.volumeId });
  const { snapshot } = await writeSnapshot(region, caller, pending, data, {
    segmentTargetSize: 4 * BLOCK_SIZE,
  });
  const bytes = await region.ports.objects.get(ObjectLayout.manifest(snapshot.snapshotId));
  return { snapshot, data, manifest: decodeManifest(bytes as Uint8Array) };
}

/** Delivers every queued verification part, as the workers would, until none is left. */
async function runWorkers(): Promise<string[]> {
  const outcomes: string[] = [];
  const queue = region.ports.queue.messages;
  while (queue.length > 0) {
    const message = queue.shift() as WorkMessage;
    if (message.kind === 'verification.part')
      outcomes.push(await region.verifications.runPart(message.verificationId, message.part));
  }
  return outcomes;
}

describe('snapshot verification (the part runner re-reading a stored snapshot)', () => {
  it('reads every block of a sound snapshot in parts and marks it ok, with an audit entry', async () => {
    const { snapshot, manifest } = await storedSnapshot();
    expect(manifest.segments.size).toBe(3);
    const started = await region.verifications.start(alice, snapshot.snapshotId);
    expect(started).toMatchObject({ state: 'pending', parts: 2, progress: 0 });
    expect(await runWorkers()).toEqual(['part', 'completed']);
    const done = await region.verifications.get(alice, started.verificationId);
    expect(done.state).toBe('completed');
    expect(done.result).toEqual({
      segments: 3,
      blocks: BLOCKS,
      bytes: [...manifest.segments.values()].reduce((a, b) => a + b, 0),
      badBlockCount: 0,
      badBlocks: [],
    });
    const marked = await region.snapshots.get(alice, snapshot.snapshotId);
    expect(marked.integrity).toMatchObject({
      state: 'ok',
      verificationId: started.verificationId,
      badBlockCount: 0,
    });
    // The owner's API view shows it.
    expect(snapshotView(alice, marked).integrity?.state).toBe('ok');
    const audit = await region.ports.audit.list(alice.accountId, { limit: 10 });
    expect(audit.items.map((e) => e.action)).toContain('snapshot.verified');
    // Its part reports are gone.
    expect(await region.ports.objects.get(partKey(started.verificationId, 0))).toBeUndefined();
  });

  it('names the one corrupted block: index, offsets, segment key, expected and found digests', async () => {
    const { snapshot, manifest, data } = await storedSnapshot();
    const victim = manifest.entries.find((e) => e.blockIndex === 5);
    if (!victim) throw new Error('no block 5');
    expect(victim.encoding).toBe(BlockEncoding.raw);
    const key = ObjectLayout.segment(alice.accountId, victim.segmentId);
    const object = Buffer.from((await region.ports.objects.get(key)) as Uint8Array);
    object[victim.offset + 100] = (object[victim.offset + 100] ?? 0) ^ 0xff;
    region.ports.objects.objects.set(key, object);
    const flipped = Buffer.from(data.subarray(5 * BLOCK_SIZE, 6 * BLOCK_SIZE));
    flipped[100] = (flipped[100] ?? 0) ^ 0xff;

    const started = await region.verifications.start(alice, snapshot.snapshotId);
    await runWorkers();
    const done = await region.verifications.get(alice, started.verificationId);
    expect(done.result?.badBlockCount).toBe(1);
    expect(done.result?.badBlocks).toEqual([
      expect.objectContaining({
        blockIndex: 5,
        volumeOffset: 5 * BLOCK_SIZE,
        segmentId: victim.segmentId,
        segmentKey: key,
        offset: victim.offset,
        problem: 'digest',
        expected: victim.hash.toString('hex'),
        found: blockHash(flipped).toString('hex'),
      }),
    ]);
    const marked = await region.snapshots.get(alice, snapshot.snapshotId);
    expect(marked.integrity).toMatchObject({
      state: 'damaged',
      badBlockCount: 1,
      badBlocks: [{ blockIndex: 5, segmentId: victim.segmentId, problem: 'digest' }],
    });
    const audit = await region.ports.audit.list(alice.accountId, { limit: 10 });
    expect(audit.items.map((e) => e.action)).toContain('snapshot.damaged');
  });

  it('reports every block of a missing segment as "segment missing"', async () => {
    const { snapshot, manifest } = await storedSnapshot();
    const [segmentId] = [...manifest.segments.keys()];
    await region.ports.objects.delete(ObjectLayout.segment(alice.accountId, segmentId as string));
    const started = await region.verifications.start(alice, snapshot.snapshotId);
    await runWorkers();
    const done = await region.verifications.get(alice, started.verificationId);
    const inIt = manifest.entries.filter((e) => e.segmentId === segmentId).map((e) => e.blockIndex);
    expect(done.result?.badBlocks.map((b) => [b.blockIndex, b.problem, b.reason])).toEqual(
      inIt.map((index) => [index, 'missing', 'segment missing']),
    );
  });

  it('another account: its private snapshot answers 404, a shared one 403; only the owner sees the verification', async () => {
    const bob = await region.account('bob');
    const { snapshot } = await storedSnapshot();
    await expect(region.verifications.start(bob, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    await region.snapshots.share(alice, snapshot.snapshotId, bob.accountId);
    await expect(region.verifications.start(bob, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    const started = await region.verifications.start(alice, snapshot.snapshotId);
    await expect(region.verifications.get(bob, started.verificationId)).rejects.toMatchObject({
      code: 'verification.notFound',
    });
  });

  it('a lapsed lease is sent again by the reaper, then after bounded attempts fails with the reason', async () => {
    const { snapshot } = await storedSnapshot();
    const started = await region.verifications.start(alice, snapshot.snapshotId);
    region.ports.queue.messages.length = 0; // the workers died with the messages
    const reaped: string[][] = [];
    for (let round = 0; round < 6; round++) {
      region.clock.advance(4 * 60 * 1000);
      const report = (await region.jobs.run('schedule', 'reaper')) as {
        redispatched: string[];
        verificationsFailed: string[];
      };
      reaped.push(
        report.redispatched.includes(started.verificationId) ? ['again'] : report.verificationsFailed,
      );
      if (round === 0) expect(region.ports.queue.messages).toHaveLength(2);
      region.ports.queue.messages.length = 0;
    }
    expect(reaped.slice(0, 5)).toEqual([['again'], ['again'], ['again'], ['again'], ['again']]);
    expect(reaped[5]).toEqual([started.verificationId]);
    const failed = await region.verifications.get(alice, started.verificationId);
    expect(failed.state).toBe('error');
    expect(failed.stateReason).toMatch(/no progress/);
  });

  it('a redelivered part is not read again, and a stray part is skipped', async () => {
    const { snapshot } = await storedSnapshot();
    const started = await region.verifications.start(alice, snapshot.snapshotId);
    expect(await region.verifications.runPart(started.verificationId, 0)).toBe('part');
    expect(await region.verifications.runPart(started.verificationId, 0)).toBe('part');
    expect(await region.verifications.runPart(started.verificationId, 7)).toBe('skipped');
    expect(await region.verifications.runPart(started.verificationId, 1)).toBe('completed');
    expect(await region.verifications.runPart(started.verificationId, 1)).toBe('skipped');
  });
});
