import { createHash, randomBytes } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ManualClock } from '../../../../lib/adapters/clock.ts';
import type { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import type { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import type { MemorySnapshotRepository } from '../../../../lib/adapters/memory/snapshots.ts';
import { S3ObjectStore } from '../../../../lib/adapters/s3/objects.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest, encodeManifest, type Manifest } from '../../../../lib/core/format/manifest.ts';
import { planReads } from '../../../../lib/core/format/restore-plan.ts';
import { readSegmentBlock, SEGMENT_FOOTER_SIZE } from '../../../../lib/core/format/segment.ts';
import { SnapshotWriter } from '../../../../lib/core/format/snapshot-writer.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { Maintenance } from '../../../../lib/core/maintenance/maintenance.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { VolsnapError } from '../../../../lib/core/shared/errors.ts';
import type { SnapshotService } from '../../../../lib/core/snapshots/snapshot-service.ts';
import { MAX_MANIFEST_UPLOADS, maxSegmentUrls } from '../../../../lib/core/snapshots/snapshot-verify.ts';
import type { Snapshot } from '../../../../lib/core/snapshots/snapshots.ts';
import type { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { maintenanceOptions } from '../../../../lib/wiring/maintenance.ts';
import type { RegionTuning } from '../../../../lib/wiring/region.ts';
import { testCaller } from '../../../support/callers.ts';
import { type MemoryRegion, memoryRegion } from '../../../support/memory-region.ts';

const zstd = createZstdCompressor();
const BLOCKS = 12;
const WRITE_ONCE = { 'if-none-match': '*' };

let region: MemoryRegion;
let clock: ManualClock;
let objects: MemoryObjectStore;
let snapshotRepo: MemorySnapshotRepository;
let queue: MemoryWorkQueue;
let volumes: VolumeService;
let snapshots: SnapshotService;
let alice: Caller;

/** A fresh region whose snapshot service takes `tuning` (verification in parts, leases). */
function setUp(tuning: RegionTuning['snapshots'] = {}) {
  region = memoryRegion('eu-west-1', { settings: { tuning: { snapshots: tuning } } });
  ({ clock, volumes, snapshots } = region);
  ({ objects, queue, snapshots: snapshotRepo } = region.ports);
}

beforeEach(() => {
  setUp();
  alice = testCaller();
});

/** Random blocks (block 5 zero, so not stored). */
function image(blocks = BLOCKS): Buffer {
  const data = Buffer.alloc(blocks * BLOCK_SIZE);
  for (let i = 0; i < blocks; i++) if (i !== 5) randomBytes(BLOCK_SIZE).copy(data, i * BLOCK_SIZE);
  return data;
}

interface Upload {
  snapshot: Snapshot;
  manifest: Manifest;
  manifestUploadId: string;
  /** Every segment URL issued, by segment id, and the ids the writer used. */
  urls: Map<string, string>;
  used: string[];
  /** What the checks of segments reported landed found, in order. */
  checks: string[];
}

/**
 * What the CLI does, through the memory store's PUT (write-once URLs, `If-None-Match: *`): segments
 * of 4 blocks, URLs asked 4 at a time (so some go unused), the manifest to a fresh key. `lie`
 * changes the manifest's bytes before upload; `tamper` a segment's bytes before its PUT. `early`
 * reports each segment landed once stored (all of them, or those it picks by their number) and runs
 * the checks that sends at once, as workers would while the rest uploads.
 */
async function upload(
  data: Buffer,
  options: {
    volumeId: string;
    lie?: (manifest: Manifest) => Buffer | Manifest;
    tamper?: (segment: Buffer, n: number) => void;
    early?: boolean | ((n: number) => boolean);
  },
): Promise<Upload> {
  const snapshot = await snapshots.create(alice, { volumeId: options.volumeId });
  const parentBytes = snapshot.parentSnapshotId
    ? await objects.get(ObjectLayout.manifest(snapshot.parentSnapshotId))
    : undefined;
  const urls = new Map<string, string>();
  const spare: string[] = [];
  const used: string[] = [];
  const checks: string[] = [];
  const writer = new SnapshotWriter({
    volumeSize: data.length,
    compressor: zstd,
    parent: parentBytes ? decodeManifest(parentBytes) : undefined,
    segmentTargetSize: 4 * BLOCK_SIZE,
    nextSegmentId: async () => {
      if (spare.length === 0) {
        for (const { segmentId, url } of (await snapshots.uploadUrls(alice, snapshot.snapshotId, 4))
          .segments) {
          urls.set(segmentId, url);
          spare.push(segmentId);
        }
      }
      return spare.shift() as string;
    },
    store: async (segmentId, object) => {
      const bytes = Buffer.from(object);
      options.tamper?.(bytes, used.length);
      const n = used.push(segmentId) - 1;
      expect(await objects.receivePut(urls.get(segmentId) ?? '', bytes, WRITE_ONCE)).toBe(200);
      if (typeof options.early === 'function' ? options.early(n) : options.early === true) {
        await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { landed: [segmentId] });
        checks.push(...(await runChecks()));
      }
    },
  });
  for (let i = 0; i < data.length / BLOCK_SIZE; i++)
    await writer.add(i, data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  const honest = await writer.finish();
  const target = await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { manifest: true });
  const told = options.lie ? options.lie(honest) : honest;
  const bytes = Buffer.isBuffer(told) ? told : encodeManifest(told);
  expect(await objects.receivePut(target.manifestUrl ?? '', bytes, WRITE_ONCE)).toBe(200);
  return { snapshot, manifest: honest, manifestUploadId: target.manifestUploadId ?? '', urls, used, checks };
}

/** Runs the segment checks queued (what workers do with `snapshot.checkSegment`), in order. */
async function runChecks(): Promise<string[]> {
  const outcomes: string[] = [];
  for (const message of queue.messages.splice(0)) {
    if (message.kind !== 'snapshot.checkSegment') throw new Error(`unexpected ${message.kind}`);
    outcomes.push(await snapshots.checkSegment(message.snapshotId, message.segmentId));
  }
  return outcomes;
}

async function complete(u: Upload): Promise<Snapshot> {
  return snapshots.complete(alice, u.snapshot.snapshotId, { manifestUploadId: u.manifestUploadId });
}

/** The volume's bytes from a completed snapshot, every block checked. */
async function restore(snapshotId: string, size: number): Promise<Buffer> {
  const manifest = decodeManifest((await objects.get(ObjectLayout.manifest(snapshotId))) ?? new Uint8Array());
  const out = Buffer.alloc(size);
  for (const range of planReads(manifest)) {
    const segment =
      (await objects.get(ObjectLayout.segment(alice.accountId, range.segmentId))) ?? Buffer.alloc(0);
    for (const e of range.entries) {
      const stored = segment.subarray(e.offset, e.offset + e.storedLength);
      const plain = readSegmentBlock(zstd, { ...e, plainLength: BLOCK_SIZE }, stored);
      Buffer.from(plain).copy(out, e.blockIndex * BLOCK_SIZE);
    }
  }
  return out;
}

/** Re-signs a manifest's bytes after changing them (a liar who knows the format). */
function redigest(bytes: Buffer): Buffer {
  createHash('sha256')
    .update(bytes.subarray(0, bytes.length - 32))
    .digest()
    .copy(bytes, bytes.length - 32);
  return bytes;
}

const ENTRIES_AT = (m: Manifest) => 48 + m.segments.size * 32;

async function volume(blocks = BLOCKS) {
  return volumes.register(alice, { name: 'disk', sizeBytes: blocks * BLOCK_SIZE });
}

describe('completion verifies the data', () => {
  it('completes an honest upload, which restores byte for byte; the staged manifest is retired', async () => {
    const v = await volume();
    const data = image();
    const u = await upload(data, { volumeId: v.volumeId });
    const done = await complete(u);
    expect(done.state).toBe('completed');
    expect((await restore(done.snapshotId, data.length)).equals(data)).toBe(true);
    const staged = ObjectLayout.manifestStaging(done.snapshotId, u.manifestUploadId);
    expect(objects.objects.get(staged)?.length).toBe(0);
  });

  type Lie = {
    name: string;
    lie?: (m: Manifest) => Buffer | Manifest;
    tamper?: (segment: Buffer, n: number) => void;
    /** What the reason must name, given the honest manifest. */
    names: (m: Manifest) => string[];
  };
  const first = (m: Manifest) => m.entries[0] as Manifest['entries'][number];
  const lies: Lie[] = [
    {
      name: 'a block hash that does not match the content',
      lie: (m) => ({
        ...m,
        entries: m.entries.map((e, i) => (i === 1 ? { ...e, hash: randomBytes(32) } : e)),
      }),
      names: (m) => [`Block ${m.entries[1]?.blockIndex}`, m.entries[1]?.segmentId ?? '?', 'SHA-256'],
    },
    {
      name: "a segment whose own index lies about a block's hash (the content is checked)",
      tamper: (segment, n) => {
        if (n === 0) segment[10] = (segment[10] ?? 0) ^ 0xff;
      },
      names: (m) => [`Block ${first(m).blockIndex}`, first(m).segmentId],
    },
    {
      name: "an entry pointing into the segment's index and footer",
      lie: (m) => {
        const e = first(m);
        const size = m.segments.get(e.segmentId) ?? 0;
        return {
          ...m,
          entries: [
            { ...e, offset: size - SEGMENT_FOOTER_SIZE - 56, storedLength: 56 },
            ...m.entries.slice(1),
          ],
        };
      },
      names: (m) => [`Block ${first(m).blockIndex}`, first(m).segmentId, 'index has no block at that offset'],
    },
    {
      name: 'encoding byte 7',
      lie: (m) => ({ ...m, entries: [{ ...first(m), encoding: 7 }, ...m.entries.slice(1)] }),
      names: (m) => [`Block ${first(m).blockIndex}`, first(m).segmentId, 'encoding 7'],
    },
    {
      name: "an entry whose length does not match the segment's index",
      lie: (m) => ({
        ...m,
        entries: [{ ...first(m), storedLength: first(m).storedLength - 1 }, ...m.entries.slice(1)],
      }),
      names: (m) => [`Block ${first(m).blockIndex}`, first(m).segmentId],
    },
    {
      name: "an entry whose offset does not match the segment's index",
      lie: (m) => ({ ...m, entries: [{ ...first(m), offset: 1 }, ...m.entries.slice(1)] }),
      names: (m) => [`Block ${first(m).blockIndex}`, first(m).segmentId],
    },
    {
      name: 'a duplicate block index',
      lie: (m) => {
        const bytes = encodeManifest(m);
        bytes.writeUInt32LE(first(m).blockIndex, ENTRIES_AT(m) + 52);
        return redigest(bytes);
      },
      names: (m) => [`block ${first(m).blockIndex} appears twice`],
    },
    {
      name: 'blocks out of order',
      lie: (m) => {
        const bytes = encodeManifest(m);
        bytes.writeUInt32LE(m.entries[1]?.blockIndex ?? 0, ENTRIES_AT(m));
        bytes.writeUInt32LE(first(m).blockIndex, ENTRIES_AT(m) + 52);
        return redigest(bytes);
      },
      names: (m) => [`block ${first(m).blockIndex} appears twice or out of order`],
    },
    {
      name: 'an entry past the end of its segment',
      lie: (m) => {
        const bytes = encodeManifest(m);
        bytes.writeUInt32LE(64 * 1024 * 1024, ENTRIES_AT(m) + 44);
        return redigest(bytes);
      },
      names: (m) => [`block ${first(m).blockIndex} lies outside segment ${first(m).segmentId}`],
    },
    {
      name: 'a bad manifest digest',
      lie: (m) => {
        const bytes = encodeManifest(m);
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
        return bytes;
      },
      names: () => ['digest'],
    },
    { name: 'random bytes', lie: () => randomBytes(4096), names: () => ['not a volsnap manifest'] },
  ];

  for (const [lie, early] of lies.flatMap((l) => [[l, false] as const, [l, true] as const])) {
    const when = early ? ' (every segment checked as it landed)' : '';
    it(`fails ${lie.name}: error naming it, 400 manifestInvalid, never a parent${when}`, async () => {
      const v = await volume();
      const data = image();
      const good = await complete(await upload(data, { volumeId: v.volumeId }));
      const u = await upload(image(), { volumeId: v.volumeId, lie: lie.lie, tamper: lie.tamper, early });
      expect(u.snapshot.parentSnapshotId).toBe(good.snapshotId);
      // Checked early, a segment whose blocks are sound is recorded; one that is not, is not.
      expect(u.checks).toEqual(
        early ? u.used.map((_, n) => (lie.tamper && n === 0 ? 'unsound' : 'checked')) : [],
      );
      const refused = await complete(u).catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: 'snapshot.manifestInvalid', status: 400 });
      const failed = await snapshots.get(alice, u.snapshot.snapshotId);
      expect(failed.state).toBe('error');
      for (const text of lie.names(u.manifest)) expect(failed.stateReason).toContain(text);
      // Every key of its upload is retired: nothing it wrote is stored any more.
      for (const segmentId of u.urls.keys())
        expect(objects.objects.get(ObjectLayout.segment(alice.accountId, segmentId))?.length).toBe(0);
      // The next snapshot of the volume is written against the last good one.
      const next = await snapshots.create(alice, { volumeId: v.volumeId });
      expect(next.parentSnapshotId).toBe(good.snapshotId);
    });
  }

  it("fails an inherited entry that is not the parent's block at that place, naming it", async () => {
    const v = await volume();
    const data = image();
    const parent = await complete(await upload(data, { volumeId: v.volumeId }));
    const changed = Buffer.from(data);
    randomBytes(BLOCK_SIZE).copy(changed, 0);
    const u = await upload(changed, {
      volumeId: v.volumeId,
      // Block 1 (unchanged, inherited) claims block 2's stored location: a block the parent has
      // there, but not block 1's.
      lie: (m) => {
        const b2 = m.entries.find((e) => e.blockIndex === 2);
        return {
          ...m,
          entries: m.entries.map((e) =>
            e.blockIndex === 1 && b2 ? { ...e, offset: b2.offset, storedLength: b2.storedLength } : e,
          ),
        };
      },
    });
    expect(u.snapshot.parentSnapshotId).toBe(parent.snapshotId);
    const inherited = u.manifest.entries.find((e) => e.blockIndex === 1);
    await expect(complete(u)).rejects.toMatchObject({ code: 'snapshot.manifestInvalid', status: 400 });
    const failed = await snapshots.get(alice, u.snapshot.snapshotId);
    expect(failed.state).toBe('error');
    expect(failed.stateReason).toContain('Block 1');
    expect(failed.stateReason).toContain(inherited?.segmentId ?? '?');
    expect(failed.stateReason).toContain('parent');
    expect((await snapshots.create(alice, { volumeId: v.volumeId })).parentSnapshotId).toBe(
      parent.snapshotId,
    );
  });

  it('lets one of two concurrent completions verify; the other answers the pending snapshot', async () => {
    const v = await volume();
    const data = image();
    const u = await upload(data, { volumeId: v.volumeId });
    const rerun = await snapshots.uploadUrls(alice, u.snapshot.snapshotId, 0, { manifest: true });
    const staged = await objects.get(ObjectLayout.manifestStaging(u.snapshot.snapshotId, u.manifestUploadId));
    expect(await objects.receivePut(rerun.manifestUrl ?? '', staged ?? new Uint8Array(), WRITE_ONCE)).toBe(
      200,
    );
    const answers = await Promise.all([
      complete(u),
      snapshots.complete(alice, u.snapshot.snapshotId, { manifestUploadId: rerun.manifestUploadId ?? '' }),
    ]);
    expect(answers.map((a) => a.state).sort()).toEqual(['completed', 'pending']);
    const done = await snapshots.get(alice, u.snapshot.snapshotId);
    expect(done).toMatchObject({ state: 'completed', progress: 100 });
    expect(done).not.toHaveProperty('leaseUntil');
    expect(done).not.toHaveProperty('parts');
    expect((await restore(done.snapshotId, data.length)).equals(data)).toBe(true);
  });

  it('gives the claim back when storage fails while verifying, so completing again works', async () => {
    const v = await volume();
    const data = image();
    const u = await upload(data, { volumeId: v.volumeId });
    // A fault no emulator produces on demand: the store fails one read.
    const getRange = objects.getRange.bind(objects);
    objects.getRange = async () => {
      objects.getRange = getRange;
      throw new VolsnapError(
        'storage.unavailable',
        'Object storage did not answer as expected; retry shortly.',
      );
    };
    await expect(complete(u)).rejects.toMatchObject({ code: 'storage.unavailable' });
    const still = await snapshots.get(alice, u.snapshot.snapshotId);
    expect(still.state).toBe('pending');
    expect(still).not.toHaveProperty('leaseUntil');
    expect((await complete(u)).state).toBe('completed');
    expect((await restore(u.snapshot.snapshotId, data.length)).equals(data)).toBe(true);
  });

  it('keeps a snapshot whose manifest is not uploaded yet pending (409); refuses a manifest upload id not its own', async () => {
    const v = await volume();
    const snapshot = await snapshots.create(alice, { volumeId: v.volumeId });
    const target = await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { manifest: true });
    const manifestUploadId = target.manifestUploadId ?? '';
    await expect(snapshots.complete(alice, snapshot.snapshotId, { manifestUploadId })).rejects.toMatchObject({
      code: 'snapshot.manifestMissing',
      status: 409,
    });
    await expect(
      snapshots.complete(alice, snapshot.snapshotId, { manifestUploadId: 'mup-0000000000000000' }),
    ).rejects.toMatchObject({ code: 'request.invalid' });
    expect((await snapshots.get(alice, snapshot.snapshotId)).state).toBe('pending');
  });
});

describe('segments checked as they land', () => {
  /** The keys of segments whose bytes `action` reads (ranged GETs), in order. */
  async function segmentReads<T>(action: () => Promise<T>): Promise<{ result: T; keys: string[] }> {
    const keys: string[] = [];
    const getRange = objects.getRange.bind(objects);
    objects.getRange = async (key, start, end) => {
      if (key.startsWith('segments/')) keys.push(key);
      return getRange(key, start, end);
    };
    try {
      return { result: await action(), keys };
    } finally {
      objects.getRange = getRange;
    }
  }
  const segmentKey = (segmentId: string) => ObjectLayout.segment(alice.accountId, segmentId);
  const records = (snapshotId: string) =>
    [...objects.objects.keys()].filter((k) => k.startsWith(ObjectLayout.segmentCheckPrefix(snapshotId)));

  it('completes reading no block of a segment checked as it landed; restores byte for byte; drops the records', async () => {
    const v = await volume();
    const data = image();
    const u = await upload(data, { volumeId: v.volumeId, early: true });
    expect(u.checks).toEqual(['checked', 'checked', 'checked']);
    expect(records(u.snapshot.snapshotId)).toHaveLength(3);
    const { result: done, keys } = await segmentReads(() => complete(u));
    expect(done.state).toBe('completed');
    expect(keys).toEqual([]);
    expect((await restore(done.snapshotId, data.length)).equals(data)).toBe(true);
    expect(records(done.snapshotId)).toEqual([]);
    // A check delivered again after completion does nothing and records nothing.
    expect(await snapshots.checkSegment(done.snapshotId, u.used[0] ?? '')).toBe('skipped');
    expect(records(done.snapshotId)).toEqual([]);
  });

  it('refuses a segment written again after its check (another ETag), naming it: error, 400', async () => {
    const v = await volume();
    const u = await upload(image(), { volumeId: v.volumeId, early: true });
    const victim = u.used[1] ?? '';
    // Same size, one byte of a block changed: a store that lets a key be written twice.
    const rewritten = Buffer.from(objects.objects.get(segmentKey(victim)) ?? []);
    rewritten[100] = (rewritten[100] ?? 0) ^ 0xff;
    await objects.put(segmentKey(victim), rewritten);
    const refused = await complete(u).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'snapshot.manifestInvalid', status: 400 });
    const failed = await snapshots.get(alice, u.snapshot.snapshotId);
    expect(failed.state).toBe('error');
    expect(failed.stateReason).toContain(`Segment ${victim} was written again after the service checked it`);
  });

  it('reads and hashes at completion the segments not reported, and fails on a bad block among them', async () => {
    const v = await volume();
    const data = image();
    const honest = await upload(data, { volumeId: v.volumeId, early: (n) => n !== 1 });
    expect(honest.checks).toEqual(['checked', 'checked']);
    const { result: done, keys } = await segmentReads(() => complete(honest));
    expect(done.state).toBe('completed');
    expect(new Set(keys)).toEqual(new Set([segmentKey(honest.used[1] ?? '')]));
    const bad = await upload(image(), {
      volumeId: v.volumeId,
      early: (n) => n !== 1,
      tamper: (segment, n) => {
        if (n === 1) segment[10] = (segment[10] ?? 0) ^ 0xff;
      },
    });
    const refused = await complete(bad).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'snapshot.manifestInvalid' });
    const failed = await snapshots.get(alice, bad.snapshot.snapshotId);
    const entry = bad.manifest.entries.find((e) => e.segmentId === bad.used[1]);
    expect(failed.stateReason).toContain(`Block ${entry?.blockIndex} (in segment ${bad.used[1]}`);
    expect(failed.stateReason).toContain('does not hold what the manifest says');
  });

  it('a check that dies before its record records nothing: completion reads that segment', async () => {
    const v = await volume();
    const data = image();
    const u = await upload(data, { volumeId: v.volumeId });
    const [dies] = u.used as [string];
    const put = objects.put.bind(objects);
    objects.put = async (key, body) => {
      if (key === ObjectLayout.segmentCheck(u.snapshot.snapshotId, dies)) throw new Error('worker died');
      return put(key, body);
    };
    await snapshots.uploadUrls(alice, u.snapshot.snapshotId, 0, { landed: [dies] });
    await expect(runChecks()).rejects.toThrow('worker died');
    objects.put = put;
    expect(records(u.snapshot.snapshotId)).toEqual([]);
    const { result: done, keys } = await segmentReads(() => complete(u));
    expect(done.state).toBe('completed');
    expect(new Set(keys)).toEqual(new Set(u.used.map(segmentKey)));
    expect((await restore(done.snapshotId, data.length)).equals(data)).toBe(true);
  });

  it('checks a landed segment with one GET of it and one PUT of its record: no HEAD, no ranged read', async () => {
    const v = await volume();
    const u = await upload(image(), { volumeId: v.volumeId });
    const [landed] = u.used as [string];
    const calls: string[] = [];
    const spied = ['head', 'get', 'getVersion', 'getRange', 'put'] as const;
    const originals = spied.map((name) => [name, objects[name]] as const);
    for (const [name, original] of originals)
      (objects as unknown as Record<string, unknown>)[name] = async (key: string, ...rest: unknown[]) => {
        if (key.includes(landed)) calls.push(`${name} ${key === segmentKey(landed) ? 'segment' : 'record'}`);
        return (original as (...args: unknown[]) => Promise<unknown>).call(objects, key, ...rest);
      };
    try {
      await snapshots.uploadUrls(alice, u.snapshot.snapshotId, 0, { landed: [landed] });
      expect(await runChecks()).toEqual(['checked']);
    } finally {
      for (const [name, original] of originals)
        (objects as unknown as Record<string, unknown>)[name] = original;
    }
    expect(calls).toEqual(['getVersion segment', 'put record']);
    expect(records(u.snapshot.snapshotId)).toEqual([
      ObjectLayout.segmentCheck(u.snapshot.snapshotId, landed),
    ]);
  });

  it('keeps its records through a completion that storage failed: completing again reads no block', async () => {
    const v = await volume();
    const data = image();
    const u = await upload(data, { volumeId: v.volumeId, early: true });
    // A fault no emulator produces on demand: the store fails one record's read.
    const get = objects.get.bind(objects);
    objects.get = async (key) => {
      if (!key.startsWith('uploads/checks/')) return get(key);
      objects.get = get;
      throw new VolsnapError(
        'storage.unavailable',
        'Object storage did not answer as expected; retry shortly.',
      );
    };
    await expect(complete(u)).rejects.toMatchObject({ code: 'storage.unavailable' });
    expect((await snapshots.get(alice, u.snapshot.snapshotId)).state).toBe('pending');
    expect(records(u.snapshot.snapshotId)).toHaveLength(3);
    const { result: done, keys } = await segmentReads(() => complete(u));
    expect(done.state).toBe('completed');
    expect(keys).toEqual([]);
  });

  it('has garbage collection delete a record written after its snapshot left pending', async () => {
    const v = await volume();
    const u = await upload(image(), { volumeId: v.volumeId });
    await snapshots.uploadUrls(alice, u.snapshot.snapshotId, 0, { landed: [u.used[0] ?? ''] });
    const late = queue.messages.splice(0);
    // Checked while pending, but its record lands after completion retired the session.
    const put = objects.put.bind(objects);
    let record: [string, Uint8Array] | undefined;
    objects.put = async (key, body) => {
      if (key.startsWith('uploads/checks/')) record = [key, body];
      else await put(key, body);
    };
    for (const m of late)
      if (m.kind === 'snapshot.checkSegment') await snapshots.checkSegment(m.snapshotId, m.segmentId);
    objects.put = put;
    const done = await complete(u);
    expect(done.state).toBe('completed');
    if (!record) throw new Error('the check wrote no record');
    await put(...record);
    expect(records(done.snapshotId)).toHaveLength(1);
    clock.advance(25 * 3600 * 1000);
    const maintenance = new Maintenance(maintenanceOptions(region.region));
    expect((await maintenance.gc()).objectsDeleted).toBeGreaterThanOrEqual(1);
    expect(records(done.snapshotId)).toEqual([]);
  });

  it('refuses landed ids that are not segments issued to the snapshot, sending nothing', async () => {
    const v = await volume();
    const u = await upload(image(), { volumeId: v.volumeId });
    const other = await snapshots.create(alice, { volumeId: (await volume()).volumeId });
    await expect(
      snapshots.uploadUrls(alice, other.snapshotId, 0, { landed: [u.used[0] ?? ''] }),
    ).rejects.toMatchObject({ code: 'request.invalid', status: 400 });
    await expect(
      snapshots.uploadUrls(alice, u.snapshot.snapshotId, 0, { landed: ['../../manifests/x'] }),
    ).rejects.toMatchObject({ code: 'request.invalid' });
    expect(queue.messages).toEqual([]);
  });

  it('verifies in the request an upload larger than the inline bound when its segments were checked; parts use the records', async () => {
    setUp({ inlineVerifyBytes: 1, verifySegmentsPerPart: 1 });
    const v = await volume();
    const data = image();
    const all = await upload(data, { volumeId: v.volumeId, early: true });
    const done = await complete(all);
    expect(done.state).toBe('completed');
    expect(queue.messages).toEqual([]);
    // One segment checked: the upload goes to parts, and the part of the checked one reads no block.
    const some = await upload(image(), { volumeId: v.volumeId, early: (n) => n === 0 });
    const pending = await complete(some);
    expect(pending.state).toBe('pending');
    const { result: outcomes, keys } = await segmentReads(async () => {
      const out: string[] = [];
      for (let m = queue.messages.shift(); m; m = queue.messages.shift())
        if (m.kind === 'snapshot.verifyPart') out.push(await snapshots.verifyPart(m.snapshotId, m.part));
      return out;
    });
    expect(outcomes.at(-1)).toBe('completed');
    expect(keys).not.toContain(segmentKey(some.used[0] ?? ''));
    expect(keys.length).toBeGreaterThan(0);
  });
});

describe('tombstones and garbage collection', () => {
  it('keeps tombstones through the grace period, then collects them and nothing the snapshot names', async () => {
    const v = await volume();
    const data = image();
    const u = await upload(data, { volumeId: v.volumeId });
    const done = await complete(u);
    const unused = [...u.urls.keys()].filter((id) => !u.used.includes(id));
    const tombstones = [
      ...unused.map((id) => ObjectLayout.segment(alice.accountId, id)),
      ObjectLayout.manifestStaging(done.snapshotId, u.manifestUploadId),
    ];
    for (const key of tombstones) expect(objects.objects.get(key)?.length, key).toBe(0);
    const maintenance = new Maintenance(maintenanceOptions(region.region));
    clock.advance(60_000);
    expect(await maintenance.gc()).toMatchObject({ segmentsDeleted: 0, objectsDeleted: 0 });
    for (const key of tombstones) expect(objects.objects.has(key), key).toBe(true);
    clock.advance(25 * 3600 * 1000);
    expect(await maintenance.gc()).toMatchObject({ segmentsDeleted: unused.length, objectsDeleted: 1 });
    for (const key of tombstones) expect(objects.objects.has(key), key).toBe(false);
    expect((await restore(done.snapshotId, data.length)).equals(data)).toBe(true);
  });
});

describe('large uploads are verified by workers, in parts', () => {
  async function drive(s: SnapshotService): Promise<string[]> {
    const outcomes: string[] = [];
    for (let message = queue.messages.shift(); message; message = queue.messages.shift()) {
      if (message.kind !== 'snapshot.verifyPart') throw new Error(`unexpected ${message.kind}`);
      outcomes.push(await s.verifyPart(message.snapshotId, message.part));
    }
    return outcomes;
  }

  it('answers pending, shows progress, and the worker finishing the last part completes it', async () => {
    setUp({ inlineVerifyBytes: 1, verifySegmentsPerPart: 1 });
    const v = await volume();
    const data = image();
    const u = await upload(data, { volumeId: v.volumeId });
    expect(u.used).toHaveLength(3);
    const answered = await complete(u);
    expect(answered.state).toBe('pending');
    expect(answered.parts).toBe(3);
    expect(queue.messages).toEqual(
      [0, 1, 2].map((part) => ({ kind: 'snapshot.verifyPart', snapshotId: answered.snapshotId, part })),
    );
    // Completing again meanwhile changes nothing.
    expect((await complete(u)).state).toBe('pending');
    expect(queue.messages).toHaveLength(3);
    const message = queue.messages.shift();
    expect(
      await snapshots.verifyPart(
        answered.snapshotId,
        message?.kind === 'snapshot.verifyPart' ? message.part : -1,
      ),
    ).toBe('part');
    expect((await snapshots.get(alice, answered.snapshotId)).progress).toBe(31);
    expect(await drive(snapshots)).toEqual(['part', 'completed']);
    const done = await snapshots.get(alice, answered.snapshotId);
    expect(done.state).toBe('completed');
    expect(done.verification).toBeUndefined();
    expect((await restore(done.snapshotId, data.length)).equals(data)).toBe(true);
    // A redelivered part of a completed snapshot is a no-op.
    expect(await snapshots.verifyPart(done.snapshotId, 0)).toBe('skipped');
  });

  it('fails the snapshot on an error found in part 2 of 3, naming block, segment and part', async () => {
    setUp({ inlineVerifyBytes: 1, verifySegmentsPerPart: 1 });
    const v = await volume();
    const u = await upload(image(), {
      volumeId: v.volumeId,
      tamper: (segment, n) => {
        if (n === 1) segment[100] = (segment[100] ?? 0) ^ 0xff;
      },
    });
    expect((await complete(u)).state).toBe('pending');
    expect(await drive(snapshots)).toEqual(['part', 'error', 'skipped']);
    const failed = await snapshots.get(alice, u.snapshot.snapshotId);
    expect(failed.state).toBe('error');
    const second = u.used[1] ?? '?';
    const block = u.manifest.entries.find((e) => e.segmentId === second)?.blockIndex;
    expect(failed.stateReason).toContain(`Block ${block}`);
    expect(failed.stateReason).toContain(second);
    expect(failed.stateReason).toContain('part 2 of 3');
    expect((await snapshots.create(alice, { volumeId: v.volumeId })).parentSnapshotId).toBeUndefined();
  });

  it('has its lost parts sent again by the reaper when the lease lapses', async () => {
    setUp({ inlineVerifyBytes: 1, verifySegmentsPerPart: 2, leaseMs: 60_000 });
    const v = await volume();
    const u = await upload(image(), { volumeId: v.volumeId });
    expect((await complete(u)).parts).toBe(2);
    const firstPart = queue.messages.shift();
    expect(
      await snapshots.verifyPart(
        u.snapshot.snapshotId,
        firstPart?.kind === 'snapshot.verifyPart' ? firstPart.part : -1,
      ),
    ).toBe('part');
    queue.messages.length = 0; // part 2's message is lost
    const maintenance = new Maintenance({ ...maintenanceOptions(region.region), leaseMs: 60_000 });
    // A part verified extended the lease: within it, nothing is sent; a lease later, part 2 is.
    clock.advance(59_000);
    expect((await maintenance.reap()).redispatched).toEqual([]);
    clock.advance(2_000);
    expect((await maintenance.reap()).redispatched).toEqual([u.snapshot.snapshotId]);
    expect(queue.messages).toEqual([
      { kind: 'snapshot.verifyPart', snapshotId: u.snapshot.snapshotId, part: 1 },
    ]);
    expect(await drive(snapshots)).toEqual(['completed']);
  });
});

describe('segments and manifests are written once', () => {
  it('the memory store refuses a second If-None-Match PUT (412) and one without the signed header (403)', async () => {
    const url = await objects.presignPut('segments/a/seg-x', 60, { ifNoneMatch: true });
    expect(await objects.receivePut(url, Buffer.from('one'))).toBe(403);
    expect(await objects.receivePut(url, Buffer.from('one'), WRITE_ONCE)).toBe(200);
    expect(await objects.receivePut(url, Buffer.from('two'), WRITE_ONCE)).toBe(412);
    expect(Buffer.from((await objects.get('segments/a/seg-x')) ?? []).toString()).toBe('one');
  });

  it('after completion, a used URL cannot replace a segment and every unused key holds a tombstone (junk gone)', async () => {
    const v = await volume();
    const data = image();
    const snapshot = await snapshots.create(alice, { volumeId: v.volumeId });
    // Junk to an issued URL the manifest will not name, before completion.
    const junkUrl = (await snapshots.uploadUrls(alice, snapshot.snapshotId, 1)).segments[0];
    expect(await objects.receivePut(junkUrl?.url ?? '', randomBytes(1024 * 1024), WRITE_ONCE)).toBe(200);
    await snapshots.delete(alice, snapshot.snapshotId);
    // The deleted pending snapshot's keys are retired too.
    expect(objects.objects.get(ObjectLayout.segment(alice.accountId, junkUrl?.segmentId ?? ''))?.length).toBe(
      0,
    );

    const u = await upload(data, { volumeId: v.volumeId });
    const unused = [...u.urls.keys()].filter((id) => !u.used.includes(id));
    expect(unused.length).toBeGreaterThan(0);
    const junk = unused[0] ?? '';
    expect(await objects.receivePut(u.urls.get(junk) ?? '', randomBytes(64 * 1024), WRITE_ONCE)).toBe(200);
    const done = await complete(u);
    expect(done.state).toBe('completed');
    for (const id of unused)
      expect(objects.objects.get(ObjectLayout.segment(alice.accountId, id))?.length).toBe(0);
    // Every URL issued is useless now: used ones and unused ones alike.
    for (const [, url] of u.urls)
      expect(await objects.receivePut(url, randomBytes(100), WRITE_ONCE)).toBe(412);
    expect((await restore(done.snapshotId, data.length)).equals(data)).toBe(true);
    // A retry of the manifest upload gets a fresh key.
    await expect(snapshots.uploadUrls(alice, done.snapshotId, 0, { manifest: true })).rejects.toMatchObject({
      code: 'snapshot.invalidState',
    });
  });

  it('caps the URLs one snapshot is issued by its volume size, with a 409', async () => {
    const v = await volume(8);
    const snapshot = await snapshots.create(alice, { volumeId: v.volumeId });
    const cap = maxSegmentUrls(8 * BLOCK_SIZE);
    expect(cap).toBe(65);
    await expect(snapshots.uploadUrls(alice, snapshot.snapshotId, 101)).rejects.toMatchObject({
      code: 'request.invalid',
    });
    expect((await snapshots.uploadUrls(alice, snapshot.snapshotId, 64)).segments).toHaveLength(64);
    expect((await snapshots.uploadUrls(alice, snapshot.snapshotId, 1)).segments).toHaveLength(1);
    await expect(snapshots.uploadUrls(alice, snapshot.snapshotId, 1)).rejects.toMatchObject({
      code: 'snapshot.uploadLimit',
      status: 409,
    });
    for (let i = 0; i < MAX_MANIFEST_UPLOADS; i++)
      await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { manifest: true });
    await expect(
      snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { manifest: true }),
    ).rejects.toMatchObject({
      code: 'snapshot.uploadLimit',
    });
    expect(await snapshotRepo.sessionSegments(snapshot.snapshotId)).toHaveProperty('size', cap);
  });

  it('the S3 adapter signs If-None-Match into write-once PUT URLs', async () => {
    const s3 = new S3Client({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const store = new S3ObjectStore(s3, 'bucket');
    const signed = (url: string) => new URL(url).searchParams.get('X-Amz-SignedHeaders')?.split(';');
    expect(signed(await store.presignPut('segments/a/seg-x', 60, { ifNoneMatch: true }))).toContain(
      'if-none-match',
    );
    expect(signed(await store.presignPut('segments/a/seg-x', 60))).not.toContain('if-none-match');
  });
});
