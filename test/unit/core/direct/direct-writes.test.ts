import { createHash, randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { DirectPacker } from '../../../../lib/core/direct/packing.ts';
import { BLOCKS_PER_PART, type DirectWrites } from '../../../../lib/core/direct/writes.ts';
import { BLOCK_SIZE, blockHash } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest, type Manifest } from '../../../../lib/core/format/manifest.ts';
import { openSegment, SEGMENT_TARGET_SIZE } from '../../../../lib/core/format/segment.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import type { Snapshot } from '../../../../lib/core/snapshots/snapshots.ts';
import { directPacker, directWrites } from '../../../../lib/wiring/direct.ts';
import { type MemoryRegion, memoryRegion } from '../../../support/memory-region.ts';

const GiB = 1024 ** 3;
let region: MemoryRegion;
let writes: DirectWrites;
let packer: DirectPacker;
let alice: Caller;

beforeEach(async () => {
  region = memoryRegion();
  writes = region.region.get(directWrites);
  packer = region.region.get(directPacker);
  alice = await region.account('alice');
});

/** A block of random bytes (incompressible) or of one repeated byte (compressible). */
function block(fill?: number): Buffer {
  return fill === undefined ? randomBytes(BLOCK_SIZE) : Buffer.alloc(BLOCK_SIZE, fill);
}

const sha = (data: Uint8Array) => blockHash(data).toString('base64');

function put(caller: Caller, snapshotId: string, index: number, data: Buffer) {
  return writes.putBlock(caller, snapshotId, index, data, {
    dataLength: data.length,
    checksum: sha(data),
    checksumAlgorithm: 'SHA256',
  });
}

/** The LINEAR aggregate: SHA-256 over the raw digests of the blocks written, by ascending index. */
function linear(blocks: Map<number, Buffer>): string {
  const aggregate = createHash('sha256');
  for (const index of [...blocks.keys()].sort((a, b) => a - b))
    aggregate.update(blockHash(blocks.get(index) as Buffer));
  return aggregate.digest('base64');
}

/** Delivers every queued message of the packing worker, as the work queue would. */
async function drain(): Promise<string[]> {
  const outcomes: string[] = [];
  const queue = region.ports.queue.messages;
  while (queue.length > 0) {
    const message = queue.shift();
    if (message?.kind === 'snapshot.directPart')
      outcomes.push(await packer.runPart(message.snapshotId, message.part));
  }
  return outcomes;
}

async function stagedKeys(snapshotId: string): Promise<string[]> {
  const keys: string[] = [];
  for (const prefix of [ObjectLayout.stagedBlockPrefix(snapshotId), `uploads/digests/${snapshotId}/`])
    for await (const object of region.ports.objects.list(prefix)) keys.push(object.key);
  return keys;
}

async function manifestOf(snapshotId: string): Promise<Manifest> {
  return decodeManifest((await region.ports.objects.get(ObjectLayout.manifest(snapshotId))) as Uint8Array);
}

/** Every non-zero block of a completed snapshot, read back from its segments (each checked against its SHA-256). */
async function restore(snapshot: Snapshot): Promise<Map<number, Buffer>> {
  const manifest = await manifestOf(snapshot.snapshotId);
  const out = new Map<number, Buffer>();
  for (const entry of manifest.entries) {
    const object = await region.ports.objects.get(ObjectLayout.segment(snapshot.accountId, entry.segmentId));
    const segment = openSegment(object as Uint8Array, region.ports.compressor);
    const indexed = segment.entries.find((e) => e.offset === entry.offset) ?? segment.entries[0];
    out.set(entry.blockIndex, Buffer.from(segment.read(indexed as (typeof segment.entries)[number])));
  }
  return out;
}

async function startAndWrite(blocks: Map<number, Buffer>, extra: { parentSnapshotId?: string } = {}) {
  const snapshot = await writes.start(alice, { volumeSizeGiB: 1, ...extra });
  await Promise.all([...blocks].map(([index, data]) => put(alice, snapshot.snapshotId, index, data)));
  return snapshot;
}

describe('StartSnapshot', () => {
  it('makes an ordinary pending snapshot of a volume of its own, of VolumeSize GiB, due in Timeout minutes', async () => {
    const snapshot = await writes.start(alice, {
      volumeSizeGiB: 2,
      description: 'disk image',
      tags: { team: 'storage' },
      timeoutMinutes: 15,
    });
    expect(snapshot).toMatchObject({
      state: 'pending',
      accountId: alice.accountId,
      volumeSize: 2 * GiB,
      blockSize: BLOCK_SIZE,
      description: 'disk image',
      tags: { team: 'storage' },
      direct: { timeoutMinutes: 15 },
      deadline: new Date(region.clock.now() + 15 * 60_000).toISOString(),
    });
    expect(snapshot.parentSnapshotId).toBeUndefined();
    const volume = await region.volumes.get(alice, snapshot.volumeId);
    expect(volume.sizeBytes).toBe(2 * GiB);
    expect((await region.snapshots.list(alice, {}, { limit: 10 })).items.map((s) => s.snapshotId)).toEqual([
      snapshot.snapshotId,
    ]);
  });

  it('answers the same snapshot (and volume) for the same ClientToken, and a conflict for other parameters', async () => {
    const first = await writes.start(alice, { volumeSizeGiB: 1, clientToken: 'token-1' });
    const again = await writes.start(alice, { volumeSizeGiB: 1, clientToken: 'token-1' });
    expect(again.snapshotId).toBe(first.snapshotId);
    expect((await region.volumes.list(alice, {}, { limit: 10 })).items).toHaveLength(1);
    await expect(
      writes.start(alice, { volumeSizeGiB: 1, clientToken: 'token-1', timeoutMinutes: 30 }),
    ).rejects.toMatchObject({
      code: 'idempotency.conflict',
    });
    await expect(
      writes.start(alice, { volumeSizeGiB: 1, clientToken: 'token-1', description: 'other' }),
    ).rejects.toMatchObject({
      code: 'idempotency.conflict',
    });
  });

  it('refuses a Timeout outside 10–4320 minutes, a size outside 1–65536 GiB, and KMS encryption', async () => {
    for (const timeoutMinutes of [9, 4321])
      await expect(writes.start(alice, { volumeSizeGiB: 1, timeoutMinutes })).rejects.toMatchObject({
        code: 'request.invalid',
      });
    for (const volumeSizeGiB of [0, 65537, 1.5])
      await expect(writes.start(alice, { volumeSizeGiB })).rejects.toMatchObject({
        code: 'request.invalid',
        details: { reason: 'INVALID_VOLUME_SIZE' },
      });
    await expect(writes.start(alice, { volumeSizeGiB: 1, encrypted: true })).rejects.toMatchObject({
      code: 'request.invalid',
    });
    expect((await region.volumes.list(alice, {}, { limit: 10 })).items).toHaveLength(0);
  });

  it("refuses a parent that is another account's, pending, or of another size, as not found or invalid", async () => {
    const bob = await region.account('bob');
    const bobs = await startAndWrite(new Map());
    await writes.complete(alice, bobs.snapshotId, { changedBlocksCount: 0 });
    await drain();
    await expect(
      writes.start(bob, { volumeSizeGiB: 1, parentSnapshotId: bobs.snapshotId }),
    ).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    const pending = await writes.start(alice, { volumeSizeGiB: 1 });
    await expect(
      writes.start(alice, { volumeSizeGiB: 1, parentSnapshotId: pending.snapshotId }),
    ).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    await expect(
      writes.start(alice, { volumeSizeGiB: 2, parentSnapshotId: bobs.snapshotId }),
    ).rejects.toMatchObject({
      code: 'request.invalid',
      details: { reason: 'INVALID_VOLUME_SIZE' },
    });
  });
});

describe('PutSnapshotBlock and CompleteSnapshot', () => {
  it('packs the staged blocks in index order into segments of up to 16 MiB, zero blocks absent, each block once, then completes', async () => {
    const blocks = new Map<number, Buffer>();
    // 40 incompressible blocks (20 MiB: two segments), a repeated one, a compressible one, a zero one.
    for (let i = 0; i < 40; i++) blocks.set(i * 3, block());
    blocks.set(200, blocks.get(0) as Buffer);
    blocks.set(201, block(7));
    blocks.set(202, Buffer.alloc(BLOCK_SIZE));
    const snapshot = await startAndWrite(blocks);
    // A block PUT again replaces the first one.
    blocks.set(3, block());
    await put(alice, snapshot.snapshotId, 3, blocks.get(3) as Buffer);

    expect(
      await writes.complete(alice, snapshot.snapshotId, {
        changedBlocksCount: blocks.size,
        checksum: linear(blocks),
        checksumAlgorithm: 'SHA256',
        aggregationMethod: 'LINEAR',
      }),
    ).toBe('pending');
    expect(await drain()).toEqual(['completed']);

    const done = await region.snapshots.get(alice, snapshot.snapshotId);
    expect(done.state).toBe('completed');
    const manifest = await manifestOf(snapshot.snapshotId);
    expect(manifest.entries.map((e) => e.blockIndex)).toEqual(
      [...blocks.keys()].filter((i) => i !== 202).sort((a, b) => a - b),
    );
    // Stored blocks fill a segment up to 16 MiB; its index and footer follow.
    for (const segmentId of manifest.segments.keys()) {
      const object = await region.ports.objects.get(ObjectLayout.segment(alice.accountId, segmentId));
      const segment = openSegment(object as Uint8Array, region.ports.compressor);
      expect(segment.footer.indexOffset).toBeLessThanOrEqual(SEGMENT_TARGET_SIZE);
    }
    expect(manifest.segments.size).toBe(2);
    // Block 200 repeats block 0: one stored copy.
    const at = (i: number) => manifest.entries.find((e) => e.blockIndex === i);
    expect([at(200)?.segmentId, at(200)?.offset]).toEqual([at(0)?.segmentId, at(0)?.offset]);
    const restored = await restore(done);
    for (const [index, data] of blocks)
      if (index !== 202) expect(restored.get(index)?.equals(data)).toBe(true);
    expect(await stagedKeys(snapshot.snapshotId)).toEqual([]);
  });

  it("writes an incremental snapshot over its parent: unwritten blocks are the parent's segments, a written zero block drops one", async () => {
    const first = new Map<number, Buffer>([
      [0, block()],
      [1, block()],
      [5, block()],
    ]);
    const parent = await startAndWrite(first);
    await writes.complete(alice, parent.snapshotId, {
      changedBlocksCount: 3,
      checksum: linear(first),
      checksumAlgorithm: 'SHA256',
      aggregationMethod: 'LINEAR',
    });
    await drain();
    const changes = new Map<number, Buffer>([
      [1, block()],
      [5, Buffer.alloc(BLOCK_SIZE)],
      [9, block()],
    ]);
    const child = await startAndWrite(changes, { parentSnapshotId: parent.snapshotId });
    expect(child.volumeId).toBe(parent.volumeId);
    expect(child.parentSnapshotId).toBe(parent.snapshotId);
    await writes.complete(alice, child.snapshotId, {
      changedBlocksCount: 3,
      checksum: linear(changes),
      checksumAlgorithm: 'SHA256',
      aggregationMethod: 'LINEAR',
    });
    expect(await drain()).toEqual(['completed']);

    const parentManifest = await manifestOf(parent.snapshotId);
    const manifest = await manifestOf(child.snapshotId);
    expect(manifest.entries.map((e) => e.blockIndex)).toEqual([0, 1, 9]);
    const block0 = manifest.entries[0];
    expect(block0?.segmentId).toBe(parentManifest.entries[0]?.segmentId);
    expect(manifest.entries[1]?.segmentId).not.toBe(parentManifest.entries[0]?.segmentId);
    const restored = await restore(await region.snapshots.get(alice, child.snapshotId));
    expect(restored.get(0)?.equals(first.get(0) as Buffer)).toBe(true);
    expect(restored.get(1)?.equals(changes.get(1) as Buffer)).toBe(true);
    expect(restored.get(9)?.equals(changes.get(9) as Buffer)).toBe(true);
    expect((await region.snapshots.get(alice, child.snapshotId)).stats).toMatchObject({
      newBlocks: 2,
      reusedBlocks: 1,
    });
  });

  it('puts the snapshot in error, with its staged blocks removed, when ChangedBlocksCount or the aggregate checksum is wrong', async () => {
    const blocks = new Map<number, Buffer>([
      [0, block()],
      [4, block()],
    ]);
    const counted = await startAndWrite(blocks);
    await writes.complete(alice, counted.snapshotId, { changedBlocksCount: 3 });
    expect(await drain()).toEqual(['error']);
    const failed = await region.snapshots.get(alice, counted.snapshotId);
    expect(failed.state).toBe('error');
    expect(failed.stateReason).toContain('ChangedBlocksCount is 3, but 2 block(s) were written');
    expect(await stagedKeys(counted.snapshotId)).toEqual([]);
    expect(await region.ports.objects.get(ObjectLayout.manifest(counted.snapshotId))).toBeUndefined();

    const summed = await startAndWrite(blocks);
    const reversed = createHash('sha256')
      .update(blockHash(blocks.get(4) as Buffer))
      .update(blockHash(blocks.get(0) as Buffer))
      .digest('base64');
    await writes.complete(alice, summed.snapshotId, {
      changedBlocksCount: 2,
      checksum: reversed,
      checksumAlgorithm: 'SHA256',
      aggregationMethod: 'LINEAR',
    });
    expect(await drain()).toEqual(['error']);
    expect((await region.snapshots.get(alice, summed.snapshotId)).stateReason).toContain('LINEAR checksum');
    expect(await stagedKeys(summed.snapshotId)).toEqual([]);
    // No segment of either is left in the account's space.
    const segments: string[] = [];
    for await (const object of region.ports.objects.list(ObjectLayout.segmentPrefix(alice.accountId)))
      segments.push(object.key);
    expect(segments).toEqual([]);
  });

  it('stages nothing for a bad checksum, a length other than 524288, an index beyond the volume, or a bad algorithm', async () => {
    const snapshot = await writes.start(alice, { volumeSizeGiB: 1 });
    const data = block();
    const id = snapshot.snapshotId;
    const base = { dataLength: BLOCK_SIZE, checksum: sha(data), checksumAlgorithm: 'SHA256' };
    await expect(
      writes.putBlock(alice, id, 0, data, { ...base, checksum: sha(block()) }),
    ).rejects.toMatchObject({ code: 'request.invalid' });
    await expect(
      writes.putBlock(alice, id, 0, data.subarray(1), {
        ...base,
        dataLength: BLOCK_SIZE - 1,
        checksum: sha(data.subarray(1)),
      }),
    ).rejects.toMatchObject({ code: 'request.invalid' });
    await expect(writes.putBlock(alice, id, 0, data, { ...base, dataLength: 4096 })).rejects.toMatchObject({
      code: 'request.invalid',
    });
    await expect(writes.putBlock(alice, id, GiB / BLOCK_SIZE, data, base)).rejects.toMatchObject({
      code: 'request.invalid',
      message: expect.stringContaining('0 to 2047'),
    });
    await expect(
      writes.putBlock(alice, id, 0, data, { ...base, checksumAlgorithm: 'MD5' }),
    ).rejects.toMatchObject({ code: 'request.invalid' });
    expect(await stagedKeys(id)).toEqual([]);
    await writes.putBlock(alice, id, GiB / BLOCK_SIZE - 1, data, base);
    expect(await stagedKeys(id)).toEqual([
      ObjectLayout.stagedBlock(
        id,
        Math.floor((GiB / BLOCK_SIZE - 1) / BLOCKS_PER_PART),
        GiB / BLOCK_SIZE - 1,
      ),
    ]);
  });

  it("answers not found for a PUT to a completed or completing snapshot, another account's, or one not made with StartSnapshot", async () => {
    const bob = await region.account('bob');
    const data = block();
    const snapshot = await startAndWrite(new Map([[0, data]]));
    await expect(put(bob, snapshot.snapshotId, 1, data)).rejects.toMatchObject({ code: 'snapshot.notFound' });
    await expect(writes.complete(bob, snapshot.snapshotId, { changedBlocksCount: 1 })).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    await writes.complete(alice, snapshot.snapshotId, { changedBlocksCount: 1 });
    await expect(put(alice, snapshot.snapshotId, 1, data)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    await drain();
    await expect(put(alice, snapshot.snapshotId, 1, data)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    // Completing again answers its status, and changes nothing.
    expect(await writes.complete(alice, snapshot.snapshotId, { changedBlocksCount: 7 })).toBe('completed');
    const volume = await region.volumes.register(alice, { name: 'host', sizeBytes: GiB });
    const cli = await region.snapshots.create(alice, { volumeId: volume.volumeId });
    await expect(put(alice, cli.snapshotId, 0, data)).rejects.toMatchObject({ code: 'snapshot.notFound' });
    expect(await stagedKeys(cli.snapshotId)).toEqual([]);
  });

  it('cancels a snapshot Timeout minutes after its last block (each PUT moves the deadline on), its staged blocks removed', async () => {
    const snapshot = await writes.start(alice, { volumeSizeGiB: 1, timeoutMinutes: 10 });
    region.clock.advance(8 * 60_000);
    await put(alice, snapshot.snapshotId, 0, block());
    region.clock.advance(8 * 60_000);
    // 16 minutes after the start, 8 after the last block: still pending.
    await region.jobs.run('schedule', 'reaper');
    expect((await region.snapshots.get(alice, snapshot.snapshotId)).state).toBe('pending');
    region.clock.advance(3 * 60_000);
    await region.jobs.run('schedule', 'reaper');
    const cancelled = await region.snapshots.get(alice, snapshot.snapshotId);
    expect(cancelled.state).toBe('error');
    expect(cancelled.stateReason).toContain('deadline');
    expect(await stagedKeys(snapshot.snapshotId)).toEqual([]);
  });

  it('packs again, after the reaper finds the lease lapsed, a part whose worker died', async () => {
    const blocks = new Map<number, Buffer>([[0, block()]]);
    const snapshot = await startAndWrite(blocks);
    await writes.complete(alice, snapshot.snapshotId, {
      changedBlocksCount: 1,
      checksum: linear(blocks),
      checksumAlgorithm: 'SHA256',
      aggregationMethod: 'LINEAR',
    });
    region.ports.queue.messages.length = 0; // the worker died with its message
    region.clock.advance(4 * 60_000);
    await region.jobs.run('schedule', 'reaper');
    expect(region.ports.queue.messages).toEqual([
      { kind: 'snapshot.directPart', snapshotId: snapshot.snapshotId, part: 0 },
    ]);
    expect(await drain()).toEqual(['completed']);
    expect(
      (await restore(await region.snapshots.get(alice, snapshot.snapshotId)))
        .get(0)
        ?.equals(blocks.get(0) as Buffer),
    ).toBe(true);
  });
});
