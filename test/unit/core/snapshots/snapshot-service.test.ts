import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest, encodeManifest } from '../../../../lib/core/format/manifest.ts';
import { planReads } from '../../../../lib/core/format/restore-plan.ts';
import { readSegmentBlock, SegmentBuilder } from '../../../../lib/core/format/segment.ts';
import { SnapshotWriter } from '../../../../lib/core/format/snapshot-writer.ts';
import type { AccountService } from '../../../../lib/core/identity/accounts.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { newId } from '../../../../lib/core/shared/ids.ts';
import type { SnapshotService } from '../../../../lib/core/snapshots/snapshot-service.ts';
import type { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { testCaller } from '../../../support/callers.ts';
import { type MemoryRegion, memoryRegion } from '../../../support/memory-region.ts';
import { writeSnapshot } from '../../../support/writes.ts';

const zstd = createZstdCompressor();
const alice: Caller = testCaller();
const bob: Caller = testCaller();
const BLOCKS = 40;

let region: MemoryRegion;
let objects: MemoryObjectStore;
let snapshots: SnapshotService;
let volumes: VolumeService;

beforeEach(() => {
  region = memoryRegion('eu-west-1');
  ({ snapshots, volumes } = region);
  objects = region.ports.objects;
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
  const pending = await snapshots.create(caller, { volumeId, name: 'test' });
  return writeSnapshot(region, caller, pending, data, { segmentTargetSize: 4 * BLOCK_SIZE });
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
    const builder = new SegmentBuilder(zstd);
    const entry = builder.add(randomBytes(BLOCK_SIZE));
    const object = Buffer.from(builder.seal());
    const manifest = {
      volumeSize: 8 * BLOCK_SIZE,
      blockSize: BLOCK_SIZE,
      segments: new Map([[segmentId, object.length]]),
      entries: [{ blockIndex: 0, segmentId, ...entry }],
    };
    await objects.put(ObjectLayout.manifestUpload(s.snapshotId), encodeManifest(manifest));
    await expect(snapshots.complete(alice, s.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.segmentsMissing',
      details: { segmentIds: [segmentId] },
    });
    await objects.put(
      ObjectLayout.segment(alice.accountId, segmentId),
      object.subarray(0, object.length - 1),
    );
    await expect(snapshots.complete(alice, s.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.segmentsMissing',
    });
    expect((await snapshots.get(alice, s.snapshotId)).state).toBe('pending');
    await objects.put(ObjectLayout.segment(alice.accountId, segmentId), object);
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
      code: 'snapshot.manifestInvalid',
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

  it('with a corrupt manifest: 400 manifestInvalid and error, like every other unsound manifest', async () => {
    const s = await pending();
    await objects.put(ObjectLayout.manifestUpload(s.snapshotId), randomBytes(500));
    await expect(snapshots.complete(alice, s.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.manifestInvalid',
      status: 400,
    });
    expect((await snapshots.get(alice, s.snapshotId)).state).toBe('error');
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

describe('sharing and quotas', () => {
  let owner: Caller;
  let grantee: Caller;
  let stranger: Caller;
  let accounts: AccountService;

  beforeEach(async () => {
    accounts = region.accounts;
    [owner, grantee, stranger] = await Promise.all([
      region.account('owner-co'),
      region.account('grantee-co'),
      region.account('stranger-co'),
    ]);
  });

  it("let a grantee read only the shared snapshot's own segments, hide whom it is shared with, and stop at unshare", async () => {
    const data = image();
    const volume = await volumes.register(owner, { name: 'disk', sizeBytes: data.length });
    const { snapshot } = await takeSnapshot(owner, volume.volumeId, data);
    const other = await takeSnapshot(
      owner,
      (await volumes.register(owner, { name: 'x', sizeBytes: data.length })).volumeId,
      image(),
    );
    await expect(snapshots.get(grantee, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    const shared = await snapshots.share(owner, snapshot.snapshotId, 'grantee-co');
    expect(shared.sharedWith).toEqual([grantee.accountId]);
    const seen = await snapshots.get(grantee, snapshot.snapshotId);
    expect(seen.sharedWith).toBeUndefined();
    const own = decodeManifest(
      (await objects.get(ObjectLayout.manifest(snapshot.snapshotId))) ?? new Uint8Array(),
    );
    const foreign = decodeManifest(
      (await objects.get(ObjectLayout.manifest(other.snapshot.snapshotId))) ?? new Uint8Array(),
    );
    const [mine] = own.entries;
    const [notMine] = foreign.entries;
    const extentOf = (e: { segmentId: string; offset: number; storedLength: number } | undefined) => ({
      segmentId: e?.segmentId ?? '',
      start: e?.offset ?? 0,
      end: (e?.offset ?? 0) + (e?.storedLength ?? 0),
    });
    expect((await snapshots.segmentUrls(grantee, snapshot.snapshotId, [extentOf(mine)])).ranges).toHaveLength(
      1,
    );
    await expect(
      snapshots.segmentUrls(grantee, snapshot.snapshotId, [extentOf(notMine)]),
    ).rejects.toMatchObject({
      code: 'snapshot.rangeNotShared',
    });
    await expect(snapshots.delete(grantee, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    await expect(snapshots.share(grantee, snapshot.snapshotId, 'stranger-co')).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    await expect(snapshots.get(stranger, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    await snapshots.unshare(owner, snapshot.snapshotId, grantee.accountId);
    await expect(snapshots.manifestUrl(grantee, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
  });

  it("start a grantee's volume made from a shared snapshot with a full snapshot of its own (no data shared across accounts)", async () => {
    const data = image();
    const volume = await volumes.register(owner, { name: 'disk', sizeBytes: data.length });
    const { snapshot } = await takeSnapshot(owner, volume.volumeId, data);
    await snapshots.share(owner, snapshot.snapshotId, grantee.accountId);
    const source = await snapshots.sourceForVolume(grantee, snapshot.snapshotId);
    const copy = await volumes.register(grantee, { name: 'mine', source });
    const first = await takeSnapshot(grantee, copy.volumeId, data);
    expect(first.snapshot.parentSnapshotId).toBeUndefined();
    expect(first.report.reusedBlocks).toBe(0);
    expect((await restore(grantee, first.snapshot.snapshotId, data.length)).equals(data)).toBe(true);
  });

  it('publish to every account unless the owner blocks public sharing, which also hides what was public', async () => {
    const data = image(8);
    const volume = await volumes.register(owner, { name: 'disk', sizeBytes: data.length });
    const { snapshot } = await takeSnapshot(owner, volume.volumeId, data);
    await snapshots.publish(owner, snapshot.snapshotId);
    expect((await snapshots.get(stranger, snapshot.snapshotId)).public).toBe(true);
    expect(
      (await snapshots.list(stranger, {}, { limit: 10 }, 'public')).items.map((s) => s.snapshotId),
    ).toEqual([snapshot.snapshotId]);
    await accounts.updateSettings(owner, { blockPublicSharing: true });
    await expect(snapshots.get(stranger, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    await snapshots.unpublish(owner, snapshot.snapshotId);
    await expect(snapshots.publish(owner, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.publicSharingBlocked',
    });
  });

  it('refuse a snapshot past the quota, naming the limit and the usage; deleting one makes room', async () => {
    const operator = await region.account('operator', { operator: true });
    await accounts.setQuota(operator, 'owner-co', { maxSnapshots: 1 });
    const volume = await volumes.register(owner, { name: 'disk', sizeBytes: 8 * BLOCK_SIZE });
    const first = await snapshots.create(owner, { volumeId: volume.volumeId });
    const refused = await snapshots.create(owner, { volumeId: volume.volumeId }).catch((e) => e);
    expect(refused).toMatchObject({
      code: 'quota.exceeded',
      details: { quota: 'snapshots', limit: 1, used: 1 },
    });
    expect(refused.message).toMatch(/1 snapshots in eu-west-1, its quota is 1/);
    expect((await accounts.usage(owner)).snapshots).toEqual({ used: 1, limit: 1 });
    await snapshots.delete(owner, first.snapshotId);
    await expect(snapshots.create(owner, { volumeId: volume.volumeId })).resolves.toMatchObject({
      state: 'pending',
    });
  });

  it('hold members to their permissions', async () => {
    const volume = await volumes.register(owner, { name: 'disk', sizeBytes: 8 * BLOCK_SIZE });
    const reader = { ...owner, userName: 'reader', role: 'member' as const, permissions: [] };
    await expect(snapshots.create(reader, { volumeId: volume.volumeId })).rejects.toMatchObject({
      code: 'auth.forbidden',
      details: { permission: 'snapshot:create' },
    });
    await expect(volumes.register(reader, { name: 'd', sizeBytes: BLOCK_SIZE })).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    const creator = { ...reader, permissions: ['snapshot:create' as const] };
    const created = await snapshots.create(creator, { volumeId: volume.volumeId });
    await expect(snapshots.delete(creator, created.snapshotId)).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    expect((await snapshots.get(reader, created.snapshotId)).snapshotId).toBe(created.snapshotId);
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
    const entries = [e(0, 's1', 0), e(1, 's1', 100), e(2, 's1', 300), e(3, 's2', 0), e(4, 's1', 100)];
    const shape = (ranges: ReturnType<typeof planReads>) =>
      ranges.map((r) => [r.segmentId, r.start, r.end, r.entries.map((x) => x.blockIndex)]);
    expect(shape(planReads({ entries }, undefined, 0))).toEqual([
      ['s1', 0, 200, [0, 1, 4]],
      ['s1', 300, 400, [2]],
      ['s2', 0, 100, [3]],
    ]);
    // A gap of blocks not wanted, up to the limit, is read through rather than split into two GETs.
    expect(shape(planReads({ entries }, undefined, 100))).toEqual([
      ['s1', 0, 400, [0, 1, 4, 2]],
      ['s2', 0, 100, [3]],
    ]);
    expect(shape(planReads({ entries }, 350, 100))).toEqual([
      ['s1', 0, 200, [0, 1, 4]],
      ['s1', 300, 400, [2]],
      ['s2', 0, 100, [3]],
    ]);
  });
});

describe('creating a snapshot to write now (createForUpload)', () => {
  /** Writes `data` through what the create answered, asking `upload-urls` only past its first URLs. */
  async function writeThrough(
    caller: Caller,
    created: Awaited<ReturnType<SnapshotService['createForUpload']>>,
    data: Buffer,
  ) {
    const { snapshot, upload, parentManifest } = created;
    if (!upload?.manifestUploadId) throw new Error('no upload URLs answered');
    const given = upload.segments.map((s) => s.segmentId);
    const used: string[] = [];
    const parentBytes = parentManifest
      ? await objects.get(decodeURIComponent(new URL(parentManifest.url).pathname.slice(1)))
      : undefined;
    const writer = new SnapshotWriter({
      volumeSize: data.length,
      compressor: zstd,
      parent: parentBytes ? decodeManifest(parentBytes) : undefined,
      segmentTargetSize: 4 * BLOCK_SIZE,
      nextSegmentId: async () => {
        const id =
          given.shift() ??
          (await snapshots.uploadUrls(caller, snapshot.snapshotId, 1)).segments[0]?.segmentId ??
          '';
        used.push(id);
        return id;
      },
      store: (id, object) => objects.put(ObjectLayout.segment(caller.accountId, id), object),
    });
    for (let i = 0; i * BLOCK_SIZE < data.length; i++)
      await writer.add(i, data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
    await objects.put(
      ObjectLayout.manifestStaging(snapshot.snapshotId, upload.manifestUploadId),
      encodeManifest(await writer.finish()),
    );
    const completed = await snapshots.complete(caller, snapshot.snapshotId, {
      manifestUploadId: upload.manifestUploadId,
    });
    return { completed, used, unused: given };
  }

  it("answers the first upload URLs with a manifest key, and for an incremental its parent's manifest URL; they complete and restore", async () => {
    const data = image();
    const volume = await volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const first = await snapshots.createForUpload(alice, { volumeId: volume.volumeId }, { segments: 2 });
    expect(first.snapshot.state).toBe('pending');
    expect(first.upload?.segments.map((s) => s.url)).toEqual(
      first.upload?.segments.map((s) =>
        expect.stringContaining(ObjectLayout.segment(alice.accountId, s.segmentId)),
      ),
    );
    expect(first.upload?.segments).toHaveLength(2);
    expect(first.upload?.manifestUrl).toContain(
      ObjectLayout.manifestStaging(first.snapshot.snapshotId, first.upload?.manifestUploadId ?? ''),
    );
    expect(first.parentManifest).toBeUndefined();
    const written = await writeThrough(alice, first, data);
    expect(written.completed.state).toBe('completed');
    expect(written.used.length).toBeGreaterThan(2); // past the first URLs, upload-urls as before

    const changed = Buffer.from(data);
    randomBytes(BLOCK_SIZE).copy(changed, 5 * BLOCK_SIZE);
    const second = await snapshots.createForUpload(alice, { volumeId: volume.volumeId }, { segments: 2 });
    expect(second.snapshot.parentSnapshotId).toBe(first.snapshot.snapshotId);
    expect(second.parentManifest?.url).toContain(ObjectLayout.manifest(first.snapshot.snapshotId));
    const incremental = await writeThrough(alice, second, changed);
    expect(incremental.completed.state).toBe('completed');
    expect(incremental.completed.parentSnapshotId).toBe(first.snapshot.snapshotId);
    expect(incremental.used).toHaveLength(1);
    expect((await restore(alice, second.snapshot.snapshotId, changed.length)).equals(changed)).toBe(true);
    // The URL it did not use was retired at completion: an empty tombstone, nothing stored through it.
    const [unused] = incremental.unused;
    expect(unused).toBeDefined();
    expect((await objects.get(ObjectLayout.segment(alice.accountId, unused ?? '')))?.length).toBe(0);
  });

  it('answers no URLs for a snapshot not to be written now: queued, or a completed one a client token names', async () => {
    const data = image();
    const volume = await volumes.register(alice, { name: 'disk', sizeBytes: data.length });
    const queued = await snapshots.createForUpload(
      alice,
      { volumeId: volume.volumeId, queued: true },
      { segments: 2 },
    );
    expect(queued.snapshot.state).toBe('queued');
    expect(queued.upload).toBeUndefined();
    expect(queued.parentManifest).toBeUndefined();

    const made = await snapshots.createForUpload(
      alice,
      { volumeId: volume.volumeId, clientToken: 'once' },
      { segments: 2 },
    );
    await writeThrough(alice, made, data);
    const replay = await snapshots.createForUpload(
      alice,
      { volumeId: volume.volumeId, clientToken: 'once' },
      { segments: 2 },
    );
    expect(replay.snapshot).toMatchObject({ snapshotId: made.snapshot.snapshotId, state: 'completed' });
    expect(replay.upload).toBeUndefined();
  });

  it('refuses a bad URL count as upload-urls does, and leaves no URLs issued to anyone else', async () => {
    const volume = await volumes.register(alice, { name: 'disk', sizeBytes: BLOCKS * BLOCK_SIZE });
    await expect(
      snapshots.createForUpload(alice, { volumeId: volume.volumeId }, { segments: 1000 }),
    ).rejects.toMatchObject({ code: 'request.invalid' });
    await expect(
      snapshots.createForUpload(bob, { volumeId: volume.volumeId }, { segments: 2 }),
    ).rejects.toMatchObject({ code: 'volume.notFound' });
  });
});
