import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import type { Manifest } from '../../../../lib/core/format/manifest.ts';
import { SnapshotWriter } from '../../../../lib/core/format/snapshot-writer.ts';

const zstd = createZstdCompressor();
// Segment ids are unique across snapshots, as the service issues them.
let n = 0;

async function write(blocks: Buffer[], parent?: Manifest, segmentTargetSize = 4 * BLOCK_SIZE) {
  const writer = new SnapshotWriter({
    volumeSize: blocks.length * BLOCK_SIZE,
    compressor: zstd,
    parent,
    segmentTargetSize,
    nextSegmentId: async () => `seg-${String(n++).padStart(16, '0')}`,
    store: async () => {},
  });
  for (const [i, block] of blocks.entries()) await writer.add(i, block);
  return { manifest: await writer.finish(), report: writer.report };
}

describe('the snapshot writer', () => {
  it('references unchanged blocks of live parent segments', async () => {
    const blocks = Array.from({ length: 8 }, () => randomBytes(BLOCK_SIZE));
    const first = await write(blocks);
    const second = await write(blocks, first.manifest);
    expect(second.report).toMatchObject({ newBlocks: 0, reusedBlocks: 8, rewrittenBlocks: 0, segments: 0 });
  });

  it('rewrites the kept blocks of a parent segment that is less than half alive, so segments do not fragment', async () => {
    const blocks = Array.from({ length: 8 }, () => randomBytes(BLOCK_SIZE));
    const first = await write(blocks);
    // Segment 0 held blocks 0-3; the second snapshot rewrites 0-2, so segment 0 keeps only block 3 alive.
    const changed = blocks.map((b, i) => (i < 3 ? randomBytes(BLOCK_SIZE) : b));
    const second = await write(changed, first.manifest);
    expect(second.report).toMatchObject({ newBlocks: 3, reusedBlocks: 5, rewrittenBlocks: 0 });
    // In the third, block 3 is unchanged but its segment is a quarter alive: it is written again.
    const third = await write(changed, second.manifest);
    expect(third.report).toMatchObject({ rewrittenBlocks: 1, newBlocks: 1, reusedBlocks: 7 });
    const segmentOf = (m: Manifest, i: number) => m.entries.find((e) => e.blockIndex === i)?.segmentId;
    expect(segmentOf(third.manifest, 3)).not.toBe(segmentOf(first.manifest, 3));
    // The blocks of the healthy segment (4-7) are still referenced where they were.
    expect(segmentOf(third.manifest, 5)).toBe(segmentOf(first.manifest, 5));
  });
});
