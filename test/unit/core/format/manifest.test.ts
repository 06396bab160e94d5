import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import {
  decodeManifest,
  encodeManifest,
  type Manifest,
  type ManifestEntry,
} from '../../../../lib/core/format/manifest.ts';
import { newId } from '../../../../lib/core/shared/ids.ts';

const segA = newId('segment');
const segB = newId('segment');
function sample(): Manifest {
  const entry = (blockIndex: number, segmentId: string, offset: number): ManifestEntry => ({
    blockIndex,
    hash: randomBytes(32),
    segmentId,
    offset,
    storedLength: 1000,
    encoding: 1,
  });
  return {
    volumeSize: 128 * BLOCK_SIZE,
    blockSize: BLOCK_SIZE,
    segments: new Map([
      [segA, 10_000],
      [segB, 5_000],
    ]),
    entries: [entry(127, segB, 0), entry(0, segA, 0), entry(5, segA, 1000), entry(6, segA, 1000)],
  };
}

describe('manifests', () => {
  it('round-trip, with entries in block order (identical blocks may share a location)', () => {
    const manifest = sample();
    const decoded = decodeManifest(encodeManifest(manifest));
    expect(decoded.volumeSize).toBe(manifest.volumeSize);
    expect(decoded.segments).toEqual(manifest.segments);
    expect(decoded.entries.map((e) => e.blockIndex)).toEqual([0, 5, 6, 127]);
    expect(decoded.entries).toEqual([...manifest.entries].sort((a, b) => a.blockIndex - b.blockIndex));
  });

  it('take 52 bytes a block, plus a small header and one row a segment', () => {
    const manifest = sample();
    expect(encodeManifest(manifest).length).toBe(48 + 2 * 32 + 4 * 52 + 32);
  });

  it('detect tampering, truncation and versions they do not know', () => {
    const bytes = encodeManifest(sample());
    const tampered = Buffer.from(bytes);
    tampered[100] = (tampered[100] ?? 0) ^ 1;
    expect(() => decodeManifest(tampered)).toThrow(/digest does not match/);
    expect(() => decodeManifest(bytes.subarray(0, bytes.length - 10))).toThrow(/truncated/);
    expect(() => decodeManifest(Buffer.from('hello world, not a manifest at all, not at all, no'))).toThrow(
      /not a volsnap manifest/,
    );
    const future = Buffer.from(bytes);
    future.writeUInt32LE(9, 8);
    expect(() => decodeManifest(future)).toThrow(/version 9/);
  });

  it('refuse a block outside the volume with request.invalid naming it', () => {
    const manifest = sample();
    manifest.entries.push({
      blockIndex: 128,
      hash: randomBytes(32),
      segmentId: segA,
      offset: 0,
      storedLength: 10,
      encoding: 0,
    });
    expect(() => encodeManifest(manifest)).toThrow(
      expect.objectContaining({
        code: 'request.invalid',
        message: expect.stringContaining('Block index 128'),
      }),
    );
  });

  it('refuse a block listed twice, or one lying outside its segment', () => {
    const twice = sample();
    twice.entries.push({ ...(twice.entries[0] as ManifestEntry) });
    expect(() => encodeManifest(twice)).toThrow(/appears twice/);
    const outside = sample();
    outside.entries.push({
      blockIndex: 50,
      hash: randomBytes(32),
      segmentId: segB,
      offset: 4500,
      storedLength: 1000,
      encoding: 0,
    });
    expect(() => encodeManifest(outside)).toThrow(/outside segment/);
  });
});
