import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE, blockHash, isValidVolumeSize, isZeroBlock } from '../../../../lib/core/format/blocks.ts';
import {
  openSegment,
  parseSegmentFooter,
  parseSegmentIndex,
  readSegmentBlock,
  SEGMENT_FOOTER_SIZE,
  SegmentBuilder,
} from '../../../../lib/core/format/segment.ts';
import { BlockEncoding } from '../../../../lib/core/ports/codec.ts';

const zstd = createZstdCompressor();
const randomBlock = () => randomBytes(BLOCK_SIZE);
const textBlock = (seed: number) => Buffer.from(`block ${seed} `.repeat(BLOCK_SIZE).slice(0, BLOCK_SIZE));

function sampleSegment() {
  const blocks = [randomBlock(), textBlock(1), randomBlock(), textBlock(2)];
  const builder = new SegmentBuilder(zstd);
  const entries = blocks.map((b) => builder.add(b));
  return { blocks, entries, object: builder.seal() };
}

describe('blocks', () => {
  it('recognise zero blocks, and only those', () => {
    expect(isZeroBlock(Buffer.alloc(BLOCK_SIZE))).toBe(true);
    const almost = Buffer.alloc(BLOCK_SIZE);
    almost[BLOCK_SIZE - 1] = 1;
    expect(isZeroBlock(almost)).toBe(false);
    expect(isZeroBlock(Buffer.alloc(4096))).toBe(true);
  });
  it('accept volume sizes that are whole, positive numbers of blocks', () => {
    expect(isValidVolumeSize(64 * 1024 * 1024)).toBe(true);
    for (const bad of [0, -BLOCK_SIZE, BLOCK_SIZE + 1, 1.5 * BLOCK_SIZE, Number.NaN])
      expect(isValidVolumeSize(bad)).toBe(false);
  });
});

describe('zstd', () => {
  it('reads frames written by the zstd command line tool, and writes frames it reads', () => {
    const plain = textBlock(7);
    const byTool = execFileSync('zstd', ['-q', '-c', '-3'], { input: plain });
    expect(Buffer.from(zstd.decompress(byTool, plain.length)).equals(plain)).toBe(true);
    const byUs = Buffer.from(zstd.compress(plain));
    expect(execFileSync('zstd', ['-q', '-d', '-c'], { input: byUs }).equals(plain)).toBe(true);
  });
});

describe('segments', () => {
  it('store compressible blocks as zstd and incompressible ones raw, and read every block back', () => {
    const { blocks, entries, object } = sampleSegment();
    expect(entries.map((e) => e.encoding)).toEqual([
      BlockEncoding.raw,
      BlockEncoding.zstd,
      BlockEncoding.raw,
      BlockEncoding.zstd,
    ]);
    expect(entries[0]?.storedLength).toBe(BLOCK_SIZE);
    expect(entries[1]?.storedLength).toBeLessThan(BLOCK_SIZE / 10);
    const segment = openSegment(object, zstd);
    expect(segment.entries.map((e) => e.hash.toString('hex'))).toEqual(
      blocks.map((b) => blockHash(b).toString('hex')),
    );
    segment.entries.forEach((entry, i) => {
      expect(Buffer.from(segment.read(entry)).equals(blocks[i] as Buffer)).toBe(true);
    });
  });

  it('can be read as a remote reader would: the footer from the tail, then the index, then one block', () => {
    const { blocks, object } = sampleSegment();
    const footer = parseSegmentFooter(object.subarray(object.length - SEGMENT_FOOTER_SIZE), object.length);
    expect(footer.entryCount).toBe(4);
    const entries = parseSegmentIndex(
      object.subarray(footer.indexOffset, footer.indexOffset + footer.indexLength),
      footer,
    );
    const third = entries[2];
    if (!third) throw new Error('no third entry');
    const block = readSegmentBlock(
      zstd,
      third,
      object.subarray(third.offset, third.offset + third.storedLength),
    );
    expect(Buffer.from(block).equals(blocks[2] as Buffer)).toBe(true);
  });

  it('name the block whose bytes do not match its SHA-256', () => {
    const { entries, object } = sampleSegment();
    const tampered = Buffer.from(object);
    const victim = entries[2];
    if (!victim) throw new Error('no entry');
    tampered[victim.offset + 100] = (tampered[victim.offset + 100] ?? 0) ^ 0xff;
    const segment = openSegment(tampered, zstd);
    expect(() => segment.read(segment.entries[2] as (typeof segment.entries)[number])).toThrow(
      expect.objectContaining({
        code: 'data.corrupt',
        message: expect.stringContaining(victim.hash.toString('hex')),
      }),
    );
    // The other blocks still read.
    expect(() => segment.read(segment.entries[0] as (typeof segment.entries)[number])).not.toThrow();
  });

  it('reject a corrupt compressed block, a tampered index, a truncated object and an unknown version', () => {
    const { entries, object } = sampleSegment();
    const zstdEntry = entries[1];
    if (!zstdEntry) throw new Error('no entry');
    const badFrame = Buffer.from(object);
    badFrame.fill(0x42, zstdEntry.offset, zstdEntry.offset + zstdEntry.storedLength);
    const segment = openSegment(badFrame, zstd);
    expect(() => segment.read(segment.entries[1] as (typeof segment.entries)[number])).toThrow(
      /does not (decode|match)/,
    );

    const badIndex = Buffer.from(object);
    const footer = parseSegmentFooter(object.subarray(object.length - SEGMENT_FOOTER_SIZE), object.length);
    badIndex[footer.indexOffset + 40] = (badIndex[footer.indexOffset + 40] ?? 0) ^ 1;
    expect(() => openSegment(badIndex, zstd)).toThrow(/index does not match the digest/);

    expect(() => openSegment(object.subarray(0, object.length - 1), zstd)).toThrow(
      /footer magic|does not fit/,
    );
    expect(() => openSegment(object.subarray(0, 10), zstd)).toThrow(/at least 64 bytes/);

    const future = Buffer.from(object);
    future.writeUInt32LE(2, future.length - SEGMENT_FOOTER_SIZE + 8);
    expect(() => openSegment(future, zstd)).toThrow(/version 2 is not supported/);
  });

  it('fill up to the target size and no further', () => {
    const builder = new SegmentBuilder(zstd, 3 * BLOCK_SIZE);
    let added = 0;
    while (builder.fits(BLOCK_SIZE)) {
      builder.add(randomBlock());
      added++;
    }
    expect(added).toBe(3);
    expect(builder.size).toBe(3 * BLOCK_SIZE);
    expect(builder.fits(1)).toBe(false);
    expect(new SegmentBuilder(zstd, 10).fits(BLOCK_SIZE)).toBe(true);
  });
});

describe('segment builders', () => {
  it('keep their own copy of raw blocks, so callers may reuse one read buffer', () => {
    const builder = new SegmentBuilder(zstd);
    const buffer = Buffer.alloc(BLOCK_SIZE);
    const blocks = [randomBlock(), randomBlock(), textBlock(3)];
    for (const block of blocks) {
      block.copy(buffer);
      builder.add(buffer);
    }
    buffer.fill(7);
    const segment = openSegment(builder.seal(), zstd);
    segment.entries.forEach((entry, i) => {
      expect(Buffer.from(segment.read(entry)).equals(blocks[i] as Buffer)).toBe(true);
    });
  });
});
