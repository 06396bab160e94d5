import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import { httpRemoteOpener } from '../../../../lib/adapters/http/remote.ts';
import { MemoryExportRepository } from '../../../../lib/adapters/memory/exports.ts';
import { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import { MemorySnapshotRepository } from '../../../../lib/adapters/memory/snapshots.ts';
import { MemoryVolumeRepository } from '../../../../lib/adapters/memory/volumes.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest, encodeManifest } from '../../../../lib/core/format/manifest.ts';
import { readSegmentBlock } from '../../../../lib/core/format/segment.ts';
import { SnapshotWriter } from '../../../../lib/core/format/snapshot-writer.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { SnapshotService } from '../../../../lib/core/snapshots/snapshot-service.ts';
import { ExportService } from '../../../../lib/core/tasks/exports.ts';
import { type RemoteObject, SnapshotImporter } from '../../../../lib/core/tasks/imports.ts';
import { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { testCaller } from '../../../support/callers.ts';

const zstd = createZstdCompressor();
const BLOCKS = 20;

function region() {
  const clock = new ManualClock();
  const objects = new MemoryObjectStore();
  const queue = new MemoryWorkQueue();
  const volumeRepo = new MemoryVolumeRepository();
  const snapshotRepo = new MemorySnapshotRepository(volumeRepo);
  const snapshots = new SnapshotService({
    compressor: createZstdCompressor(),
    snapshots: snapshotRepo,
    volumes: volumeRepo,
    objects,
    clock,
    region: 'r',
    queue,
  });
  const volumes = new VolumeService(volumeRepo, clock, 'r', { regionBucket: 'b', extraBuckets: [] });
  return { clock, objects, queue, volumeRepo, snapshotRepo, snapshots, volumes };
}

/** Bytes served as a URL: the object, with ranged reads. */
const served = new Map<string, Buffer>();
/** The ranged GETs made of each URL (`start-end`). */
const ranges = new Map<string, string[]>();
const open = async (url: string): Promise<RemoteObject> => {
  const bytes = served.get(url);
  if (!bytes) throw new Error(`nothing at ${url}`);
  return {
    size: bytes.length,
    range: async (start, end) => {
      ranges.set(url, [...(ranges.get(url) ?? []), `${start}-${end}`]);
      return Uint8Array.from(bytes.subarray(start, end));
    },
  };
};

let a: ReturnType<typeof region>;
let b: ReturnType<typeof region>;
let alice: Caller;
let bob: Caller;
let importer: SnapshotImporter;

beforeEach(() => {
  a = region();
  b = region();
  alice = testCaller();
  bob = testCaller();
  importer = new SnapshotImporter({
    open,
    snapshots: b.snapshotRepo,
    volumes: b.volumeRepo,
    objects: b.objects,
    service: b.snapshots,
    compressor: zstd,
    clock: b.clock,
    region: 'r2',
    partBlocks: 8,
  });
});

function image(): Buffer {
  const data = Buffer.alloc(BLOCKS * BLOCK_SIZE);
  for (let i = 0; i < BLOCKS; i++) {
    if (i % 4 === 0) continue;
    (i % 4 === 1 ? Buffer.alloc(BLOCK_SIZE, `t${i}`) : randomBytes(BLOCK_SIZE)).copy(data, i * BLOCK_SIZE);
  }
  return data;
}

/** A vsnap (or qcow2) export of `data` made in region a, served at a URL. */
async function vsnapUrl(data: Buffer, format: 'vsnap' | 'qcow2' = 'vsnap'): Promise<string> {
  const volume = await a.volumes.register(alice, { name: 'disk', sizeBytes: data.length });
  const snapshot = await a.snapshots.create(alice, { volumeId: volume.volumeId });
  const writer = new SnapshotWriter({
    volumeSize: data.length,
    compressor: zstd,
    nextSegmentId: async () =>
      (await a.snapshots.uploadUrls(alice, snapshot.snapshotId, 1)).segments[0]?.segmentId ?? '',
    store: (id, object) => a.objects.put(ObjectLayout.segment(alice.accountId, id), object),
  });
  for (let i = 0; i < BLOCKS; i++) await writer.add(i, data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  await a.objects.put(
    ObjectLayout.manifestUpload(snapshot.snapshotId),
    encodeManifest(await writer.finish()),
  );
  await a.snapshots.complete(alice, snapshot.snapshotId);
  const exports = new ExportService({
    exports: new MemoryExportRepository(),
    snapshots: a.snapshots,
    objects: a.objects,
    queue: a.queue,
    clock: a.clock,
    region: 'r1',
    compressor: zstd,
  });
  const started = await exports.start(alice, snapshot.snapshotId, format);
  for (const m of a.queue.messages.splice(0))
    if (m.kind === 'export.part') await exports.runPart(m.exportId, m.part);
  const url = `https://example.org/${started.exportId}.${format}?X-Amz-Signature=secret`;
  served.set(url, Buffer.from((await a.objects.get(started.key)) ?? []));
  return url;
}

async function work(): Promise<string[]> {
  const outcomes: string[] = [];
  for (const m of b.queue.messages.splice(0))
    if (m.kind === 'snapshot.importPart') outcomes.push(await importer.runPart(m.snapshotId, m.part));
  return outcomes;
}

async function restore(snapshotId: string, accountId: string): Promise<Buffer> {
  const manifest = decodeManifest(
    (await b.objects.get(ObjectLayout.manifest(snapshotId))) ?? new Uint8Array(),
  );
  const out = Buffer.alloc(manifest.volumeSize);
  for (const e of manifest.entries) {
    const stored = await b.objects.getRange(
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

describe('imports', () => {
  it("import a vsnap export of another account into the caller's own snapshot, in parts, and it restores byte for byte", async () => {
    const data = image();
    const url = await vsnapUrl(data);
    const started = await importer.start(bob, { url, format: 'vsnap', name: 'from alice' });
    expect(started).toMatchObject({ accountId: bob.accountId, state: 'pending', parts: 3 });
    expect(JSON.stringify(started)).not.toContain('secret');
    expect(started.importedFrom?.source).toBe(url.split('?')[0]);
    expect(await work()).toEqual(['part', 'part', 'completed']);
    const done = await b.snapshots.get(bob, started.snapshotId);
    expect(done.state).toBe('completed');
    expect((await restore(done.snapshotId, bob.accountId)).equals(data)).toBe(true);
    // The URL was kept only while the import ran.
    expect([...b.objects.objects.keys()].filter((k) => k.startsWith('uploads/'))).toEqual([]);
  });

  it('read blocks stored end to end (vsnap, qcow2) with one ranged GET per run, not one per block', async () => {
    const data = image();
    const nonZero = Array.from({ length: BLOCKS }, (_, i) => i).filter((i) => i % 4 !== 0).length;
    for (const format of ['vsnap', 'qcow2'] as const) {
      const url = await vsnapUrl(data, format);
      const started = await importer.start(bob, { url, format });
      ranges.set(url, []);
      expect((await work()).at(-1)).toBe('completed');
      expect((await restore(started.snapshotId, bob.accountId)).equals(data)).toBe(true);
      // Each of the 3 parts reads the footer, header and index (vsnap: 4 GETs) or the header and
      // tables (qcow2), then its blocks in one run: one GET per block would be 3 × 4 + 15.
      const reads = ranges.get(url) ?? [];
      expect(reads.length).toBeLessThanOrEqual(3 * 5);
      expect(reads.length).toBeLessThan(3 * 4 + nonZero);
    }
  });

  it('import a raw image given a size at least its length; refuse a smaller size or none', async () => {
    const data = image().subarray(0, BLOCKS * BLOCK_SIZE - 1000);
    const url = 'https://example.org/disk.raw';
    served.set(url, Buffer.from(data));
    await expect(importer.start(bob, { url, format: 'raw' })).rejects.toMatchObject({
      code: 'request.invalid',
    });
    await expect(
      importer.start(bob, { url, format: 'raw', sizeBytes: (BLOCKS - 2) * BLOCK_SIZE }),
    ).rejects.toMatchObject({
      code: 'request.invalid',
    });
    const started = await importer.start(bob, { url, format: 'raw', sizeBytes: (BLOCKS + 4) * BLOCK_SIZE });
    await work();
    const restored = await restore(started.snapshotId, bob.accountId);
    expect(restored.length).toBe((BLOCKS + 4) * BLOCK_SIZE);
    expect(restored.subarray(0, data.length).equals(data)).toBe(true);
    expect(restored.subarray(data.length).every((x) => x === 0)).toBe(true);
  });

  it('refuse a truncated vsnap at once, and end a tampered one in error with no completed snapshot', async () => {
    const url = await vsnapUrl(image());
    const whole = served.get(url) as Buffer;
    served.set(`${url}&cut`, whole.subarray(0, whole.length - 10));
    await expect(importer.start(bob, { url: `${url}&cut`, format: 'vsnap' })).rejects.toMatchObject({
      code: 'data.corrupt',
    });
    const tampered = Buffer.from(whole);
    tampered[200] = (tampered[200] as number) ^ 1;
    served.set(`${url}&bad`, tampered);
    const started = await importer.start(bob, { url: `${url}&bad`, format: 'vsnap' });
    const outcomes = await work();
    expect(outcomes).toContain('error');
    const failed = await b.snapshots.get(bob, started.snapshotId);
    expect(failed.state).toBe('error');
    expect(failed.stateReason).toMatch(/Block \d+ of the vsnap object is damaged/);
    // Nothing is left behind: no source URL, no part manifests, no segments of the failed import.
    expect([...b.objects.objects.keys()].filter((k) => k.startsWith('uploads/'))).toEqual([]);
    expect([...b.objects.objects.keys()].filter((k) => k.startsWith(`segments/${bob.accountId}/`))).toEqual(
      [],
    );
  });
  it('skip an out-of-range part with no side effect, and the import still completes', async () => {
    const data = image();
    const url = await vsnapUrl(data);
    const started = await importer.start(bob, { url, format: 'vsnap' });
    const record = await b.snapshotRepo.get(started.snapshotId);
    const keys = [...b.objects.objects.keys()];
    for (const part of [-1, started.parts ?? 0, 10])
      expect(await importer.runPart(started.snapshotId, part)).toBe('skipped');
    expect(await b.snapshotRepo.get(started.snapshotId)).toEqual(record);
    expect([...b.objects.objects.keys()]).toEqual(keys);
    expect(await work()).toEqual(['part', 'part', 'completed']);
    expect((await restore(started.snapshotId, bob.accountId)).equals(data)).toBe(true);
  });
});

describe('import URLs', () => {
  it('refuse a URL with credentials (user:pass@) with 400 request.invalid, before fetching, and keep the credentials out of the message', async () => {
    const url = 'http://alice:hunter2@127.0.0.1:5611/l.raw';
    served.set(url, image());
    await expect(
      importer.start(bob, { url, format: 'raw', sizeBytes: BLOCKS * BLOCK_SIZE }),
    ).rejects.toMatchObject({
      code: 'request.invalid',
      status: 400,
      message: expect.stringMatching(/user name or password/),
    });
    const error = await importer.start(bob, { url, format: 'raw' }).catch((e: Error) => e);
    expect(String((error as Error).message)).not.toContain('hunter2');
    expect(b.queue.messages).toEqual([]);
    const fetched: string[] = [];
    const opener = httpRemoteOpener({
      allow: ['127.0.0.1:5611'],
      fetch: (async (u: URL) => {
        fetched.push(String(u));
        return new Response('x', { status: 206, headers: { 'content-range': 'bytes 0-0/1' } });
      }) as unknown as typeof fetch,
    });
    await expect(opener(url)).rejects.toMatchObject({ code: 'request.invalid' });
    await expect(opener('https://user@example.org/x')).rejects.toMatchObject({ code: 'request.invalid' });
    expect(fetched).toEqual([]);
  });
});

describe('qcow2 imports', () => {
  /**
   * Runs qemu-img (Debian's qemu-utils), saying what to install when it is missing. Making a LUKS
   * image times PBKDF2 on the CPU first, and on a loaded VM that timing sometimes reads zero
   * ("Unable to get accurate CPU usage"): qemu-img's own flake, so that one is tried again.
   */
  function qemuImg(args: string[], attempts = 5): string {
    try {
      return execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT')
        throw new Error(
          "This test needs qemu-img: install Debian's qemu-utils (apt-get install qemu-utils).",
        );
      if (attempts > 1 && String((error as { stderr?: string }).stderr).includes('accurate CPU usage'))
        return qemuImg(args, attempts - 1);
      throw error;
    }
  }

  it('import images qemu-img made, plain and compressed, 64 KiB and 2 MiB clusters, byte for byte', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volsnap-qcow2-in-'));
    const data = image().subarray(0, BLOCKS * BLOCK_SIZE - 1000);
    writeFileSync(join(dir, 'disk.raw'), data);
    for (const options of [[], ['-c'], ['-o', 'cluster_size=2M'], ['-c', '-o', 'cluster_size=2M']]) {
      const out = join(dir, `disk-${options.join('')}.qcow2`);
      qemuImg(['convert', '-f', 'raw', '-O', 'qcow2', ...options, join(dir, 'disk.raw'), out]);
      const url = `https://example.org/${options.join('')}.qcow2`;
      served.set(url, readFileSync(out));
      const started = await importer.start(bob, { url, format: 'qcow2' });
      expect(started.volumeSize, options.join(' ')).toBe(BLOCKS * BLOCK_SIZE);
      expect(await work()).toContain('completed');
      const restored = await restore(started.snapshotId, bob.accountId);
      expect(restored.subarray(0, data.length).equals(data), options.join(' ')).toBe(true);
      expect(restored.subarray(data.length).every((x) => x === 0)).toBe(true);
    }
  });

  it('refuse, naming the feature, a backing file, a dirty image, encryption and what is not qcow2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volsnap-qcow2-bad-'));
    qemuImg(['create', '-f', 'qcow2', join(dir, 'base.qcow2'), '4M']);
    qemuImg([
      'create',
      '-f',
      'qcow2',
      '-b',
      join(dir, 'base.qcow2'),
      '-F',
      'qcow2',
      join(dir, 'child.qcow2'),
    ]);
    served.set('https://example.org/child.qcow2', readFileSync(join(dir, 'child.qcow2')));
    await expect(
      importer.start(bob, { url: 'https://example.org/child.qcow2', format: 'qcow2' }),
    ).rejects.toMatchObject({
      code: 'import.unsupported',
      message: /backing file/,
    });
    const dirty = Buffer.from(readFileSync(join(dir, 'base.qcow2')));
    dirty.writeBigUInt64BE(1n, 72);
    served.set('https://example.org/dirty.qcow2', dirty);
    await expect(
      importer.start(bob, { url: 'https://example.org/dirty.qcow2', format: 'qcow2' }),
    ).rejects.toMatchObject({
      code: 'import.unsupported',
      message: /not closed cleanly/,
    });
    qemuImg([
      'create',
      '-f',
      'qcow2',
      '--object',
      'secret,id=sec0,data=volsnap',
      '-o',
      // A short key derivation: qemu-img's default spends 2 s of CPU on it, far more on a busy machine.
      'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10',
      join(dir, 'secret.qcow2'),
      '4M',
    ]);
    served.set('https://example.org/secret.qcow2', readFileSync(join(dir, 'secret.qcow2')));
    await expect(
      importer.start(bob, { url: 'https://example.org/secret.qcow2', format: 'qcow2' }),
    ).rejects.toMatchObject({
      code: 'import.unsupported',
      message: /encrypted/,
    });
    served.set('https://example.org/nope.qcow2', randomBytes(8192));
    await expect(
      importer.start(bob, { url: 'https://example.org/nope.qcow2', format: 'qcow2' }),
    ).rejects.toMatchObject({
      code: 'data.corrupt',
    });
  });
});

describe('imports of uploaded files', () => {
  it('join the uploaded parts, import the file, then delete it', async () => {
    const data = image();
    await expect(
      importer.start(bob, {
        format: 'raw',
        sizeBytes: data.length,
        upload: { ref: 'x', uploadId: 'y', parts: [] },
      }),
    ).rejects.toMatchObject({ code: 'request.invalid' });
    const created = await importer.createUpload(bob, data.length);
    expect(created.parts).toHaveLength(1);
    expect(created.parts[0]?.url).toContain(`uploads/files/${bob.accountId}/`);
    const key = `uploads/files/${bob.accountId}/${created.ref}`;
    const etag = await b.objects.uploadPart(key, created.uploadId, 1, data);
    const started = await importer.start(bob, {
      format: 'raw',
      sizeBytes: data.length,
      upload: { ref: created.ref, uploadId: created.uploadId, parts: [{ partNumber: 1, etag }] },
    });
    expect(started.importedFrom?.source).toBe(`upload ${created.ref}`);
    expect(await work()).toContain('completed');
    expect((await restore(started.snapshotId, bob.accountId)).equals(data)).toBe(true);
    expect(await b.objects.head(key)).toBeUndefined();
    // A file refused when the import starts is deleted too.
    const junk = await importer.createUpload(bob, 8192);
    const junkKey = `uploads/files/${bob.accountId}/${junk.ref}`;
    const junkTag = await b.objects.uploadPart(junkKey, junk.uploadId, 1, randomBytes(8192));
    await expect(
      importer.start(bob, {
        format: 'qcow2',
        upload: { ref: junk.ref, uploadId: junk.uploadId, parts: [{ partNumber: 1, etag: junkTag }] },
      }),
    ).rejects.toMatchObject({ code: 'data.corrupt' });
    expect(await b.objects.head(junkKey)).toBeUndefined();
    await expect(
      importer.start(bob, {
        format: 'raw',
        url: 'https://example.org/x',
        upload: { ref: created.ref, uploadId: 'u', parts: [] },
      }),
    ).rejects.toMatchObject({ code: 'request.invalid' });
  });
});
