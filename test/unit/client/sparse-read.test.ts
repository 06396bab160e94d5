import { open, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataCursor } from '../../../lib/client/data-extents.ts';
import { type BlockSink, readBlocks } from '../../../lib/client/snapshot-create.ts';
import { BLOCK_SIZE } from '../../../lib/core/format/blocks.ts';

const GiB = 2 ** 30;

/** A sink that records what it is given: the indexes of blocks passed in, and the zero runs. */
function recordingSink() {
  const added: number[] = [];
  const zeroRuns: [number, number][] = [];
  let next = 0;
  const sink: BlockSink = {
    add: async (index, block) => {
      if (index !== next) throw new Error(`block ${index} out of order (expected ${next})`);
      expect(block.length).toBe(BLOCK_SIZE);
      added.push(index);
      next = index + 1;
      return undefined as never;
    },
    addZeroBlocks: (from, count) => {
      if (from !== next) throw new Error(`zero run at ${from} out of order (expected ${next})`);
      if (count > 0) zeroRuns.push([from, count]);
      next = from + count;
    },
  };
  return { sink, added, zeroRuns, covered: () => next };
}

/** A sparse file of `size` bytes with one byte of data at each of `offsets`. */
async function sparseFile(name: string, size: number, offsets: number[]): Promise<string> {
  const path = join(tmpdir(), `${name}-${process.pid}-${Date.now()}.img`);
  await writeFile(path, '');
  await truncate(path, size);
  const handle = await open(path, 'r+');
  for (const offset of offsets) await handle.write(Buffer.from([7]), 0, 1, offset);
  await handle.close();
  return path;
}

describe('reading a sparse source', () => {
  it('finds the ranges that hold data, and nothing in the holes', async () => {
    const path = await sparseFile('cursor', 4 * GiB, [100 * 2 ** 20, 3 * GiB + 5]);
    const handle = await open(path, 'r');
    try {
      const cursor = await dataCursor(handle, 4 * GiB);
      expect(cursor).toBeDefined();
      const first = cursor?.next(0);
      expect(first?.start).toBeLessThanOrEqual(100 * 2 ** 20);
      expect(first?.end).toBeGreaterThan(100 * 2 ** 20);
      expect(first?.end).toBeLessThan(101 * 2 ** 20);
      const second = cursor?.next(first?.end ?? 0);
      expect(second?.start).toBeLessThanOrEqual(3 * GiB + 5);
      expect(second?.end).toBeGreaterThan(3 * GiB + 5);
      expect(cursor?.next(second?.end ?? 0)).toBeUndefined();
    } finally {
      await handle.close();
    }
  });

  it('hands the writer only the blocks that hold data; the holes are zero runs never read', async () => {
    // 64 GiB, three data blocks: the first, one in the middle, the last.
    const size = 64 * GiB;
    const blocks = size / BLOCK_SIZE;
    const dataBlocks = [0, 40_000, blocks - 1];
    const path = await sparseFile(
      'volume',
      size,
      dataBlocks.map((b) => b * BLOCK_SIZE + 17),
    );
    expect((await stat(path)).blocks * 512).toBeLessThan(2 ** 20);
    const { sink, added, zeroRuns, covered } = recordingSink();
    let reported = 0;
    await readBlocks(path, { volumeId: 'vol-test', sizeBytes: size }, sink, (bytes) => {
      reported += bytes;
    });
    expect(added).toEqual(dataBlocks);
    expect(zeroRuns).toEqual([
      [1, 40_000 - 1],
      [40_001, blocks - 1 - 40_001],
    ]);
    expect(covered()).toBe(blocks);
    // Progress counts the skipped holes too: the bar reaches the volume's size.
    expect(reported).toBe(size);
  });

  it('reads a dense file block by block, and a file shorter than the volume ends in zeros', async () => {
    const path = join(tmpdir(), `dense-${process.pid}-${Date.now()}.img`);
    await writeFile(path, Buffer.alloc(3 * BLOCK_SIZE + 100, 1));
    const { sink, added, zeroRuns } = recordingSink();
    await readBlocks(path, { volumeId: 'vol-test', sizeBytes: 8 * BLOCK_SIZE }, sink, () => {});
    expect(added).toEqual([0, 1, 2, 3]);
    expect(zeroRuns).toEqual([[4, 4]]);
  });

  it('refuses a file larger than the volume, sparse or not', async () => {
    const path = await sparseFile('large', 2 * GiB, [GiB + 1]);
    const { sink } = recordingSink();
    await expect(
      readBlocks(path, { volumeId: 'vol-small', sizeBytes: GiB }, sink, () => {}),
    ).rejects.toMatchObject({ code: 'request.invalid' });
  });
});
