import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockPool } from '../../../lib/adapters/block-pool.ts';
import { createZstdCompressor } from '../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE, blockHash } from '../../../lib/core/format/blocks.ts';
import { BlockEncoding } from '../../../lib/core/ports/codec.ts';

const pool = new BlockPool({ threads: 2 });
afterAll(() => pool.close());
const zstd = createZstdCompressor();

/** A block that compresses: text-like, repeating with variation. */
function textBlock(seed: number): Buffer {
  const words = ['volume', 'snapshot', 'segment', 'manifest', 'block', `w${seed}`];
  let text = '';
  for (let i = 0; text.length < BLOCK_SIZE; i++)
    text += `${words[(i * 7 + seed) % words.length]} ${i % 97}\n`;
  return Buffer.from(text.slice(0, BLOCK_SIZE));
}

function inPoolBuffer(bytes: Buffer): Buffer {
  const buffer = pool.blockBuffer();
  bytes.copy(buffer);
  return buffer;
}

describe('the block pool', () => {
  it('tells a zero block, without a hash', async () => {
    const { digest } = await pool.digest(inPoolBuffer(Buffer.alloc(BLOCK_SIZE)), { compress: true });
    expect(digest).toEqual({ zero: true });
  });

  it('hashes and compresses a compressible block: its zstd frame decodes to the block', async () => {
    const block = textBlock(1);
    const { digest, plain } = await pool.digest(inPoolBuffer(block), { compress: true });
    if (digest.zero || digest.unchanged || digest.stored === undefined) throw new Error('not stored');
    expect(digest.hash.equals(blockHash(block))).toBe(true);
    expect(digest.encoding).toBe(BlockEncoding.zstd);
    expect(digest.stored.length).toBeLessThan(BLOCK_SIZE / 4);
    expect(Buffer.from(zstd.decompress(digest.stored, BLOCK_SIZE)).equals(block)).toBe(true);
    // The block's own bytes come back too, unchanged.
    expect(plain.equals(block)).toBe(true);
  });

  it('stores an incompressible block raw: its plain bytes are what is stored', async () => {
    const block = randomBytes(BLOCK_SIZE);
    const { digest } = await pool.digest(inPoolBuffer(block), { compress: true });
    if (digest.zero || digest.unchanged || digest.stored === undefined) throw new Error('not stored');
    expect(digest.encoding).toBe(BlockEncoding.raw);
    expect(Buffer.from(digest.stored).equals(block)).toBe(true);
  });

  it('does not compress a block whose SHA-256 is the parent copy it is told of', async () => {
    const block = textBlock(2);
    const unchanged = await pool.digest(inPoolBuffer(block), {
      unchangedIf: blockHash(block),
      compress: true,
    });
    expect(unchanged.digest).toMatchObject({ zero: false, unchanged: true });
    const changed = await pool.digest(inPoolBuffer(block), {
      unchangedIf: blockHash(textBlock(3)),
      compress: true,
    });
    expect(changed.digest).toMatchObject({ zero: false, unchanged: false, encoding: BlockEncoding.zstd });
  });

  it('answers many blocks at once, each with its own hash, and reuses the buffers handed back', async () => {
    const blocks = Array.from({ length: 24 }, (_, i) => (i % 2 ? randomBytes(BLOCK_SIZE) : textBlock(i)));
    const answers = await Promise.all(blocks.map((b) => pool.digest(inPoolBuffer(b), { compress: true })));
    answers.forEach(({ digest }, i) => {
      if (digest.zero) throw new Error('zero');
      expect(digest.hash.equals(blockHash(blocks[i] as Buffer))).toBe(true);
    });
    const back = answers[0]?.plain;
    for (const answer of answers) answer.release();
    expect(pool.blockBuffer().buffer).toBe(answers.at(-1)?.plain.buffer);
    expect(back?.buffer.byteLength).toBe(BLOCK_SIZE);
  });

  it('refuses work once closed', async () => {
    const closed = new BlockPool({ threads: 1 });
    await closed.close();
    await expect(closed.digest(closed.blockBuffer(), { compress: true })).rejects.toThrow(/closed/);
  });
});
