import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/adapters/clock.ts';
import { MemoryObjectStore } from '../../lib/adapters/memory/objects.ts';
import { MemorySnapshotRepository } from '../../lib/adapters/memory/snapshots.ts';
import { MemoryVolumeRepository } from '../../lib/adapters/memory/volumes.ts';
import { createZstdCompressor } from '../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../lib/core/blocks.ts';
import type { Caller } from '../../lib/core/identity.ts';
import { newId } from '../../lib/core/ids.ts';
import { decodeManifest, encodeManifest, type Manifest } from '../../lib/core/manifest.ts';
import { ObjectLayout } from '../../lib/core/objects.ts';
import { planReads } from '../../lib/core/restore-plan.ts';
import { readSegmentBlock } from '../../lib/core/segment.ts';
import { SnapshotService } from '../../lib/core/snapshot-service.ts';
import { SnapshotWriter } from '../../lib/core/snapshot-writer.ts';
import { VolumeService } from '../../lib/core/volumes.ts';
import { testCaller } from '../support/callers.ts';

const zstd = createZstdCompressor();
const alice: Caller = testCaller();
const bob: Caller = testCaller();
const BLOCKS = 40;

let objects: MemoryObjectStore;
let snapshots: SnapshotService;
let volumes: VolumeService;
let clock: ManualClock;

beforeEach(() => {
  clock = new ManualClock();
  objects = new MemoryObjectStore();
  const volumeRepo = new MemoryVolumeRepository();
  const snapshotRepo = new MemorySnapshotRepository(volumeRepo);
  volumes = new VolumeService(volumeRepo, clock, 'eu-west-1', {
    regionBucket: 'region-bucket',
    extraBuckets: [],
  });
  snapshots = new SnapshotService({
    snapshots: snapshotRepo,
    volumes: volumeRepo,
    objects,
    clock,
    region: 'eu-west-1',
  });
});

/** An image: every 4th block zero, a few compressible, the rest random. */
function image(blocks = BLOCKS): Buffer {
  const data = Buffer.alloc(blocks * BLOCK_SIZE);
  for (let i = 0; i < blocks; i++) {
    if (i % 4 === 0) continue;
    const block = i % 7 === 0 ? Buffer.alloc(BLOCK_SIZE, `text ${i % 3} `) : randomBytes(BLOCK_SIZE);
    block.copy(data, i * BLOCK_SIZE);
  }
  return data;
}

/** What the CLI does, in memory: write blocks through the service's URLs (as direct puts here). */
async function takeSnapshot(caller: Caller, volumeId: string, data: Buffer) {
  const snapshot = await snapshots.create(caller, { volumeId, name: 'test' });
  let parent: Manifest | undefined;
  if (snapshot.parentSnapshotId) {
    parent = decodeManifest(
      (await objects.get(ObjectLayout.manifest(snapshot.parentSnapshotId))) ?? new Uint8Array(),
    );
  }
  const writer = new SnapshotWriter({
    volumeSize: data.length,
    compressor: zstd,
    parent,
    segmentTargetSize: 4 * BLOCK_SIZE,
    nextSegmentId: async () =>
      (await snapshots.uploadUrls(caller, snapshot.snapshotId, 1)).segments[0]?.segmentId ?? '',
    store: (segmentId, object) => objects.put(ObjectLayout.segment(caller.accountId, segmentId), object),
  });
  for (let i = 0; i * BLOCK_SIZE < data.length; i++)
    await writer.add(i, data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  const manifest = await writer.finish();
  await objects.put(ObjectLayout.manifestUpload(snapshot.snapshotId), encodeManifest(manifest));
  return { snapshot: await snapshots.complete(caller, snapshot.snapshotId), report: writer.report };
}

async function restore(caller: Caller, snapshotId: string, size: number): Promise<Buffer> {
  const manifest = decodeManifest((await objects.get(ObjectLayout.manifest(snapshotId))) ?? new Uint8Array());
  const out = Buffer.alloc(size);
  for (const range of planReads(manifest)) {
    const segment =
      (await objects.get(ObjectLayout.segment(caller.accountId, range.segmentId))) ?? new Uint8Array();
    for (const entry of range.entries) {
      const stored = segment.subarray(entry.offset, entry.offset + entry.storedLength);
      const segmentEntry = {
        hash: entry.hash,
        offset: entry.offset,
        storedLength: entry.storedLength,
        plainLength: BLOCK_SIZE,
        encoding: entry.encoding,
      };
      Buffer.from(readSegmentBlock(zstd, segmentEntry, stored)).copy(out, entry.blockIndex * BLOCK_SIZE);
    }
  }
  return out;
}

describe('snapshots, written and restored through the service', () => {
  it('store only non-zero blocks, complete with stats, and restore byte for byte', async () => {
    const data = image();
    const volume = await volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const { snapshot, report } = await takeSnapshot(alice, volume.volumeId, data);
    expect(snapshot.state).toBe('completed');
    expect(snapshot.progress).toBe(100);
    expect(report.zeroBlocks).toBe(BLOCKS / 4);
    expect(snapshot.stats).toMatchObject({
      blockCount: BLOCKS - BLOCKS / 4,
      zeroBlocks: BLOCKS / 4,
      reusedBlocks: 0,
    });
    // The compressible blocks ("text 0/1/2") repeat: stored once each.
    expect(report.duplicateBlocks).toBeGreaterThan(0);
    expect((await restore(alice, snapshot.snapshotId, data.length)).equals(data)).toBe(true);
  });

  it('write only changed blocks the second time, against the first', async () => {
    const data = image();
    const volume = await volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const first = await takeSnapshot(alice, volume.volumeId, data);
    const changed = Buffer.from(data);
    randomBytes(BLOCK_SIZE).copy(changed, 5 * BLOCK_SIZE);
    randomBytes(BLOCK_SIZE).copy(changed, 8 * BLOCK_SIZE); // was a zero block
    const second = await takeSnapshot(alice, volume.volumeId, changed);
    expect(second.snapshot.parentSnapshotId).toBe(first.snapshot.snapshotId);
    expect(second.report.newBlocks).toBe(2);
    expect(second.snapshot.stats?.newBytes).toBe(2 * BLOCK_SIZE);
    expect((await restore(alice, second.snapshot.snapshotId, data.length)).equals(changed)).toBe(true);
    // Deleting the older snapshot harms the newer one in nothing.
    await snapshots.delete(alice, first.snapshot.snapshotId);
    expect((await restore(alice, second.snapshot.snapshotId, data.length)).equals(changed)).toBe(true);
    const diff = await snapshots.diff(alice, second.snapshot.snapshotId, second.snapshot.snapshotId);
    expect(diff.changedBlocks).toBe(0);
  });

  it('report changed blocks between two snapshots as runs', async () => {
    const data = image();
    const volume = await volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const a = await takeSnapshot(alice, volume.volumeId, data);
    const changed = Buffer.from(data);
    for (const i of [9, 10, 11, 30]) randomBytes(BLOCK_SIZE).copy(changed, i * BLOCK_SIZE);
    changed.fill(0, 13 * BLOCK_SIZE, 14 * BLOCK_SIZE); // zeroed
    const b = await takeSnapshot(alice, volume.volumeId, changed);
    expect(await snapshots.diff(alice, a.snapshot.snapshotId, b.snapshot.snapshotId)).toEqual({
      blockSize: BLOCK_SIZE,
      volumeSize: data.length,
      changedBlocks: 5,
      ranges: [
        { start: 9, count: 3 },
        { start: 13, count: 1 },
        { start: 30, count: 1 },
      ],
    });
  });

  it('return the same snapshot for the same client token, and refuse the token for other parameters', async () => {
    const volume = await volumes.register(alice, { name: 'disk', sizeBytes: BLOCKS * BLOCK_SIZE });
    const first = await snapshots.create(alice, { volumeId: volume.volumeId, name: 'a', clientToken: 't-1' });
    const again = await snapshots.create(alice, { volumeId: volume.volumeId, name: 'a', clientToken: 't-1' });
    expect(again.snapshotId).toBe(first.snapshotId);
    await expect(
      snapshots.create(alice, { volumeId: volume.volumeId, name: 'b', clientToken: 't-1' }),
    ).rejects.toMatchObject({
      code: 'idempotency.conflict',
      status: 409,
    });
    // Tokens are per account.
    const bobs = await volumes.register(bob, { name: 'disk', sizeBytes: BLOCK_SIZE });
    expect(
      (await snapshots.create(bob, { volumeId: bobs.volumeId, name: 'a', clientToken: 't-1' })).snapshotId,
    ).not.toBe(first.snapshotId);
  });

  it('make two concurrent snapshots of a volume two snapshots', async () => {
    const volume = await volumes.register(alice, { name: 'disk', sizeBytes: BLOCKS * BLOCK_SIZE });
    const [a, b] = await Promise.all([
      snapshots.create(alice, { volumeId: volume.volumeId }),
      snapshots.create(alice, { volumeId: volume.volumeId }),
    ]);
    expect(a.snapshotId).not.toBe(b.snapshotId);
  });
});

describe('completing a snapshot with bad input leaves no completed snapshot', () => {
  async function pending(sizeBytes = 8 * BLOCK_SIZE) {
    const volume = await volumes.register(alice, { name: 'disk', sizeBytes });
    return snapshots.create(alice, { volumeId: volume.volumeId });
  }

  it('without a manifest: 409, still pending', async () => {
    const s = await pending();
    await expect(snapshots.complete(alice, s.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.manifestMissing',
      status: 409,
    });
    expect((await snapshots.get(alice, s.snapshotId)).state).toBe('pending');
  });

  it('with a segment not uploaded (or torn): 409 naming it, still pending; completes once it is there', async () => {
    const s = await pending();
    const { segments } = await snapshots.uploadUrls(alice, s.snapshotId, 1);
    const segmentId = segments[0]?.segmentId ?? '';
    const manifest = {
      volumeSize: 8 * BLOCK_SIZE,
      blockSize: BLOCK_SIZE,
      segments: new Map([[segmentId, 1000]]),
      entries: [
        { blockIndex: 0, hash: randomBytes(32), segmentId, offset: 0, storedLength: 900, encoding: 0 },
      ],
    };
    await objects.put(ObjectLayout.manifestUpload(s.snapshotId), encodeManifest(manifest));
    await expect(snapshots.complete(alice, s.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.segmentsMissing',
      details: { segmentIds: [segmentId] },
    });
    await objects.put(ObjectLayout.segment(alice.accountId, segmentId), randomBytes(999));
    await expect(snapshots.complete(alice, s.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.segmentsMissing',
    });
    expect((await snapshots.get(alice, s.snapshotId)).state).toBe('pending');
    await objects.put(ObjectLayout.segment(alice.accountId, segmentId), randomBytes(1000));
    expect((await snapshots.complete(alice, s.snapshotId)).state).toBe('completed');
    // Completing again is a no-op.
    expect((await snapshots.complete(alice, s.snapshotId)).state).toBe('completed');
  });

  it('naming a segment of another upload or account: the snapshot goes to error with the reason', async () => {
    const s = await pending();
    const stranger = newId('segment');
    await objects.put(ObjectLayout.segment(alice.accountId, stranger), randomBytes(1000));
    const manifest = {
      volumeSize: 8 * BLOCK_SIZE,
      blockSize: BLOCK_SIZE,
      segments: new Map([[stranger, 1000]]),
      entries: [
        {
          blockIndex: 0,
          hash: randomBytes(32),
          segmentId: stranger,
          offset: 0,
          storedLength: 1000,
          encoding: 0,
        },
      ],
    };
    await objects.put(ObjectLayout.manifestUpload(s.snapshotId), encodeManifest(manifest));
    await expect(snapshots.complete(alice, s.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.segmentsForeign',
      status: 400,
    });
    const failed = await snapshots.get(alice, s.snapshotId);
    expect(failed.state).toBe('error');
    expect(failed.stateReason).toContain(stranger);
  });

  it('for another volume size, or with blocks outside the volume: error', async () => {
    const s = await pending();
    const { segments } = await snapshots.uploadUrls(alice, s.snapshotId, 1);
    const segmentId = segments[0]?.segmentId ?? '';
    const manifest = {
      volumeSize: 16 * BLOCK_SIZE,
      blockSize: BLOCK_SIZE,
      segments: new Map([[segmentId, 10]]),
      entries: [
        { blockIndex: 12, hash: randomBytes(32), segmentId, offset: 0, storedLength: 10, encoding: 0 },
      ],
    };
    await objects.put(ObjectLayout.manifestUpload(s.snapshotId), encodeManifest(manifest));
    await expect(snapshots.complete(alice, s.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.manifestInvalid',
    });
    expect((await snapshots.get(alice, s.snapshotId)).state).toBe('error');
  });

  it('with a corrupt manifest: 422, still pending (upload it again)', async () => {
    const s = await pending();
    await objects.put(ObjectLayout.manifestUpload(s.snapshotId), randomBytes(500));
    await expect(snapshots.complete(alice, s.snapshotId)).rejects.toMatchObject({
      code: 'data.corrupt',
      status: 422,
    });
    expect((await snapshots.get(alice, s.snapshotId)).state).toBe('pending');
  });

  it('from another account: snapshot.notFound, exactly as for a missing one', async () => {
    const s = await pending();
    await expect(snapshots.complete(bob, s.snapshotId)).rejects.toMatchObject({ code: 'snapshot.notFound' });
    await expect(snapshots.uploadUrls(bob, s.snapshotId, 1)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    await expect(snapshots.delete(bob, s.snapshotId)).rejects.toMatchObject({ code: 'snapshot.notFound' });
  });
});

describe('restore planning', () => {
  it('reads neighbouring blocks of a segment in one range, and shared locations once', () => {
    const hash = randomBytes(32);
    const e = (blockIndex: number, segmentId: string, offset: number) => ({
      blockIndex,
      hash,
      segmentId,
      offset,
      storedLength: 100,
      encoding: 0,
    });
    const ranges = planReads({
      entries: [e(0, 's1', 0), e(1, 's1', 100), e(2, 's1', 300), e(3, 's2', 0), e(4, 's1', 100)],
    });
    expect(ranges.map((r) => [r.segmentId, r.start, r.end, r.entries.map((x) => x.blockIndex)])).toEqual([
      ['s1', 0, 200, [0, 1, 4]],
      ['s1', 300, 400, [2]],
      ['s2', 0, 100, [3]],
    ]);
  });
});
