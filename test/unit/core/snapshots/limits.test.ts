import { beforeEach, describe, expect, it } from 'vitest';
import type { ManualClock } from '../../../../lib/adapters/clock.ts';
import type { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import type { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { encodeManifest } from '../../../../lib/core/format/manifest.ts';
import { SnapshotWriter } from '../../../../lib/core/format/snapshot-writer.ts';
import {
  type AccountService,
  DEFAULT_QUOTA,
  type QuotaLimits,
} from '../../../../lib/core/identity/accounts.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { newId } from '../../../../lib/core/shared/ids.ts';
import type { SnapshotService } from '../../../../lib/core/snapshots/snapshot-service.ts';
import type { ExportService } from '../../../../lib/core/tasks/exports.ts';
import type { SnapshotImporter } from '../../../../lib/core/tasks/imports.ts';
import type { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { memoryRegion } from '../../../support/memory-region.ts';

const zstd = createZstdCompressor();
let clock: ManualClock;
let objects: MemoryObjectStore;
let queue: MemoryWorkQueue;
let accounts: AccountService;
let snapshots: SnapshotService;
let volumes: VolumeService;
let exports: ExportService;
let importer: SnapshotImporter;
let alice: Caller;
let operator: Caller;

beforeEach(async () => {
  const region = memoryRegion('eu-west-1', {
    settings: { tuning: { exports: { partSize: 5 * 1024 * 1024 } } },
  });
  ({ clock, accounts, snapshots, volumes, exports, importer } = region);
  ({ objects, queue } = region.ports);
  alice = await region.account('alice-co');
  operator = await region.account('operator', { operator: true });
});

const limit = (quota: Partial<QuotaLimits>) => accounts.setQuota(operator, 'alice-co', quota);
const disk = (blocks = 8) => volumes.register(alice, { name: 'disk', sizeBytes: blocks * BLOCK_SIZE });

/** A completed snapshot of a volume of `blocks` blocks, block 0 holding data, the rest never written. */
async function completedSnapshot(blocks: number) {
  const volume = await disk(blocks);
  const snapshot = await snapshots.create(alice, { volumeId: volume.volumeId });
  const writer = new SnapshotWriter({
    volumeSize: blocks * BLOCK_SIZE,
    compressor: zstd,
    nextSegmentId: async () =>
      (await snapshots.uploadUrls(alice, snapshot.snapshotId, 1)).segments[0]?.segmentId ?? '',
    store: (id, object) => objects.put(ObjectLayout.segment(alice.accountId, id), object),
  });
  await writer.add(0, Buffer.alloc(BLOCK_SIZE, 'data'));
  await objects.put(ObjectLayout.manifestUpload(snapshot.snapshotId), encodeManifest(await writer.finish()));
  return snapshots.complete(alice, snapshot.snapshotId);
}

async function runExports(): Promise<void> {
  while (queue.messages.length > 0) {
    const message = queue.messages.shift();
    if (message?.kind === 'export.part') await exports.runPart(message.exportId, message.part);
  }
}

describe('snapshots in flight', () => {
  it('refuse the 101st pending snapshot of an account with the default limits, naming the limit; a finished one makes room', async () => {
    const volumeIds: string[] = [];
    for (let v = 0; v < 5; v++) volumeIds.push((await disk()).volumeId);
    const created = [];
    for (const volumeId of volumeIds)
      for (let i = 0; i < DEFAULT_QUOTA.maxPendingSnapshotsPerVolume; i++)
        created.push(await snapshots.create(alice, { volumeId }));
    expect(created).toHaveLength(DEFAULT_QUOTA.maxPendingSnapshots);
    const refused = await snapshots.create(alice, { volumeId: (await disk()).volumeId }).catch((e) => e);
    expect(refused).toMatchObject({
      code: 'quota.inFlight',
      status: 429,
      details: { region: 'eu-west-1', quota: 'maxPendingSnapshots', limit: 100, used: 100 },
    });
    expect(refused.message).toMatch(
      /100 snapshots being written in eu-west-1, its limit \(maxPendingSnapshots\) is 100: wait/,
    );
    await snapshots.fail(alice, created[0]?.snapshotId ?? '', 'gave up');
    await expect(snapshots.create(alice, { volumeId: volumeIds[0] ?? '' })).resolves.toMatchObject({
      state: 'pending',
    });
  });

  it('refuse a pending snapshot past the limit of its volume, queued ones included; other volumes still take them', async () => {
    await limit({ maxPendingSnapshotsPerVolume: 2 });
    const volume = await disk();
    await snapshots.create(alice, { volumeId: volume.volumeId, queued: true });
    await snapshots.create(alice, { volumeId: volume.volumeId });
    await expect(snapshots.create(alice, { volumeId: volume.volumeId })).rejects.toMatchObject({
      code: 'quota.inFlight',
      details: { quota: 'maxPendingSnapshotsPerVolume', limit: 2, used: 2 },
    });
    await expect(snapshots.create(alice, { volumeId: (await disk()).volumeId })).resolves.toBeDefined();
  });

  it('refuse a copy or an import past their own limits, apart from pending snapshots', async () => {
    await limit({ maxCopiesInFlight: 1, maxImportsInFlight: 1, maxPendingSnapshots: 1 });
    const copyFrom = { region: 'us-east-1', snapshotId: newId('snapshot'), accountId: alice.accountId };
    const importedFrom = {
      source: 'https://example.com/d.raw',
      format: 'raw' as const,
      ref: newId('request'),
    };
    await snapshots.create(alice, { volumeId: (await disk()).volumeId });
    await snapshots.createCopy(alice, await disk(), {}, { from: copyFrom, parts: 1 });
    await expect(
      snapshots.createCopy(alice, await disk(), {}, { from: copyFrom, parts: 1 }),
    ).rejects.toMatchObject({
      code: 'quota.inFlight',
      details: { quota: 'maxCopiesInFlight', limit: 1, used: 1 },
    });
    await snapshots.createImport(alice, await disk(), {}, { importedFrom, parts: 1 });
    await expect(
      snapshots.createImport(alice, await disk(), {}, { importedFrom, parts: 1 }),
    ).rejects.toMatchObject({ code: 'quota.inFlight', details: { quota: 'maxImportsInFlight', used: 1 } });
    const usage = await accounts.usage(alice);
    expect(usage.pendingSnapshots).toEqual({ used: 1, limit: 1 });
    expect(usage.copiesInFlight).toEqual({ used: 1, limit: 1 });
    expect(usage.importsInFlight).toEqual({ used: 1, limit: 1 });
  });
});

describe('exports', () => {
  it('reserve their full size in the stored bytes before they are written (a raw export of a sparse volume: all of it), and give it back when deleted', async () => {
    const snapshot = await completedSnapshot(64);
    const stored = snapshot.stats?.newBytes ?? 0;
    expect((await accounts.usage(alice)).storedBytes).toEqual({
      used: stored,
      limit: DEFAULT_QUOTA.maxStoredBytes,
      exports: 0,
    });
    const raw = await exports.start(alice, snapshot.snapshotId, 'raw');
    expect(raw.size).toBe(64 * BLOCK_SIZE);
    expect((await accounts.usage(alice)).storedBytes).toMatchObject({
      used: stored + 64 * BLOCK_SIZE,
      exports: 64 * BLOCK_SIZE,
    });
    await runExports();
    expect((await exports.get(alice, raw.exportId)).state).toBe('completed');
    expect((await accounts.usage(alice)).storedBytes).toMatchObject({ used: stored + 64 * BLOCK_SIZE });
    await exports.delete(alice, raw.exportId);
    expect((await accounts.usage(alice)).storedBytes).toMatchObject({ used: stored, exports: 0 });
  });

  it('are refused with quota.exceeded when their object would pass the stored-bytes quota, leaving no upload behind', async () => {
    const snapshot = await completedSnapshot(64);
    const stored = snapshot.stats?.newBytes ?? 0;
    await limit({ maxStoredBytes: stored + 64 * BLOCK_SIZE - 1 });
    const refused = await exports.start(alice, snapshot.snapshotId, 'raw').catch((e) => e);
    expect(refused).toMatchObject({
      code: 'quota.exceeded',
      details: {
        quota: 'storedBytes',
        limit: stored + 64 * BLOCK_SIZE - 1,
        used: stored,
        size: 64 * BLOCK_SIZE,
      },
    });
    expect(objects.uploads.size).toBe(0);
    expect((await exports.list(alice, { limit: 10 })).items).toEqual([]);
    // vsnap stores only the data: it fits.
    await expect(exports.start(alice, snapshot.snapshotId, 'vsnap')).resolves.toMatchObject({
      state: 'pending',
    });
  });

  it('give their bytes back when they fail or expire, and their place in flight when they end', async () => {
    const snapshot = await completedSnapshot(16);
    const stored = snapshot.stats?.newBytes ?? 0;
    await limit({ maxExportsInFlight: 2 });
    const first = await exports.start(alice, snapshot.snapshotId, 'raw');
    const second = await exports.start(alice, snapshot.snapshotId, 'raw');
    const refused = await exports.start(alice, snapshot.snapshotId, 'raw').catch((e) => e);
    expect(refused).toMatchObject({
      code: 'quota.inFlight',
      details: { quota: 'maxExportsInFlight', limit: 2, used: 2 },
    });
    expect((await accounts.usage(alice)).exportsInFlight).toEqual({ used: 2, limit: 2 });
    await exports.fail(await exports.get(alice, first.exportId), 'test');
    expect((await accounts.usage(alice)).storedBytes).toMatchObject({ used: stored + 16 * BLOCK_SIZE });
    await runExports();
    expect((await accounts.usage(alice)).exportsInFlight).toEqual({ used: 0, limit: 2 });
    await exports.expire(await exports.get(alice, second.exportId));
    // A failed export removed gives nothing back twice.
    await exports.delete(alice, first.exportId);
    expect((await accounts.usage(alice)).storedBytes).toMatchObject({ used: stored, exports: 0 });
  });
});

describe('uploads for import', () => {
  it('are refused past the open-upload limit; an import of one, or its URLs expiring, makes room', async () => {
    await limit({ maxOpenUploads: 2 });
    const first = await importer.createUpload(alice, BLOCK_SIZE);
    await importer.createUpload(alice, BLOCK_SIZE);
    const refused = await importer.createUpload(alice, BLOCK_SIZE).catch((e) => e);
    expect(refused).toMatchObject({
      code: 'quota.inFlight',
      details: { quota: 'maxOpenUploads', limit: 2, used: 2 },
    });
    expect(refused.message).toMatch(/2 open uploads .* import or let expire/);
    expect((await accounts.usage(alice)).openUploads).toEqual({ used: 2, limit: 2 });
    const key = ObjectLayout.fileUpload(alice.accountId, first.ref);
    const etag = await objects.uploadPart(key, first.uploadId, 1, Buffer.alloc(BLOCK_SIZE, 1));
    await importer.start(alice, {
      upload: { ref: first.ref, uploadId: first.uploadId, parts: [{ partNumber: 1, etag }] },
      format: 'raw',
      sizeBytes: BLOCK_SIZE,
    });
    expect((await accounts.usage(alice)).openUploads).toEqual({ used: 1, limit: 2 });
    await importer.createUpload(alice, BLOCK_SIZE);
    await expect(importer.createUpload(alice, BLOCK_SIZE)).rejects.toMatchObject({ code: 'quota.inFlight' });
    clock.advance(first.expiresInSeconds * 1000);
    expect((await accounts.usage(alice)).openUploads).toEqual({ used: 0, limit: 2 });
    await expect(importer.createUpload(alice, BLOCK_SIZE)).resolves.toBeDefined();
  });
});

describe('account usage', () => {
  it('shows every limit beside its use, and the operator sets each one, the others kept', async () => {
    await limit({ maxCopiesInFlight: 3 });
    const { limits } = await limit({ requestsPerSecond: 10, requestBurst: 30 });
    expect(limits).toMatchObject({ maxCopiesInFlight: 3, requestsPerSecond: 10, requestBurst: 30 });
    const usage = await accounts.usage(alice);
    expect(usage).toMatchObject({
      snapshots: { used: 0, limit: DEFAULT_QUOTA.maxSnapshots },
      storedBytes: { used: 0, limit: DEFAULT_QUOTA.maxStoredBytes, exports: 0 },
      pendingSnapshots: { used: 0, limit: 100 },
      pendingSnapshotsPerVolume: { limit: 20 },
      copiesInFlight: { used: 0, limit: 3 },
      importsInFlight: { used: 0, limit: 20 },
      exportsInFlight: { used: 0, limit: 20 },
      openUploads: { used: 0, limit: 20 },
      requestRate: { used: 0, limit: 30, perSeconds: 3, requestsPerSecond: 10 },
    });
    await expect(limit({ requestsPerSecond: 0 })).rejects.toMatchObject({ code: 'request.invalid' });
    expect((await accounts.setQuota(operator, 'alice-co', null)).limits).toEqual(DEFAULT_QUOTA);
  });
});
