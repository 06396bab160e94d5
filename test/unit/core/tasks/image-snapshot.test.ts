import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import { MemorySnapshotRepository } from '../../../../lib/adapters/memory/snapshots.ts';
import { MemoryVolumeRepository } from '../../../../lib/adapters/memory/volumes.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest } from '../../../../lib/core/format/manifest.ts';
import { readSegmentBlock } from '../../../../lib/core/format/segment.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { SnapshotService } from '../../../../lib/core/snapshots/snapshot-service.ts';
import { ImageSnapshotter } from '../../../../lib/core/tasks/image-snapshot.ts';
import { imageLocation } from '../../../../lib/core/volumes/image-location.ts';
import { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { testCaller } from '../../../support/callers.ts';

const alice: Caller = testCaller();
const access = { regionBucket: 'region', extraBuckets: ['shared-images'] };
const zstd = createZstdCompressor();
let objects: MemoryObjectStore;
let queue: MemoryWorkQueue;
let volumes: VolumeService;
let snapshots: SnapshotService;
let worker: ImageSnapshotter;
let snapshotRepo: MemorySnapshotRepository;
let volumeRepo: MemoryVolumeRepository;

beforeEach(() => {
  const clock = new ManualClock();
  objects = new MemoryObjectStore();
  queue = new MemoryWorkQueue();
  volumeRepo = new MemoryVolumeRepository();
  snapshotRepo = new MemorySnapshotRepository(volumeRepo);
  volumes = new VolumeService(volumeRepo, clock, 'eu-west-1', access);
  snapshots = new SnapshotService({
    compressor: createZstdCompressor(),
    snapshots: snapshotRepo,
    volumes: volumeRepo,
    objects,
    clock,
    region: 'eu-west-1',
    queue,
  });
  // One store plays every bucket here: image keys are prefixed by their bucket.
  const images = new Map<string, MemoryObjectStore>([['region', objects]]);
  worker = new ImageSnapshotter({
    snapshots: snapshotRepo,
    volumes: volumeRepo,
    objects,
    objectsIn: (bucket) => images.get(bucket) ?? new MemoryObjectStore(),
    service: snapshots,
    compressor: zstd,
    access,
    queue,
    rangeBytes: 3 * BLOCK_SIZE + 1000,
  });
});

async function restore(snapshotId: string, size: number): Promise<Buffer> {
  const manifest = decodeManifest((await objects.get(ObjectLayout.manifest(snapshotId))) ?? new Uint8Array());
  const out = Buffer.alloc(size);
  for (const entry of manifest.entries) {
    const segment =
      (await objects.get(ObjectLayout.segment(alice.accountId, entry.segmentId))) ?? new Uint8Array();
    const block = readSegmentBlock(
      zstd,
      { ...entry, plainLength: BLOCK_SIZE },
      segment.subarray(entry.offset, entry.offset + entry.storedLength),
    );
    Buffer.from(block).copy(out, entry.blockIndex * BLOCK_SIZE);
  }
  return out;
}

/** A worker writing 4-block parts, and a pending snapshot of a 10-block image in a 16-block volume. */
async function splitSnapshot() {
  const parted = new ImageSnapshotter({
    snapshots: snapshotRepo,
    volumes: volumeRepo,
    objects,
    objectsIn: () => objects,
    service: snapshots,
    compressor: zstd,
    access,
    queue,
    partBytes: 4 * BLOCK_SIZE,
  });
  const key = `${ObjectLayout.imagePrefix(alice.accountId)}big.img`;
  const image = randomBytes(10 * BLOCK_SIZE);
  image.fill(0, 5 * BLOCK_SIZE, 6 * BLOCK_SIZE);
  await objects.put(key, image);
  const volume = await volumes.register(alice, {
    name: 'big',
    sizeBytes: 16 * BLOCK_SIZE,
    imageUri: `s3://region/${key}`,
  });
  const snapshot = await snapshots.create(alice, { volumeId: volume.volumeId });
  queue.messages.length = 0;
  return { parted, key, image, snapshot };
}

describe('image-backed volumes, snapshotted by a worker', () => {
  it('are queued on create, written from the image by the worker, and restore byte for byte', async () => {
    // 20 MiB of image (a short last block) in a 64 MiB volume: the rest reads as zeros.
    const image = randomBytes(20 * 1024 * 1024 - 4096);
    image.fill(0, 0, 3 * BLOCK_SIZE);
    const key = `${ObjectLayout.imagePrefix(alice.accountId)}disk.img`;
    await objects.put(key, image);
    const volume = await volumes.register(alice, {
      name: 'img',
      sizeBytes: 64 * 1024 * 1024,
      imageUri: `s3://region/${key}`,
    });
    const snapshot = await snapshots.create(alice, { volumeId: volume.volumeId });
    expect(queue.messages).toEqual([{ kind: 'snapshot.fromImage', snapshotId: snapshot.snapshotId }]);
    expect(await worker.run(snapshot.snapshotId)).toBe('completed');
    const done = await snapshots.get(alice, snapshot.snapshotId);
    expect(done).toMatchObject({
      state: 'completed',
      progress: 100,
      stats: { blockCount: 37, zeroBlocks: 128 - 37 },
    });
    const expected = Buffer.alloc(64 * 1024 * 1024);
    image.copy(expected);
    expect((await restore(snapshot.snapshotId, expected.length)).equals(expected)).toBe(true);
    // A repeated message finds nothing left to do.
    expect(await worker.run(snapshot.snapshotId)).toBe('skipped');
  });

  it('write only what changed in the image since the last snapshot', async () => {
    const key = `${ObjectLayout.imagePrefix(alice.accountId)}disk.img`;
    const image = randomBytes(16 * BLOCK_SIZE);
    await objects.put(key, image);
    const volume = await volumes.register(alice, {
      name: 'img',
      sizeBytes: 16 * BLOCK_SIZE,
      imageUri: `s3://region/${key}`,
    });
    await worker.run((await snapshots.create(alice, { volumeId: volume.volumeId })).snapshotId);
    randomBytes(BLOCK_SIZE).copy(image, 7 * BLOCK_SIZE);
    await objects.put(key, image);
    const second = await snapshots.create(alice, { volumeId: volume.volumeId });
    await worker.run(second.snapshotId);
    expect((await snapshots.get(alice, second.snapshotId)).stats).toMatchObject({
      newBlocks: 1,
      reusedBlocks: 15,
    });
  });

  it('fail with the reason when the image is gone or larger than the volume, leaving no completed snapshot', async () => {
    const key = `${ObjectLayout.imagePrefix(alice.accountId)}big.img`;
    await objects.put(key, randomBytes(3 * BLOCK_SIZE));
    const small = await volumes.register(alice, {
      name: 'small',
      sizeBytes: 2 * BLOCK_SIZE,
      imageUri: `s3://region/${key}`,
    });
    const tooBig = await snapshots.create(alice, { volumeId: small.volumeId });
    expect(await worker.run(tooBig.snapshotId)).toBe('error');
    expect((await snapshots.get(alice, tooBig.snapshotId)).stateReason).toContain('larger than volume');
    const gone = await volumes.register(alice, {
      name: 'gone',
      sizeBytes: 2 * BLOCK_SIZE,
      imageUri: `s3://region/${ObjectLayout.imagePrefix(alice.accountId)}missing.img`,
    });
    const missing = await snapshots.create(alice, { volumeId: gone.volumeId });
    expect(await worker.run(missing.snapshotId)).toBe('error');
    expect((await snapshots.get(alice, missing.snapshotId)).stateReason).toContain('does not exist');
  });

  it('are split into parts for several workers when large; the last part completes the snapshot', async () => {
    const { parted, image, snapshot } = await splitSnapshot();
    expect(await parted.run(snapshot.snapshotId)).toBe('split');
    expect(queue.messages).toEqual(
      [0, 1, 2].map((part) => ({ kind: 'snapshot.fromImagePart', snapshotId: snapshot.snapshotId, part })),
    );
    // Parts finish in any order; a redelivered part changes nothing.
    expect(await parted.runPart(snapshot.snapshotId, 2)).toBe('part');
    expect(await parted.runPart(snapshot.snapshotId, 0)).toBe('part');
    expect(await parted.runPart(snapshot.snapshotId, 0)).toBe('part');
    expect((await snapshots.get(alice, snapshot.snapshotId)).progress).toBe(63);
    expect(await parted.runPart(snapshot.snapshotId, 1)).toBe('completed');
    expect(await parted.runPart(snapshot.snapshotId, 1)).toBe('skipped');
    const done = await snapshots.get(alice, snapshot.snapshotId);
    expect(done).toMatchObject({ state: 'completed', parts: 3, stats: { blockCount: 9, zeroBlocks: 7 } });
    const expected = Buffer.alloc(16 * BLOCK_SIZE);
    image.copy(expected);
    expect((await restore(snapshot.snapshotId, expected.length)).equals(expected)).toBe(true);
    expect([...objects.objects.keys()].filter((k) => k.startsWith('uploads/'))).toEqual([]);
  });

  it('that fail for good leave nothing they wrote: no segment, no part checkpoint, no staged manifest', async () => {
    const { parted, key, snapshot } = await splitSnapshot();
    expect(await parted.run(snapshot.snapshotId)).toBe('split');
    expect(await parted.runPart(snapshot.snapshotId, 0)).toBe('part');
    const written = [...objects.objects.keys()].filter((k) => k !== key);
    expect(written.some((k) => k.startsWith(ObjectLayout.segmentPrefix(alice.accountId)))).toBe(true);
    expect(written.some((k) => k.includes(snapshot.snapshotId))).toBe(true);
    // The image is deleted before the other parts are read.
    await objects.delete(key);
    expect(await parted.runPart(snapshot.snapshotId, 1)).toBe('error');
    const failed = await snapshots.get(alice, snapshot.snapshotId);
    expect(failed).toMatchObject({ state: 'error' });
    expect(failed.stateReason).toContain('does not exist');
    expect([...objects.objects.keys()]).toEqual([]);
    // The remaining part's message finds the snapshot failed and does nothing.
    expect(await parted.runPart(snapshot.snapshotId, 2)).toBe('skipped');
    expect([...objects.objects.keys()]).toEqual([]);
  });

  it('skip an out-of-range part with no side effect, and the snapshot still completes', async () => {
    const { parted, image, snapshot } = await splitSnapshot();
    expect(await parted.run(snapshot.snapshotId)).toBe('split');
    queue.messages.length = 0;
    const record = await snapshotRepo.get(snapshot.snapshotId);
    const keys = [...objects.objects.keys()];
    for (const part of [-1, 3, 7]) expect(await parted.runPart(snapshot.snapshotId, part)).toBe('skipped');
    expect(await snapshotRepo.get(snapshot.snapshotId)).toEqual(record);
    expect([...objects.objects.keys()]).toEqual(keys);
    expect(queue.messages).toEqual([]);
    for (const part of [0, 1]) expect(await parted.runPart(snapshot.snapshotId, part)).toBe('part');
    expect(await parted.runPart(snapshot.snapshotId, 2)).toBe('completed');
    const expected = Buffer.alloc(16 * BLOCK_SIZE);
    image.copy(expected);
    expect((await restore(snapshot.snapshotId, expected.length)).equals(expected)).toBe(true);
  });

  it('leave a stray image message for a copy alone', async () => {
    const { parted, snapshot } = await splitSnapshot();
    await snapshotRepo.transition(snapshot.snapshotId, ['pending'], 'pending', {
      parts: 1,
      copiedFrom: { region: 'r1', snapshotId: 'snap-0000000000000001', accountId: alice.accountId },
    });
    expect(await parted.run(snapshot.snapshotId)).toBe('skipped');
    expect(await parted.runPart(snapshot.snapshotId, 0)).toBe('skipped');
    expect((await snapshotRepo.get(snapshot.snapshotId))?.state).toBe('pending');
  });

  it("may only be read from the account's own images or an allowed bucket", () => {
    expect(imageLocation(`s3://region/images/${alice.accountId}/a.img`, alice.accountId, access)).toEqual({
      bucket: 'region',
      key: `images/${alice.accountId}/a.img`,
    });
    expect(imageLocation('s3://shared-images/base/debian.img', alice.accountId, access).bucket).toBe(
      'shared-images',
    );
    // Another account's images, and volsnap's own data, are out of reach.
    for (const uri of [
      's3://region/images/acct-other/a.img',
      `s3://region/segments/${alice.accountId}/seg-1`,
      's3://region/manifests/snap-1',
      's3://elsewhere/x.img',
      `s3://region/images/${alice.accountId}/../acct-x/a.img`,
    ]) {
      expect(() => imageLocation(uri, alice.accountId, access), uri).toThrow(/cannot read images from/);
    }
  });
});
