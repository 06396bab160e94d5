import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE, blockHash } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest, type Manifest } from '../../../../lib/core/format/manifest.ts';
import { planReads, type SegmentRange } from '../../../../lib/core/format/restore-plan.ts';
import {
  parseSegmentFooter,
  readSegmentBlock,
  SEGMENT_FOOTER_SIZE,
} from '../../../../lib/core/format/segment.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import type { SnapshotService } from '../../../../lib/core/snapshots/snapshot-service.ts';
import type { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { type MemoryRegion, memoryRegion } from '../../../support/memory-region.ts';
import { writeSnapshot } from '../../../support/writes.ts';

const zstd = createZstdCompressor();
const SECRET = Buffer.from('SECRET-V1-do-not-share');
const BLOCKS = 4;

let region: MemoryRegion;
let objects: MemoryObjectStore;
let snapshots: SnapshotService;
let volumes: VolumeService;
let owner: Caller;
let grantee: Caller;
let stranger: Caller;

beforeEach(async () => {
  region = memoryRegion('eu-west-1');
  ({ snapshots, volumes } = region);
  objects = region.ports.objects;
  [owner, grantee, stranger] = await Promise.all([
    region.account('a-co'),
    region.account('b-co'),
    region.account('c-co'),
  ]);
});

/** A block that begins with `marker`, the rest random (so it is stored raw, the marker in clear). */
function markedBlock(marker: Buffer): Buffer {
  const block = randomBytes(BLOCK_SIZE);
  marker.copy(block, 0);
  return block;
}

/** A completed snapshot of `data` written as the CLI does (through the service's segment ids). */
async function takeSnapshot(caller: Caller, volumeId: string, data: Buffer) {
  const pending = await snapshots.create(caller, { volumeId });
  return (await writeSnapshot(region, caller, pending, data)).snapshot;
}

async function manifestOf(snapshotId: string): Promise<Manifest> {
  return decodeManifest((await objects.get(ObjectLayout.manifest(snapshotId))) ?? new Uint8Array());
}

/** The bytes a URL of the memory store lets its holder read: exactly its bound range, if it has one. */
function download(url: string): Buffer {
  expect(url.startsWith('memory://get/')).toBe(true);
  const [key = '', query = ''] = url.slice('memory://get/'.length).split('?');
  const object = objects.objects.get(key);
  if (!object) throw new Error(`no object ${key}`);
  const range = new URLSearchParams(query).get('range');
  if (!range) return Buffer.from(object);
  const [start, end] = range.split('-').map(Number);
  return Buffer.from(object.subarray(start, end));
}

/**
 * A's volume: v1 with a secret in block 0, then v2 with block 0 rewritten. v2 reuses v1's segment
 * for blocks 1-3, so that segment still holds the secret block (and its SHA-256 in the index).
 */
async function secretAndItsSuccessor() {
  const v1Data = Buffer.concat(
    Array.from({ length: BLOCKS }, (_, i) => markedBlock(i === 0 ? SECRET : Buffer.from(`v1 block ${i}`))),
  );
  const volume = await volumes.register(owner, { name: 'disk', sizeBytes: v1Data.length });
  const v1 = await takeSnapshot(owner, volume.volumeId, v1Data);
  const v2Data = Buffer.from(v1Data);
  markedBlock(Buffer.from('PUBLIC-V2')).copy(v2Data, 0);
  const v2 = await takeSnapshot(owner, volume.volumeId, v2Data);
  expect(v2.parentSnapshotId).toBe(v1.snapshotId);
  expect(v2.stats).toMatchObject({ reusedBlocks: 3, newBlocks: 1 });
  const v1Manifest = await manifestOf(v1.snapshotId);
  const v2Manifest = await manifestOf(v2.snapshotId);
  const secretEntry = v1Manifest.entries[0];
  if (!secretEntry) throw new Error('v1 has no block 0');
  const reused = secretEntry.segmentId;
  const fresh = v2Manifest.entries[0]?.segmentId ?? '';
  expect(v2Manifest.segments.has(reused)).toBe(true);
  expect(fresh).not.toBe(reused);
  const reusedSize = v1Manifest.segments.get(reused) ?? 0;
  const footer = parseSegmentFooter(
    await objects.getRange(
      ObjectLayout.segment(owner.accountId, reused),
      reusedSize - SEGMENT_FOOTER_SIZE,
      reusedSize,
    ),
    reusedSize,
  );
  const at = (e: { offset: number; storedLength: number }) => ({
    start: e.offset,
    end: e.offset + e.storedLength,
  });
  const [, b1, b2, b3] = v2Manifest.entries.map(at);
  const secret = at(secretEntry);
  return {
    v1,
    v2,
    v1Data,
    v2Data,
    v2Manifest,
    secretBlock: v1Data.subarray(0, BLOCK_SIZE),
    reused,
    fresh,
    /** Byte ranges of the reused segment: what v2 names, what it does not, and the index and footer. */
    layout: { secret, b1, b2, b3, indexOffset: footer.indexOffset, size: reusedSize },
  };
}

describe("segment URLs of another account's snapshot", () => {
  it('refuse every range that reaches past the shared snapshot’s blocks, and issue no URL for it', async () => {
    const { v2, reused, fresh, layout } = await secretAndItsSuccessor();
    await snapshots.share(owner, v2.snapshotId, 'b-co');
    const { secret, b1, b3 } = layout;
    const ask = (...ranges: SegmentRange[]) => snapshots.segmentUrls(grantee, v2.snapshotId, ranges);
    const on = (segmentId: string, start: number, end: number) => ({ segmentId, start, end });
    const refusals = [
      ['the secret block', on(reused, secret.start, secret.end)],
      ['the whole segment', on(reused, 0, layout.size)],
      ['the index', on(reused, layout.indexOffset, layout.size - SEGMENT_FOOTER_SIZE)],
      ['the footer', on(reused, layout.size - SEGMENT_FOOTER_SIZE, layout.size)],
      ['the last shared block and the index', on(reused, b3?.start ?? 0, layout.indexOffset + 1)],
      ['the secret block and a shared one', on(reused, secret.start, b1?.end ?? 0)],
      ['a shared block from its middle', on(reused, (b1?.start ?? 0) + 1, b1?.end ?? 0)],
      ['a shared block to its middle', on(reused, b1?.start ?? 0, (b1?.end ?? 0) - 1)],
      ['the new segment past its block', on(fresh, 0, BLOCK_SIZE + 1)],
      ['a segment v2 does not name', on('seg-zzzzzzzzzzzzzzzz', 0, 1)],
    ] as const;
    for (const [what, range] of refusals) {
      const refusal = await ask(range).catch((e) => e);
      expect(refusal, what).toMatchObject({ code: 'snapshot.rangeNotShared', details: { range } });
      expect(refusal.message, what).toContain('not a run of snapshot');
    }
    // One refused range refuses the request: no URL for the good ones beside it either.
    await expect(
      ask(on(reused, b1?.start ?? 0, b1?.end ?? 0), on(reused, secret.start, secret.end)),
    ).rejects.toMatchObject({
      code: 'snapshot.rangeNotShared',
    });
  });

  it("answer exactly the shared blocks' extents, each URL bound to its range, and nothing read through them holds v1's block", async () => {
    const { v2, v2Data, v2Manifest, secretBlock, reused, fresh, layout } = await secretAndItsSuccessor();
    await snapshots.share(owner, v2.snapshotId, grantee.accountId);
    const { b1, b2, b3 } = layout;
    const wanted: SegmentRange[] = [
      { segmentId: fresh, start: 0, end: v2Manifest.entries[0]?.storedLength ?? 0 },
      { segmentId: reused, start: b1?.start ?? 0, end: b3?.end ?? 0 },
      { segmentId: reused, start: b2?.start ?? 0, end: b2?.end ?? 0 },
    ];
    const { ranges } = await snapshots.segmentUrls(grantee, v2.snapshotId, wanted);
    expect(ranges.map(({ segmentId, start, end }) => ({ segmentId, start, end }))).toEqual(wanted);
    for (const range of ranges) {
      expect(range.url).toBe(
        `memory://get/${ObjectLayout.segment(owner.accountId, range.segmentId)}?expires=900&range=${range.start}-${range.end}`,
      );
    }
    // Everything the grantee can read: the manifest, and every URL the service would give it.
    const read = [
      download((await snapshots.manifestUrl(grantee, v2.snapshotId)).url),
      ...ranges.map((r) => download(r.url)),
    ];
    for (const bytes of read) {
      expect(bytes.includes(SECRET)).toBe(false);
      // Nor the secret's SHA-256, which the segment's index holds (an oracle to confirm a guess).
      expect(bytes.includes(blockHash(secretBlock))).toBe(false);
    }
    // The bytes are v2's: every block decodes to what A wrote.
    const [whole] = ranges.slice(1);
    const bytes = download(whole?.url ?? '');
    for (const entry of v2Manifest.entries.filter((e) => e.segmentId === reused)) {
      const stored = bytes.subarray(
        entry.offset - (whole?.start ?? 0),
        entry.offset - (whole?.start ?? 0) + entry.storedLength,
      );
      const plain = readSegmentBlock(zstd, { ...entry, plainLength: BLOCK_SIZE }, stored);
      expect(
        Buffer.from(plain).equals(
          v2Data.subarray(entry.blockIndex * BLOCK_SIZE, (entry.blockIndex + 1) * BLOCK_SIZE),
        ),
      ).toBe(true);
      expect(Buffer.from(plain).equals(secretBlock)).toBe(false);
    }
  });

  it('hold the same for a public snapshot read by a third account', async () => {
    const { v2, reused, layout } = await secretAndItsSuccessor();
    await snapshots.publish(owner, v2.snapshotId);
    const { secret, b1, b3 } = layout;
    await expect(
      snapshots.segmentUrls(stranger, v2.snapshotId, [
        { segmentId: reused, start: secret.start, end: b3?.end ?? 0 },
      ]),
    ).rejects.toMatchObject({ code: 'snapshot.rangeNotShared' });
    await expect(
      snapshots.segmentUrls(stranger, v2.snapshotId, [{ segmentId: reused, start: 0, end: layout.size }]),
    ).rejects.toMatchObject({ code: 'snapshot.rangeNotShared' });
    const { ranges } = await snapshots.segmentUrls(stranger, v2.snapshotId, [
      { segmentId: reused, start: b1?.start ?? 0, end: b3?.end ?? 0 },
    ]);
    expect(download(ranges[0]?.url ?? '').includes(SECRET)).toBe(false);
    expect(ranges[0]?.url).toContain(`&range=${b1?.start}-${b3?.end}`);
  });

  it('let the owner read any range of its own segments (a restore reads through gaps), still bound to it', async () => {
    const { v2, reused, layout } = await secretAndItsSuccessor();
    const { ranges } = await snapshots.segmentUrls(owner, v2.snapshotId, [
      { segmentId: reused, start: 0, end: layout.size },
      { segmentId: reused, start: layout.secret.start, end: layout.secret.end },
    ]);
    expect(ranges.map((r) => new URL(r.url).searchParams.get('range'))).toEqual([
      `0-${layout.size}`,
      `${layout.secret.start}-${layout.secret.end}`,
    ]);
    expect(download(ranges[1]?.url ?? '').includes(SECRET)).toBe(true);
  });

  it("accept the restore plan without gaps for another account's snapshot, and refuse the one that reads through them", async () => {
    // v2 rewrites block 1 of 4: its reused segment has a hole of one block between blocks 0 and 2.
    const v1Data = Buffer.concat(
      Array.from({ length: BLOCKS }, (_, i) => markedBlock(Buffer.from(`block ${i}`))),
    );
    const volume = await volumes.register(owner, { name: 'holes', sizeBytes: v1Data.length });
    await takeSnapshot(owner, volume.volumeId, v1Data);
    const v2Data = Buffer.from(v1Data);
    markedBlock(SECRET).copy(v2Data, BLOCK_SIZE);
    const v2 = await takeSnapshot(owner, volume.volumeId, v2Data);
    await snapshots.share(owner, v2.snapshotId, grantee.accountId);
    const manifest = await manifestOf(v2.snapshotId);
    const bare = (plan: ReturnType<typeof planReads>) =>
      plan.map(({ segmentId, start, end }) => ({ segmentId, start, end }));
    const gapped = bare(planReads(manifest));
    const exact = bare(planReads(manifest, undefined, 0));
    expect(exact.length).toBe(gapped.length + 1);
    await expect(snapshots.segmentUrls(grantee, v2.snapshotId, gapped)).rejects.toMatchObject({
      code: 'snapshot.rangeNotShared',
    });
    expect((await snapshots.segmentUrls(grantee, v2.snapshotId, exact)).ranges).toHaveLength(exact.length);
    // The owner keeps reading through the gap: fewer requests.
    expect((await snapshots.segmentUrls(owner, v2.snapshotId, gapped)).ranges).toHaveLength(gapped.length);
  });

  it('refuse malformed or too many ranges for everyone', async () => {
    const { v2, reused } = await secretAndItsSuccessor();
    const bad: SegmentRange[] = [
      { segmentId: reused, start: 10, end: 10 },
      { segmentId: reused, start: -1, end: 10 },
      { segmentId: reused, start: 0.5, end: 10 },
      { segmentId: '../seg-x', start: 0, end: 10 },
    ];
    for (const range of bad)
      await expect(snapshots.segmentUrls(owner, v2.snapshotId, [range])).rejects.toMatchObject({
        code: 'request.invalid',
      });
    const many = Array.from({ length: 101 }, () => ({ segmentId: reused, start: 0, end: 1 }));
    await expect(snapshots.segmentUrls(owner, v2.snapshotId, many)).rejects.toMatchObject({
      code: 'request.invalid',
    });
  });
});
