import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import type { Manifest } from '../../../../lib/core/format/manifest.ts';
import { SnapshotWriter } from '../../../../lib/core/format/snapshot-writer.ts';
import {
  parseVsnapFooter,
  parseVsnapHeader,
  parseVsnapIndex,
  planVsnap,
  readVsnapBlock,
  VSNAP_FOOTER_SIZE,
  vsnapHeaderLength,
} from '../../../../lib/core/format/vsnap.ts';

const zstd = createZstdCompressor();
const BLOCKS = 24;
const metadata = {
  createdAt: '2026-11-24T00:00:00.000Z',
  sourceRegion: 'eu-west-1',
  sourceSnapshotId: 'snap-x',
};

/** An image (zero, compressible and random blocks), its manifest and segments. */
async function snapshot(): Promise<{ image: Buffer; manifest: Manifest; objects: MemoryObjectStore }> {
  const image = Buffer.alloc(BLOCKS * BLOCK_SIZE);
  for (let i = 0; i < BLOCKS; i++) {
    if (i % 3 === 0) continue;
    const block = i % 3 === 1 ? Buffer.alloc(BLOCK_SIZE, `line ${i}\n`) : randomBytes(BLOCK_SIZE);
    block.copy(image, i * BLOCK_SIZE);
  }
  const objects = new MemoryObjectStore();
  let n = 0;
  const writer = new SnapshotWriter({
    volumeSize: image.length,
    compressor: zstd,
    segmentTargetSize: 4 * BLOCK_SIZE,
    nextSegmentId: async () => `seg-${n++}`,
    store: (id, object) => objects.put(id, object),
  });
  for (let i = 0; i < BLOCKS; i++) await writer.add(i, image.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  return { image, manifest: await writer.finish(), objects };
}

/** The whole vsnap object, as an exporter writes it. */
async function exportOf(manifest: Manifest, objects: MemoryObjectStore): Promise<Buffer> {
  const layout = planVsnap(manifest, metadata);
  const byIndex = new Map(manifest.entries.map((e) => [e.blockIndex, e]));
  const blocks = await Promise.all(
    layout.entries.map((e) => {
      const at = byIndex.get(e.blockIndex);
      if (!at) throw new Error('missing');
      return objects.getRange(at.segmentId, at.offset, at.offset + at.storedLength);
    }),
  );
  const object = Buffer.concat([layout.header, ...blocks, layout.index, layout.footer]);
  expect(object.length).toBe(layout.totalSize);
  return object;
}

/** What an importer does: footer, header, index, then every block, verified. */
function importOf(object: Buffer): { image: Buffer; metadata: unknown } {
  const footer = parseVsnapFooter(object.subarray(object.length - VSNAP_FOOTER_SIZE), object.length);
  const headerLength = vsnapHeaderLength(object.subarray(0, 32));
  const meta = parseVsnapHeader(object.subarray(0, headerLength), footer);
  const entries = parseVsnapIndex(
    object.subarray(footer.indexOffset, footer.indexOffset + footer.indexLength),
    footer,
    headerLength,
  );
  const image = Buffer.alloc(footer.volumeSize);
  for (const e of entries) {
    const plain = readVsnapBlock(zstd, e, object.subarray(e.offset, e.offset + e.storedLength));
    Buffer.from(plain).copy(image, e.blockIndex * BLOCK_SIZE);
  }
  return { image, metadata: meta };
}

describe('vsnap export format', () => {
  it('round-trips a snapshot: sparse, blocks stored as in their segments, self-describing', async () => {
    const { image, manifest, objects } = await snapshot();
    const object = await exportOf(manifest, objects);
    const stored = manifest.entries.reduce((sum, e) => sum + e.storedLength, 0);
    // Zero blocks are absent and compressible ones stay compressed: far smaller than the volume.
    expect(object.length).toBeLessThan(stored + 4096);
    expect(object.length).toBeLessThan(image.length);
    const back = importOf(object);
    expect(back.image.equals(image)).toBe(true);
    expect(back.metadata).toEqual(metadata);
  });

  it('detects truncation, extension and damage anywhere, naming what is wrong', async () => {
    const { manifest, objects } = await snapshot();
    const object = await exportOf(manifest, objects);
    const layout = planVsnap(manifest, metadata);
    const flip = (at: number) => {
      const copy = Buffer.from(object);
      copy[at] = (copy[at] as number) ^ 0xff;
      return copy;
    };
    const cases: [string, Buffer, RegExp][] = [
      ['truncated', object.subarray(0, object.length - 1), /not a vsnap footer|damaged|another size/],
      [
        'cut in the middle',
        Buffer.concat([object.subarray(0, 1000), object.subarray(object.length - VSNAP_FOOTER_SIZE)]),
        /another size/,
      ],
      ['extended', Buffer.concat([object, Buffer.alloc(10)]), /not a vsnap footer/],
      ['a block byte', flip(layout.dataOffset + 10), /Block \d+ of the vsnap object is damaged/],
      ['an index byte', flip(layout.indexOffset + 3), /index does not match its digest/],
      ['a header byte', flip(40), /header does not match its digest/],
      ['a footer byte', flip(object.length - 60), /footer is damaged/],
      ['not vsnap at all', randomBytes(4096), /not a vsnap footer/],
    ];
    for (const [what, bytes, message] of cases) {
      expect(() => importOf(bytes), what).toThrow(message);
      try {
        importOf(bytes);
      } catch (error) {
        expect((error as { code?: string }).code, what).toBe('data.corrupt');
      }
    }
  });
});
