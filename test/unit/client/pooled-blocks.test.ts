import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockPool } from '../../../lib/adapters/block-pool.ts';
import { createZstdCompressor, DEFAULT_ZSTD_LEVEL } from '../../../lib/adapters/zstd.ts';
import { hashAhead, type KnownBlocks, PooledBlockSink } from '../../../lib/client/pooled-blocks.ts';
import { BLOCK_SIZE } from '../../../lib/core/format/blocks.ts';
import type { Manifest } from '../../../lib/core/format/manifest.ts';
import { openSegment } from '../../../lib/core/format/segment.ts';
import { SnapshotWriter } from '../../../lib/core/format/snapshot-writer.ts';

/** A pool that counts the blocks sent to its workers. */
class CountingPool extends BlockPool {
  digests = 0;
  override digest(...args: Parameters<BlockPool['digest']>) {
    this.digests++;
    return super.digest(...args);
  }
}
// The level the in-process writer uses, so that both write the same stored bytes.
const pool = new CountingPool({ threads: 2, level: DEFAULT_ZSTD_LEVEL });
afterAll(() => pool.close());
const zstd = createZstdCompressor();
let n = 0;

function textBlock(seed: number): Buffer {
  let text = '';
  for (let i = 0; text.length < BLOCK_SIZE; i++) text += `block ${seed} line ${i % 301} of words\n`;
  return Buffer.from(text.slice(0, BLOCK_SIZE));
}

/** A volume's blocks: undefined where a run of zero blocks is skipped (a hole), as readBlocks does. */
type Volume = (Buffer | undefined)[];

async function write(volume: Volume, pooled: boolean, parent?: Manifest, known?: KnownBlocks) {
  const objects = new Map<string, Buffer>();
  const writer = new SnapshotWriter({
    volumeSize: volume.length * BLOCK_SIZE,
    compressor: zstd,
    parent,
    segmentTargetSize: 4 * BLOCK_SIZE,
    nextSegmentId: async () => `seg-${String(n++).padStart(16, '0')}`,
    store: async (id, object) => {
      objects.set(id, Buffer.from(object));
    },
  });
  const sink = pooled ? new PooledBlockSink(writer, pool, 3, known) : undefined;
  for (const [i, block] of volume.entries()) {
    if (!block) sink ? sink.addZeroBlocks(i, 1) : writer.addZeroBlocks(i, 1);
    else if (sink) {
      const buffer = sink.blockBuffer();
      block.copy(buffer);
      await sink.add(i, buffer);
    } else await writer.add(i, block);
  }
  await sink?.finish();
  return { manifest: await writer.finish(), report: writer.report, objects };
}

function restored(written: Awaited<ReturnType<typeof write>>, earlier: Map<string, Buffer>[]): Buffer[] {
  const all = new Map([...earlier.flatMap((m) => [...m]), ...written.objects]);
  return written.manifest.entries.map((entry) => {
    const segment = openSegment(all.get(entry.segmentId) as Buffer, zstd);
    const stored = segment.entries.find((e) => e.offset === entry.offset);
    if (!stored) throw new Error(`no block at ${entry.offset} of ${entry.segmentId}`);
    return Buffer.from(segment.read(stored));
  });
}

/** Each block read back is the volume's (compared with equals: a deep diff of 512 KiB buffers is slow). */
function expectSameBlocks(blocks: Buffer[], manifest: Manifest, volume: Volume): void {
  const wrong = manifest.entries.filter(
    (e, i) => !blocks[i]?.equals(volume[e.blockIndex] ?? Buffer.alloc(0)),
  );
  expect(wrong.map((e) => e.blockIndex)).toEqual([]);
  expect(blocks.length).toBe(manifest.entries.length);
}

describe('a snapshot written through the block pool', () => {
  it('is the snapshot the writer makes alone: zero runs, duplicates, parent blocks reused or rewritten', async () => {
    const random = Array.from({ length: 6 }, () => randomBytes(BLOCK_SIZE));
    const first: Volume = [
      random[0],
      textBlock(1),
      Buffer.alloc(BLOCK_SIZE), // read, and found zero
      undefined, // a hole
      random[1],
      textBlock(1), // a duplicate of block 1
      random[2],
      random[3],
      textBlock(2),
      undefined,
    ];
    const alone = await write(first, false);
    const pooled = await write(first, true);
    expect(pooled.report).toEqual(alone.report);
    const shape = (m: Manifest) =>
      m.entries.map((e) => [e.blockIndex, e.hash.toString('hex'), e.storedLength]);
    expect(shape(pooled.manifest)).toEqual(shape(alone.manifest));
    expectSameBlocks(restored(pooled, []), pooled.manifest, first);

    // The next snapshot: most blocks unchanged (referenced), two changed.
    const second: Volume = first.map((block, i) => (i === 0 || i === 6 ? randomBytes(BLOCK_SIZE) : block));
    const aloneNext = await write(second, false, alone.manifest);
    const pooledNext = await write(second, true, pooled.manifest);
    expect(pooledNext.report).toEqual(aloneNext.report);
    expect(pooledNext.report.reusedBlocks).toBeGreaterThan(0);
    expect(pooledNext.report.newBlocks).toBeGreaterThanOrEqual(2);
    expectSameBlocks(restored(pooledNext, [pooled.objects]), pooledNext.manifest, second);

    // Once more, unchanged: the first segment, now mostly dead, has its kept blocks written again.
    const aloneThird = await write(second, false, aloneNext.manifest);
    const pooledThird = await write(second, true, pooledNext.manifest);
    expect(pooledThird.report).toEqual(aloneThird.report);
    expect(pooledThird.report.rewrittenBlocks).toBeGreaterThan(0);
    expectSameBlocks(
      restored(pooledThird, [pooled.objects, pooledNext.objects]),
      pooledThird.manifest,
      second,
    );
  });

  it('takes blocks hashed ahead as they were: zero and unchanged ones are not hashed again, changed ones are', async () => {
    const random = Array.from({ length: 4 }, () => randomBytes(BLOCK_SIZE));
    const first: Volume = [
      random[0],
      textBlock(5),
      Buffer.alloc(BLOCK_SIZE),
      random[1],
      random[2],
      random[3],
    ];
    const parent = await write(first, true);
    const second = first.map((block, i) => (i === 4 ? randomBytes(BLOCK_SIZE) : block));
    const dir = await mkdtemp(join(tmpdir(), 'hash-ahead-'));
    const file = join(dir, 'volume.img');
    await writeFile(file, Buffer.concat(second.map((b) => b ?? Buffer.alloc(BLOCK_SIZE))));
    const ahead = hashAhead(file, second.length, pool);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const known = await ahead.stop();
    expect([...known.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(known.get(2)).toBeNull();

    const before = pool.digests;
    const alone = await write(second, false, parent.manifest);
    const pooled = await write(second, true, parent.manifest, known);
    expect(pooled.report).toEqual(alone.report);
    expect(pooled.report).toMatchObject({ reusedBlocks: 4, newBlocks: 1, zeroBlocks: 1 });
    // Only the changed block went to a worker again: its bytes read now are what is stored.
    expect(pool.digests - before).toBe(1);
    expectSameBlocks(restored(pooled, [parent.objects]), pooled.manifest, second);
  });
});
