import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import { MemoryExportRepository } from '../../../../lib/adapters/memory/exports.ts';
import { MemoryIdentityRepository } from '../../../../lib/adapters/memory/identity.ts';
import { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import { MemorySnapshotRepository } from '../../../../lib/adapters/memory/snapshots.ts';
import { MemoryVolumeRepository } from '../../../../lib/adapters/memory/volumes.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE, blockHash } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest, encodeManifest } from '../../../../lib/core/format/manifest.ts';
import { SnapshotWriter } from '../../../../lib/core/format/snapshot-writer.ts';
import {
  parseVsnapFooter,
  parseVsnapHeader,
  parseVsnapIndex,
  readVsnapBlock,
  VSNAP_FOOTER_SIZE,
  vsnapHeaderLength,
} from '../../../../lib/core/format/vsnap.ts';
import { AccountService, bootstrapAccount } from '../../../../lib/core/identity/accounts.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { VolsnapError } from '../../../../lib/core/shared/errors.ts';
import { SnapshotService } from '../../../../lib/core/snapshots/snapshot-service.ts';
import { ExportService } from '../../../../lib/core/tasks/exports.ts';
import { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { testCaller } from '../../../support/callers.ts';

const zstd = createZstdCompressor();
const BLOCKS = 30;
let objects: MemoryObjectStore;
let queue: MemoryWorkQueue;
let snapshots: SnapshotService;
let volumes: VolumeService;
let exports: ExportService;
let exportRepo: MemoryExportRepository;
let alice: Caller;

beforeEach(() => {
  const clock = new ManualClock();
  objects = new MemoryObjectStore();
  queue = new MemoryWorkQueue();
  const volumeRepo = new MemoryVolumeRepository();
  snapshots = new SnapshotService({
    compressor: createZstdCompressor(),
    snapshots: new MemorySnapshotRepository(volumeRepo),
    volumes: volumeRepo,
    objects,
    clock,
    region: 'eu-west-1',
  });
  volumes = new VolumeService(volumeRepo, clock, 'eu-west-1', { regionBucket: 'b', extraBuckets: [] });
  exportRepo = new MemoryExportRepository();
  exports = new ExportService({
    exports: exportRepo,
    snapshots,
    objects,
    queue,
    clock,
    region: 'eu-west-1',
    compressor: zstd,
    partSize: 5 * 1024 * 1024,
  });
  alice = testCaller();
});

async function snapshotOf(data: Buffer) {
  const volume = await volumes.register(alice, { name: 'disk', sizeBytes: data.length });
  const snapshot = await snapshots.create(alice, { volumeId: volume.volumeId, name: 'golden' });
  const writer = new SnapshotWriter({
    volumeSize: data.length,
    compressor: zstd,
    nextSegmentId: async () =>
      (await snapshots.uploadUrls(alice, snapshot.snapshotId, 1)).segments[0]?.segmentId ?? '',
    store: (id, object) => objects.put(ObjectLayout.segment(alice.accountId, id), object),
  });
  for (let i = 0; i < BLOCKS; i++) await writer.add(i, data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  await objects.put(ObjectLayout.manifestUpload(snapshot.snapshotId), encodeManifest(await writer.finish()));
  return snapshots.complete(alice, snapshot.snapshotId);
}

function image(): Buffer {
  const data = Buffer.alloc(BLOCKS * BLOCK_SIZE);
  for (let i = 0; i < BLOCKS; i++) {
    if (i % 4 === 0) continue;
    (i % 4 === 1 ? Buffer.alloc(BLOCK_SIZE, `text ${i}`) : randomBytes(BLOCK_SIZE)).copy(
      data,
      i * BLOCK_SIZE,
    );
  }
  return data;
}

/** Delivers export messages until none is left; `crash` makes a delivery throw once. */
async function work(crash?: (part: number) => boolean): Promise<string[]> {
  const outcomes: string[] = [];
  while (queue.messages.length > 0) {
    const message = queue.messages.shift();
    if (message?.kind !== 'export.part') continue;
    if (crash?.(message.part)) {
      outcomes.push('crash');
      queue.messages.push(message);
      continue;
    }
    outcomes.push(await exports.runPart(message.exportId, message.part));
  }
  return outcomes;
}

function readVsnap(object: Buffer): Buffer {
  const footer = parseVsnapFooter(object.subarray(object.length - VSNAP_FOOTER_SIZE), object.length);
  const headerLength = vsnapHeaderLength(object.subarray(0, 32));
  parseVsnapHeader(object.subarray(0, headerLength), footer);
  const out = Buffer.alloc(footer.volumeSize);
  for (const e of parseVsnapIndex(
    object.subarray(footer.indexOffset, footer.indexOffset + footer.indexLength),
    footer,
    headerLength,
  ))
    Buffer.from(readVsnapBlock(zstd, e, object.subarray(e.offset, e.offset + e.storedLength))).copy(
      out,
      e.blockIndex * BLOCK_SIZE,
    );
  return out;
}

describe('exports', () => {
  it('write a snapshot as one vsnap object, in parts; a crashed part is redone alone', async () => {
    const data = image();
    const snapshot = await snapshotOf(data);
    const started = await exports.start(alice, snapshot.snapshotId, 'vsnap');
    expect(started).toMatchObject({ state: 'pending', format: 'vsnap' });
    expect(started.parts).toBeGreaterThan(1);
    let crashed = false;
    const outcomes = await work((part) => {
      if (part !== 1 || crashed) return false;
      crashed = true;
      return true;
    });
    expect(outcomes.filter((o) => o === 'crash')).toHaveLength(1);
    expect(outcomes.at(-1)).toBe('completed');
    const done = await exports.get(alice, started.exportId);
    expect(done).toMatchObject({ state: 'completed', progress: 100 });
    const object = Buffer.from((await objects.get(done.key)) ?? []);
    expect(object.length).toBe(done.size);
    expect(readVsnap(object).equals(data)).toBe(true);
    const { url, expiresInSeconds } = await exports.url(alice, done.exportId);
    expect(expiresInSeconds).toBe(3600);
    expect(url).toContain(done.key);
  });

  it('complete when S3 joined the parts but the table failed to record it: the redelivered part finds the object whole', async () => {
    const data = image();
    const snapshot = await snapshotOf(data);
    const started = await exports.start(alice, snapshot.snapshotId, 'raw');
    // The table fails for now exactly when the export would be recorded completed (after S3 joined it).
    const transition = exportRepo.transition.bind(exportRepo);
    let outage = true;
    exportRepo.transition = async (id, from, to, changes) => {
      if (to === 'completed' && outage) {
        outage = false;
        throw new VolsnapError('storage.unavailable', 'The table did not answer as expected.');
      }
      return transition(id, from, to, changes);
    };
    const outcomes: string[] = [];
    for (let rounds = 0; queue.messages.length > 0 && rounds < 50; rounds++) {
      const message = queue.messages.shift();
      if (message?.kind !== 'export.part') continue;
      try {
        outcomes.push(await exports.runPart(message.exportId, message.part));
      } catch {
        outcomes.push('retry');
        queue.messages.push(message);
      }
    }
    expect(outcomes).toContain('retry');
    expect(outcomes.at(-1)).toBe('completed');
    const done = await exports.get(alice, started.exportId);
    expect(done.state).toBe('completed');
    expect(Buffer.from((await objects.get(done.key)) ?? []).equals(data)).toBe(true);
  });

  it('read the neighbouring blocks of a segment with one ranged GET, not one per block, in every format', async () => {
    const data = image();
    const snapshot = await snapshotOf(data);
    const stored = (await snapshots.get(alice, snapshot.snapshotId)).stats?.blockCount ?? 0;
    const segmentGets: string[] = [];
    const getRange = objects.getRange.bind(objects);
    objects.getRange = (key, start, end) => {
      if (key.startsWith('segments/')) segmentGets.push(`${key}@${start}-${end}`);
      return getRange(key, start, end);
    };
    for (const format of ['vsnap', 'raw', 'qcow2'] as const) {
      segmentGets.length = 0;
      const started = await exports.start(alice, snapshot.snapshotId, format);
      expect(await work()).toContain('completed');
      // All the blocks are in one segment, end to end: one run per part that holds any of them.
      expect(segmentGets.length).toBeGreaterThan(0);
      expect(segmentGets.length).toBeLessThanOrEqual(started.parts);
      expect(segmentGets.length).toBeLessThan(stored);
      const object = Buffer.from((await objects.get(started.key)) ?? []);
      if (format === 'vsnap') expect(readVsnap(object).equals(data)).toBe(true);
      if (format === 'raw') expect(object.equals(data)).toBe(true);
    }
  });

  it('write a raw image, full length, zero blocks included', async () => {
    const data = image();
    const snapshot = await snapshotOf(data);
    const started = await exports.start(alice, snapshot.snapshotId, 'raw');
    expect(started.size).toBe(data.length);
    await work();
    const object = Buffer.from((await objects.get(started.key)) ?? []);
    expect(object.equals(data)).toBe(true);
  });

  it("are the owner's: others get 404; URLs are bounded to 7 days; deleting removes the object", async () => {
    const snapshot = await snapshotOf(image());
    const started = await exports.start(alice, snapshot.snapshotId, 'vsnap');
    await expect(exports.url(alice, started.exportId)).rejects.toMatchObject({ code: 'export.invalidState' });
    await work();
    await expect(exports.get(testCaller(), started.exportId)).rejects.toMatchObject({
      code: 'export.notFound',
    });
    await expect(exports.url(alice, started.exportId, 8 * 24 * 3600)).rejects.toMatchObject({
      code: 'request.invalid',
    });
    await exports.delete(alice, started.exportId);
    expect(await objects.head(started.key)).toBeUndefined();
    await expect(exports.get(alice, started.exportId)).rejects.toMatchObject({ code: 'export.notFound' });
  });

  it('fail cleanly when the snapshot is deleted before they are written, and need snapshot:export', async () => {
    const snapshot = await snapshotOf(image());
    const started = await exports.start(alice, snapshot.snapshotId, 'raw');
    await snapshots.delete(alice, snapshot.snapshotId);
    expect((await work()).filter((o) => o === 'error')).toHaveLength(1);
    const failed = await exports.get(alice, started.exportId);
    expect(failed.state).toBe('error');
    expect(failed.stateReason).toMatch(/deleted/);
    expect(objects.uploads.size).toBe(0);
    expect(await objects.head(started.key)).toBeUndefined();
    const member = { ...alice, role: 'member' as const, permissions: [] };
    const another = await snapshotOf(image());
    await expect(exports.start(member, another.snapshotId, 'vsnap')).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    await expect(exports.start(alice, another.snapshotId, 'qcow9' as never)).rejects.toMatchObject({
      code: 'request.invalid',
    });
    const manifest = decodeManifest(
      (await objects.get(ObjectLayout.manifest(another.snapshotId))) ?? new Uint8Array(),
    );
    expect(manifest.entries.length).toBeGreaterThan(0);
  });
  it('skip an out-of-range part with no side effect, and the export still completes', async () => {
    const data = image();
    const snapshot = await snapshotOf(data);
    const started = await exports.start(alice, snapshot.snapshotId, 'raw');
    const keys = [...objects.objects.keys()];
    for (const part of [-1, started.parts, started.parts + 5])
      expect(await exports.runPart(started.exportId, part)).toBe('skipped');
    expect(await exports.get(alice, started.exportId)).toEqual(started);
    expect([...objects.objects.keys()]).toEqual(keys);
    expect(objects.uploads.get(started.uploadId)?.parts.size).toBe(0);
    expect((await work()).at(-1)).toBe('completed');
    expect(Buffer.from((await objects.get(started.key)) ?? []).equals(data)).toBe(true);
  });
});

describe('qcow2 exports', () => {
  it('are read by qemu-img as the same disk: compare says identical, check finds no errors, zero blocks are unallocated', async () => {
    const { execFileSync: exec } = await import('node:child_process');
    const execFileSync = ((file: string, args: string[], options: object) => {
      try {
        return exec(file, args, options);
      } catch (error) {
        if ((error as { code?: string }).code === 'ENOENT')
          throw new Error(
            "This test needs qemu-img: install Debian's qemu-utils (apt-get install qemu-utils).",
          );
        throw error;
      }
    }) as typeof exec;
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const data = image();
    const snapshot = await snapshotOf(data);
    const started = await exports.start(alice, snapshot.snapshotId, 'qcow2');
    expect(started.parts).toBeGreaterThan(1);
    await work();
    const dir = mkdtempSync(join(tmpdir(), 'volsnap-qcow2-'));
    writeFileSync(join(dir, 'disk.raw'), data);
    writeFileSync(join(dir, 'disk.qcow2'), (await objects.get(started.key)) ?? new Uint8Array());
    const info = JSON.parse(
      execFileSync('qemu-img', ['info', '--output=json', join(dir, 'disk.qcow2')], { encoding: 'utf8' }),
    );
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': data.length, 'cluster-size': BLOCK_SIZE });
    expect(info['format-specific'].data.compat).toBe('1.1');
    const compare = execFileSync(
      'qemu-img',
      ['compare', '-f', 'raw', '-F', 'qcow2', join(dir, 'disk.raw'), join(dir, 'disk.qcow2')],
      {
        encoding: 'utf8',
      },
    );
    expect(compare).toContain('Images are identical');
    const check = JSON.parse(
      execFileSync('qemu-img', ['check', '--output=json', join(dir, 'disk.qcow2')], { encoding: 'utf8' }),
    );
    expect(check).toMatchObject({ 'check-errors': 0 });
    expect(check.leaks ?? 0).toBe(0);
    expect(check.corruptions ?? 0).toBe(0);
    const map = JSON.parse(
      execFileSync('qemu-img', ['map', '--output=json', join(dir, 'disk.qcow2')], { encoding: 'utf8' }),
    ) as {
      start: number;
      length: number;
      data: boolean;
    }[];
    const allocated = map.filter((m) => m.data).reduce((sum, m) => sum + m.length, 0);
    expect(allocated).toBe((BLOCKS - Math.ceil(BLOCKS / 4)) * BLOCK_SIZE);
  });
});

describe('exports to another bucket', () => {
  it('write to a bucket the deployment allows, under the prefix given; refuse other buckets and unsafe prefixes', async () => {
    const backups = new MemoryObjectStore();
    const toBackups = new ExportService({
      exports: new MemoryExportRepository(),
      snapshots,
      objects,
      queue,
      clock: new ManualClock(),
      region: 'eu-west-1',
      compressor: zstd,
      buckets: ['backups'],
      objectsIn: (bucket) => {
        if (bucket !== 'backups') throw new Error(`no bucket ${bucket}`);
        return backups;
      },
    });
    const data = image();
    const snapshot = await snapshotOf(data);
    const started = await toBackups.start(alice, snapshot.snapshotId, 'raw', {
      bucket: 'backups',
      prefix: 'nightly/db/',
    });
    expect(started).toMatchObject({ bucket: 'backups', key: `nightly/db/${started.exportId}.raw` });
    for (const m of queue.messages.splice(0))
      if (m.kind === 'export.part') await toBackups.runPart(m.exportId, m.part);
    expect(Buffer.from((await backups.get(started.key)) ?? []).equals(data)).toBe(true);
    expect(await objects.head(started.key)).toBeUndefined();
    expect((await toBackups.url(alice, started.exportId)).url).toContain('nightly/db/');
    await expect(
      toBackups.start(alice, snapshot.snapshotId, 'raw', { bucket: 'elsewhere' }),
    ).rejects.toMatchObject({
      code: 'request.invalid',
      message: /Allowed: backups/,
    });
    await expect(
      toBackups.start(alice, snapshot.snapshotId, 'raw', { bucket: 'backups', prefix: '../escape/' }),
    ).rejects.toMatchObject({ code: 'request.invalid' });
    await toBackups.delete(alice, started.exportId);
    expect(await backups.head(started.key)).toBeUndefined();
  });
});

describe('exports of a snapshot shared with another account', () => {
  it("hold only that snapshot's blocks, never those of its parent that share its segments", async () => {
    const clock = new ManualClock();
    const identity = new MemoryIdentityRepository();
    const volumeRepo = new MemoryVolumeRepository();
    const shared = new SnapshotService({
      compressor: createZstdCompressor(),
      snapshots: new MemorySnapshotRepository(volumeRepo),
      volumes: volumeRepo,
      objects,
      clock,
      region: 'eu-west-1',
      accounts: new AccountService({
        identity,
        clock,
        region: 'eu-west-1',
        usage: async () => ({ snapshots: 0, storedBytes: 0 }),
      }),
    });
    const sharedExports = new ExportService({
      exports: new MemoryExportRepository(),
      snapshots: shared,
      objects,
      queue,
      clock,
      region: 'eu-west-1',
      compressor: zstd,
      partSize: 5 * 1024 * 1024,
    });
    const callerOf = async (name: string) =>
      testCaller({ accountId: (await bootstrapAccount(identity, clock, { name })).account.accountId });
    const [owner, grantee] = [await callerOf('a-co'), await callerOf('b-co')];
    const volume = await new VolumeService(volumeRepo, clock, 'eu-west-1', {
      regionBucket: 'b',
      extraBuckets: [],
    }).register(owner, { name: 'disk', sizeBytes: BLOCKS * BLOCK_SIZE });
    const take = async (data: Buffer) => {
      const snapshot = await shared.create(owner, { volumeId: volume.volumeId });
      const parent = snapshot.parentSnapshotId
        ? decodeManifest(
            (await objects.get(ObjectLayout.manifest(snapshot.parentSnapshotId))) ?? new Uint8Array(),
          )
        : undefined;
      const writer = new SnapshotWriter({
        volumeSize: data.length,
        compressor: zstd,
        parent,
        nextSegmentId: async () =>
          (await shared.uploadUrls(owner, snapshot.snapshotId, 1)).segments[0]?.segmentId ?? '',
        store: (id, object) => objects.put(ObjectLayout.segment(owner.accountId, id), object),
      });
      for (let i = 0; i < BLOCKS; i++)
        await writer.add(i, data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
      await objects.put(
        ObjectLayout.manifestUpload(snapshot.snapshotId),
        encodeManifest(await writer.finish()),
      );
      return shared.complete(owner, snapshot.snapshotId);
    };
    // v1's block 2 holds a secret (random after it: stored raw); v2 rewrites it and reuses the rest.
    const secret = Buffer.from('SECRET-V1-do-not-share');
    const data = image();
    secret.copy(data, 2 * BLOCK_SIZE);
    const secretBlock = Buffer.from(data.subarray(2 * BLOCK_SIZE, 3 * BLOCK_SIZE));
    const v1 = await take(data);
    randomBytes(BLOCK_SIZE).copy(data, 2 * BLOCK_SIZE);
    const v2 = await take(data);
    expect(v2.parentSnapshotId).toBe(v1.snapshotId);
    expect(v2.stats?.reusedBlocks).toBeGreaterThan(0);
    await shared.share(owner, v2.snapshotId, grantee.accountId);
    const v2Manifest = decodeManifest(
      (await objects.get(ObjectLayout.manifest(v2.snapshotId))) ?? new Uint8Array(),
    );
    for (const format of ['vsnap', 'raw', 'qcow2'] as const) {
      const started = await sharedExports.start(grantee, v2.snapshotId, format);
      for (const m of queue.messages.splice(0))
        if (m.kind === 'export.part') await sharedExports.runPart(m.exportId, m.part);
      expect((await sharedExports.get(grantee, started.exportId)).state, format).toBe('completed');
      const object = Buffer.from((await objects.get(started.key)) ?? []);
      expect(object.length, format).toBeGreaterThan(0);
      expect(object.includes(secret), format).toBe(false);
      expect(object.includes(blockHash(secretBlock)), format).toBe(false);
      if (format === 'raw') expect(object.equals(data)).toBe(true);
      if (format === 'vsnap') {
        expect(readVsnap(object).equals(data)).toBe(true);
        const footer = parseVsnapFooter(object.subarray(object.length - VSNAP_FOOTER_SIZE), object.length);
        const index = parseVsnapIndex(
          object.subarray(footer.indexOffset, footer.indexOffset + footer.indexLength),
          footer,
          vsnapHeaderLength(object.subarray(0, 32)),
        );
        expect(index.map((e) => e.blockIndex)).toEqual(v2Manifest.entries.map((e) => e.blockIndex));
      }
    }
  });
});

describe("export prefixes in the region's own bucket", () => {
  it("keep the export inside the account's export area whatever the prefix names (no planting under segments/, manifests/, uploads/, images/)", async () => {
    const snapshot = await snapshotOf(image());
    const other = 'acct-zzzzzzzzzzzzzzzz';
    for (const prefix of [
      `segments/${other}/`,
      `images/${other}/`,
      `uploads/${other}/`,
      'uploads/manifests/',
      'manifests/',
      `exports/${other}/`,
      'nightly/',
    ]) {
      const started = await exports.start(alice, snapshot.snapshotId, 'vsnap', { prefix });
      expect(started.bucket).toBeUndefined();
      expect(started.key).toBe(`exports/${alice.accountId}/${prefix}${started.exportId}.vsnap`);
    }
    for (const m of queue.messages.splice(0))
      if (m.kind === 'export.part') await exports.runPart(m.exportId, m.part);
    const keys: string[] = [];
    for await (const object of objects.list('')) keys.push(object.key);
    const outside = keys.filter(
      (key) => key.endsWith('.vsnap') && !key.startsWith(`exports/${alice.accountId}/`),
    );
    expect(outside).toEqual([]);
    expect(keys.filter((key) => key.endsWith('.vsnap'))).toHaveLength(7);
  });

  it('refuse absolute, empty-folder and dot prefixes with 400 request.invalid, before any storage call', async () => {
    const snapshot = await snapshotOf(image());
    for (const prefix of [
      '//',
      '/abs/',
      '/etc/',
      'a//b/',
      './',
      'a/./b/',
      '../',
      'a/../',
      '..%2f',
      'x'.repeat(513),
    ]) {
      await expect(
        exports.start(alice, snapshot.snapshotId, 'raw', { prefix }),
        prefix,
      ).rejects.toMatchObject({ code: 'request.invalid', message: /not a safe key prefix/ });
    }
    expect(queue.messages.filter((m) => m.kind === 'export.part')).toEqual([]);
  });
});
