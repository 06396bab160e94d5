import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import { MemoryIdentityRepository } from '../../../../lib/adapters/memory/identity.ts';
import { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import { MemorySnapshotRepository } from '../../../../lib/adapters/memory/snapshots.ts';
import { MemoryVolumeRepository } from '../../../../lib/adapters/memory/volumes.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest, encodeManifest } from '../../../../lib/core/format/manifest.ts';
import { openSegment, readSegmentBlock } from '../../../../lib/core/format/segment.ts';
import { SnapshotWriter } from '../../../../lib/core/format/snapshot-writer.ts';
import { AccountService, bootstrapAccount } from '../../../../lib/core/identity/accounts.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { VolsnapError } from '../../../../lib/core/shared/errors.ts';
import { SnapshotService } from '../../../../lib/core/snapshots/snapshot-service.ts';
import { type CopySource, copySourceOf, SnapshotCopier } from '../../../../lib/core/tasks/snapshot-copy.ts';
import { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { testCaller } from '../../../support/callers.ts';

const zstd = createZstdCompressor();
const BLOCKS = 64;
const PART_BLOCKS = 16;

/** One region: its own table (repositories), bucket, queue and services. */
function region(name: string, clock: ManualClock, accounts: AccountService) {
  const volumeRepo = new MemoryVolumeRepository();
  const snapshotRepo = new MemorySnapshotRepository(volumeRepo);
  const objects = new MemoryObjectStore();
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
  const volumes = new VolumeService(volumeRepo, clock, name, { regionBucket: 'b', extraBuckets: [] });
  return { name, volumeRepo, snapshotRepo, objects, queue, service, volumes };
}
type Region = ReturnType<typeof region>;

let clock: ManualClock;
let accounts: AccountService;
let r1: Region;
let r2: Region;
let alice: Caller;
let bob: Caller;
let copier: SnapshotCopier;
/** Source reads the copier made (to show what an incremental copy moves). */
let bytesRead: number;
let failReads: (() => boolean) | undefined;
/** Makes the source region's table fail for now while the copy checks its source. */
let failReadable: (() => boolean) | undefined;
/** Every source range read, as `segment@start`. */
let rangesRead: string[];

beforeEach(async () => {
  clock = new ManualClock();
  const identity = new MemoryIdentityRepository();
  accounts = new AccountService({
    identity,
    clock,
    region: 'r2',
    usage: async () => ({ snapshots: 0, storedBytes: 0 }),
  });
  r1 = region('r1', clock, accounts);
  r2 = region('r2', clock, accounts);
  const callerOf = async (name: string) =>
    testCaller({ accountId: (await bootstrapAccount(identity, clock, { name })).account.accountId });
  alice = await callerOf('alice');
  bob = await callerOf('bob');
  bytesRead = 0;
  failReads = undefined;
  failReadable = undefined;
  rangesRead = [];
  const sources = new Map<string, Region>([
    ['r1', r1],
    ['r2', r2],
  ]);
  copier = new SnapshotCopier({
    region: 'r2',
    source: (name): CopySource => {
      const r = sources.get(name);
      if (!r) throw new VolsnapError('region.unknown', `Unknown region '${name}'.`);
      const inner = copySourceOf(r.service, r.objects);
      return {
        ...inner,
        readable: async (caller, snapshotId) => {
          if (failReadable?.())
            throw new VolsnapError('storage.unavailable', 'The table did not answer as expected.');
          return inner.readable(caller, snapshotId);
        },
        readRange: async (accountId, segmentId, start, end) => {
          if (failReads?.()) throw new Error('the worker died');
          bytesRead += end - start;
          rangesRead.push(`${segmentId}@${start}`);
          return inner.readRange(accountId, segmentId, start, end);
        },
      };
    },
    snapshots: r2.snapshotRepo,
    volumes: r2.volumeRepo,
    objects: r2.objects,
    service: r2.service,
    compressor: zstd,
    partBlocks: PART_BLOCKS,
  });
});

function image(): Buffer {
  const data = randomBytes(BLOCKS * BLOCK_SIZE);
  for (let i = 0; i < BLOCKS; i += 5) data.fill(0, i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
  return data;
}

async function snapshotIn(r: Region, caller: Caller, volumeId: string, data: Buffer) {
  const snapshot = await r.service.create(caller, { volumeId });
  const parentBytes = snapshot.parentSnapshotId
    ? await r.objects.get(ObjectLayout.manifest(snapshot.parentSnapshotId))
    : undefined;
  const writer = new SnapshotWriter({
    volumeSize: data.length,
    compressor: zstd,
    parent: parentBytes ? decodeManifest(parentBytes) : undefined,
    segmentTargetSize: 8 * BLOCK_SIZE,
    nextSegmentId: async () =>
      (await r.service.uploadUrls(caller, snapshot.snapshotId, 1)).segments[0]?.segmentId ?? '',
    store: (id, object) => r.objects.put(ObjectLayout.segment(caller.accountId, id), object),
  });
  for (let i = 0; i < BLOCKS; i++) await writer.add(i, data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  await r.objects.put(
    ObjectLayout.manifestUpload(snapshot.snapshotId),
    encodeManifest(await writer.finish()),
  );
  return r.service.complete(caller, snapshot.snapshotId);
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
    const plain = readSegmentBlock(zstd, { ...e, plainLength: BLOCK_SIZE }, stored);
    Buffer.from(plain).copy(out, e.blockIndex * BLOCK_SIZE);
  }
  return out;
}

/** Delivers the copy's queued messages, as SQS would, until none is left; a failing one is redelivered. */
async function work(): Promise<string[]> {
  const outcomes: string[] = [];
  for (let rounds = 0; r2.queue.messages.length > 0 && rounds < 100; rounds++) {
    const message = r2.queue.messages.shift();
    if (message?.kind !== 'snapshot.copyPart') continue;
    try {
      outcomes.push(await copier.runPart(message.snapshotId, message.part));
    } catch {
      outcomes.push('retry');
      r2.queue.messages.push(message);
    }
  }
  return outcomes;
}

describe('copying a snapshot to another region', () => {
  it('makes an independent copy of its own id and owner, which restores byte for byte after the source is deleted', async () => {
    const data = image();
    const volume = await r1.volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const source = await snapshotIn(r1, alice, volume.volumeId, data);
    const started = await copier.start(alice, { sourceRegion: 'r1', sourceSnapshotId: source.snapshotId });
    expect(started).toMatchObject({
      state: 'pending',
      accountId: alice.accountId,
      region: 'r2',
      parts: BLOCKS / PART_BLOCKS,
      copiedFrom: { region: 'r1', snapshotId: source.snapshotId },
    });
    expect(started.snapshotId).not.toBe(source.snapshotId);
    expect(await work()).toEqual(['part', 'part', 'part', 'completed']);
    const copy = await r2.service.get(alice, started.snapshotId);
    expect(copy.state).toBe('completed');
    // Blocks are kept as the source stored them: the same bytes, not compressed again.
    expect(copy.stats).toMatchObject({
      newBlocks: source.stats?.blockCount,
      newBytes: source.stats?.newBytes,
      reusedBlocks: 0,
    });
    await r1.service.delete(alice, source.snapshotId);
    expect((await restoreIn(r2, alice.accountId, copy.snapshotId)).equals(data)).toBe(true);
  });

  it('moves only the changed blocks the second time, written against the previous copy', async () => {
    const data = image();
    const volume = await r1.volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const first = await snapshotIn(r1, alice, volume.volumeId, data);
    await copier.start(alice, { sourceRegion: 'r1', sourceSnapshotId: first.snapshotId });
    await work();
    randomBytes(BLOCK_SIZE).copy(data, 7 * BLOCK_SIZE);
    const second = await snapshotIn(r1, alice, volume.volumeId, data);
    bytesRead = 0;
    const copy2 = await copier.start(alice, { sourceRegion: 'r1', sourceSnapshotId: second.snapshotId });
    await work();
    const done = await r2.service.get(alice, copy2.snapshotId);
    expect(done.stats).toMatchObject({ newBlocks: 1, reusedBlocks: (first.stats?.blockCount ?? 0) - 1 });
    expect(bytesRead).toBeLessThanOrEqual(BLOCK_SIZE + 64);
    expect(done.parentSnapshotId).toBeDefined();
    expect((await restoreIn(r2, alice.accountId, done.snapshotId)).equals(data)).toBe(true);
  });

  it('resumes after a worker dies mid-copy, without copying finished parts again', async () => {
    const data = image();
    const volume = await r1.volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const source = await snapshotIn(r1, alice, volume.volumeId, data);
    const started = await copier.start(alice, { sourceRegion: 'r1', sourceSnapshotId: source.snapshotId });
    // The worker of the second part dies after its first reads.
    const failedPart = 1;
    let inFailedPart = 0;
    const deliver = copier.runPart.bind(copier);
    copier.runPart = async (id, part) => {
      if (part === failedPart) inFailedPart++;
      return deliver(id, part);
    };
    let readsInPart = 0;
    failReads = () => inFailedPart === 1 && ++readsInPart === 2;
    const outcomes = await work();
    expect(outcomes).toEqual(['part', 'retry', 'part', 'part', 'completed']);
    const copy = await r2.service.get(alice, started.snapshotId);
    expect(copy.state).toBe('completed');
    expect(copy.partsDone).toEqual([0, 1, 2, 3]);
    // Only ranges of the part whose worker died were read twice: nothing finished was read again.
    const manifest = decodeManifest(
      (await r1.objects.get(ObjectLayout.manifest(source.snapshotId))) ?? new Uint8Array(),
    );
    const partOf = new Map(
      manifest.entries.map((e) => [`${e.segmentId}@${e.offset}`, Math.floor(e.blockIndex / PART_BLOCKS)]),
    );
    const twice = rangesRead.filter((r, i) => rangesRead.indexOf(r) !== i);
    expect(twice.length).toBeGreaterThan(0);
    expect(new Set(twice.map((r) => partOf.get(r)))).toEqual(new Set([failedPart]));
    // A redelivered message for a finished part does nothing.
    bytesRead = 0;
    expect(await copier.runPart(started.snapshotId, 0)).toBe('skipped');
    expect(bytesRead).toBe(0);
    expect((await restoreIn(r2, alice.accountId, copy.snapshotId)).equals(data)).toBe(true);
  });

  it('fails cleanly when the source is deleted before the copy has read it', async () => {
    const data = image();
    const volume = await r1.volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const source = await snapshotIn(r1, alice, volume.volumeId, data);
    const started = await copier.start(alice, { sourceRegion: 'r1', sourceSnapshotId: source.snapshotId });
    const firstPart = r2.queue.messages.shift();
    expect(
      firstPart?.kind === 'snapshot.copyPart' && (await copier.runPart(started.snapshotId, firstPart.part)),
    ).toBe('part');
    await r1.service.delete(alice, source.snapshotId);
    expect(await work()).toEqual(['error', 'skipped', 'skipped']);
    const failed = await r2.service.get(alice, started.snapshotId);
    expect(failed.state).toBe('error');
    expect(failed.stateReason).toMatch(/deleted or is no longer shared/);
    // The part written before is cleaned up: no segments, no part manifests left in the destination.
    expect(
      [...r2.objects.objects.keys()].filter((k) => k.startsWith('segments/') || k.startsWith('uploads/')),
    ).toEqual([]);
  });

  it('retries a part while the source region cannot say whether its source is there (its table down), then completes', async () => {
    const data = image();
    const volume = await r1.volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const source = await snapshotIn(r1, alice, volume.volumeId, data);
    const started = await copier.start(alice, { sourceRegion: 'r1', sourceSnapshotId: source.snapshotId });
    let outage = 3;
    failReadable = () => outage-- > 0;
    const outcomes = await work();
    expect(outcomes.filter((o) => o === 'retry')).toHaveLength(3);
    expect(outcomes).not.toContain('error');
    const copy = await r2.service.get(alice, started.snapshotId);
    expect(copy.state).toBe('completed');
    expect((await restoreIn(r2, alice.accountId, started.snapshotId)).equals(data)).toBe(true);
  });

  it('lets a grantee copy a shared snapshot into its own account, and refuses others, unknown regions and unfinished sources', async () => {
    const data = image();
    const volume = await r1.volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const source = await snapshotIn(r1, alice, volume.volumeId, data);
    await expect(
      copier.start(bob, { sourceRegion: 'r1', sourceSnapshotId: source.snapshotId }),
    ).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    await r1.service.share(alice, source.snapshotId, bob.accountId);
    const started = await copier.start(bob, { sourceRegion: 'r1', sourceSnapshotId: source.snapshotId });
    expect(started.accountId).toBe(bob.accountId);
    await work();
    await r1.service.unshare(alice, source.snapshotId, bob.accountId);
    await r1.service.delete(alice, source.snapshotId);
    expect((await restoreIn(r2, bob.accountId, started.snapshotId)).equals(data)).toBe(true);
    await expect(
      copier.start(alice, { sourceRegion: 'r9', sourceSnapshotId: source.snapshotId }),
    ).rejects.toMatchObject({
      code: 'region.unknown',
    });
    const pending = await r1.service.create(alice, { volumeId: volume.volumeId });
    await expect(
      copier.start(alice, { sourceRegion: 'r1', sourceSnapshotId: pending.snapshotId }),
    ).rejects.toMatchObject({
      code: 'snapshot.invalidState',
    });
    const member = { ...alice, role: 'member' as const, permissions: ['snapshot:create' as const] };
    await expect(
      copier.start(member, { sourceRegion: 'r1', sourceSnapshotId: pending.snapshotId }),
    ).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
  });

  it("copies a shared snapshot into segments that hold only its blocks, never its parent's overwritten ones", async () => {
    // v1's block 1 is a secret; v2 rewrites it and reuses v1's segment for the rest. Only v2 is shared.
    const secret = Buffer.from('SECRET-V1-do-not-share');
    const data = image();
    secret.copy(data, BLOCK_SIZE);
    const volume = await r1.volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const v1 = await snapshotIn(r1, alice, volume.volumeId, data);
    const secretBlock = Buffer.from(data.subarray(BLOCK_SIZE, 2 * BLOCK_SIZE));
    randomBytes(BLOCK_SIZE).copy(data, BLOCK_SIZE);
    const v2 = await snapshotIn(r1, alice, volume.volumeId, data);
    expect(v2.parentSnapshotId).toBe(v1.snapshotId);
    const v2Manifest = decodeManifest(
      (await r1.objects.get(ObjectLayout.manifest(v2.snapshotId))) ?? new Uint8Array(),
    );
    const v1Manifest = decodeManifest(
      (await r1.objects.get(ObjectLayout.manifest(v1.snapshotId))) ?? new Uint8Array(),
    );
    // The leak this guards against: v2 names the segment that still holds the secret block.
    expect(v2Manifest.segments.has(v1Manifest.entries[0]?.segmentId ?? '')).toBe(true);
    await r1.service.share(alice, v2.snapshotId, bob.accountId);
    const started = await copier.start(bob, { sourceRegion: 'r1', sourceSnapshotId: v2.snapshotId });
    await work();
    expect((await r2.service.get(bob, started.snapshotId)).state).toBe('completed');
    // The copier read only v2's blocks from the source...
    const extents = new Set(v2Manifest.entries.map((e) => `${e.segmentId}@${e.offset}`));
    expect(rangesRead.length).toBeGreaterThan(0);
    for (const range of rangesRead) expect(extents.has(range)).toBe(true);
    // ...and bob's segments, which bob may read whole, hold v2's blocks and nothing else.
    const v2Hashes = new Set(v2Manifest.entries.map((e) => e.hash.toString('hex')));
    const held = new Set<string>();
    for (const [key, object] of r2.objects.objects) {
      if (!key.startsWith(ObjectLayout.segmentPrefix(bob.accountId))) continue;
      expect(Buffer.from(object).includes(secret)).toBe(false);
      const segment = openSegment(object, zstd);
      for (const entry of segment.entries) {
        held.add(entry.hash.toString('hex'));
        expect(Buffer.from(segment.read(entry)).equals(secretBlock)).toBe(false);
      }
    }
    expect(held).toEqual(v2Hashes);
    expect((await restoreIn(r2, bob.accountId, started.snapshotId)).equals(data)).toBe(true);
  });

  it('skips an out-of-range part with no side effect, and the copy still completes', async () => {
    const data = image();
    const volume = await r1.volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const source = await snapshotIn(r1, alice, volume.volumeId, data);
    const started = await copier.start(alice, { sourceRegion: 'r1', sourceSnapshotId: source.snapshotId });
    const record = await r2.snapshotRepo.get(started.snapshotId);
    const keys = [...r2.objects.objects.keys()];
    bytesRead = 0;
    for (const part of [-1, BLOCKS / PART_BLOCKS, 99])
      expect(await copier.runPart(started.snapshotId, part)).toBe('skipped');
    expect(await r2.snapshotRepo.get(started.snapshotId)).toEqual(record);
    expect([...r2.objects.objects.keys()]).toEqual(keys);
    expect(bytesRead).toBe(0);
    expect(await work()).toEqual(['part', 'part', 'part', 'completed']);
    expect((await restoreIn(r2, alice.accountId, started.snapshotId)).equals(data)).toBe(true);
  });

  it('returns the same copy for the same client token', async () => {
    const data = image();
    const volume = await r1.volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const source = await snapshotIn(r1, alice, volume.volumeId, data);
    const input = { sourceRegion: 'r1', sourceSnapshotId: source.snapshotId, clientToken: 'copy-1' };
    const a = await copier.start(alice, input);
    const b = await copier.start(alice, input);
    expect(b.snapshotId).toBe(a.snapshotId);
    expect(r2.queue.messages).toHaveLength(BLOCKS / PART_BLOCKS);
  });
});
