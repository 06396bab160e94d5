import { createHash } from 'node:crypto';
import { VolsnapError } from '../shared/errors.ts';
import { BLOCK_SIZE } from './blocks.ts';

/**
 * A snapshot's manifest: for every non-zero block, its index, SHA-256 and where it is stored.
 * Binary, versioned and checksummed; immutable once its snapshot completes (docs/formats.md).
 *
 * Layout (little-endian):
 *   header 48: magic "VSNAPMAN"(8) version(u32) blockSize(u32) volumeSize(u64) segmentCount(u32) entryCount(u32) reserved(16)
 *   segments: segmentCount × 32: segment id, ASCII, zero-padded (24) | object size (u64)
 *   entries:  entryCount × 52, ascending block index: blockIndex(u32) sha256(32) segment(u32, into the
 *             segment table) offset(u32) storedLength(u32) encoding(u8) reserved(3)
 *   trailer 32: SHA-256 of everything before it
 * At 1 TiB fully written (2 Mi blocks) that is about 104 MiB; a 1%-changed child costs the same.
 */
export const MANIFEST_MAGIC = Buffer.from('VSNAPMAN', 'ascii');
export const MANIFEST_VERSION = 1;
const HEADER = 48;
const SEGMENT = 32;
const ENTRY = 52;
const TRAILER = 32;
const SEGMENT_ID_BYTES = 24;

/** One block's place in the manifest. */
export interface ManifestEntry {
  blockIndex: number;
  hash: Buffer;
  segmentId: string;
  offset: number;
  storedLength: number;
  encoding: number;
}

export interface Manifest {
  volumeSize: number;
  blockSize: number;
  /** Segments referenced, with their object sizes. */
  segments: Map<string, number>;
  /** Ascending by block index, one per non-zero block. */
  entries: ManifestEntry[];
}

function corrupt(message: string): VolsnapError {
  return new VolsnapError('data.corrupt', `Manifest: ${message}`);
}

/** Encodes a manifest; entries are sorted and checked (one per block, inside the volume). */
export function encodeManifest(manifest: Manifest): Buffer {
  const entries = [...manifest.entries].sort((a, b) => a.blockIndex - b.blockIndex);
  validateEntries(entries, manifest);
  const segmentIds = [...manifest.segments.keys()];
  const segmentNumber = new Map(segmentIds.map((id, i) => [id, i]));
  const out = Buffer.alloc(HEADER + segmentIds.length * SEGMENT + entries.length * ENTRY + TRAILER);
  MANIFEST_MAGIC.copy(out, 0);
  out.writeUInt32LE(MANIFEST_VERSION, 8);
  out.writeUInt32LE(manifest.blockSize, 12);
  out.writeBigUInt64LE(BigInt(manifest.volumeSize), 16);
  out.writeUInt32LE(segmentIds.length, 24);
  out.writeUInt32LE(entries.length, 28);
  let at = HEADER;
  for (const id of segmentIds) {
    if (Buffer.byteLength(id, 'ascii') > SEGMENT_ID_BYTES) throw new Error(`segment id too long: ${id}`);
    out.write(id, at, 'ascii');
    out.writeBigUInt64LE(BigInt(manifest.segments.get(id) ?? 0), at + SEGMENT_ID_BYTES);
    at += SEGMENT;
  }
  for (const entry of entries) {
    const segment = segmentNumber.get(entry.segmentId);
    if (segment === undefined)
      throw new Error(
        `entry for block ${entry.blockIndex} names segment ${entry.segmentId}, which the manifest does not list`,
      );
    out.writeUInt32LE(entry.blockIndex, at);
    entry.hash.copy(out, at + 4);
    out.writeUInt32LE(segment, at + 36);
    out.writeUInt32LE(entry.offset, at + 40);
    out.writeUInt32LE(entry.storedLength, at + 44);
    out.writeUInt8(entry.encoding, at + 48);
    at += ENTRY;
  }
  createHash('sha256').update(out.subarray(0, at)).digest().copy(out, at);
  return out;
}

/**
 * Decodes and verifies a manifest: magic, version, digest, and that every entry is inside the
 * volume, in order, once, and within its segment. Anything else is `data.corrupt`.
 */
export function decodeManifest(data: Uint8Array): Manifest {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < HEADER + TRAILER || !buf.subarray(0, 8).equals(MANIFEST_MAGIC))
    throw corrupt('not a volsnap manifest.');
  const version = buf.readUInt32LE(8);
  if (version !== MANIFEST_VERSION)
    throw corrupt(`version ${version} is not supported (this build reads ${MANIFEST_VERSION}).`);
  const blockSize = buf.readUInt32LE(12);
  const volumeSize = Number(buf.readBigUInt64LE(16));
  const segmentCount = buf.readUInt32LE(24);
  const entryCount = buf.readUInt32LE(28);
  const expected = HEADER + segmentCount * SEGMENT + entryCount * ENTRY + TRAILER;
  if (buf.length !== expected)
    throw corrupt(`${buf.length} bytes where its header implies ${expected} (truncated or extended).`);
  const body = buf.subarray(0, buf.length - TRAILER);
  if (
    !createHash('sha256')
      .update(body)
      .digest()
      .equals(buf.subarray(buf.length - TRAILER))
  ) {
    throw corrupt('its digest does not match its contents.');
  }
  const segmentIds: string[] = [];
  const segments = new Map<string, number>();
  let at = HEADER;
  for (let i = 0; i < segmentCount; i++) {
    const id = buf.toString('ascii', at, at + SEGMENT_ID_BYTES).replace(/\0+$/, '');
    segmentIds.push(id);
    segments.set(id, Number(buf.readBigUInt64LE(at + SEGMENT_ID_BYTES)));
    at += SEGMENT;
  }
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < entryCount; i++) {
    const segmentId = segmentIds[buf.readUInt32LE(at + 36)];
    if (segmentId === undefined) throw corrupt(`entry ${i} names a segment the manifest does not list.`);
    entries.push({
      blockIndex: buf.readUInt32LE(at),
      hash: Buffer.from(buf.subarray(at + 4, at + 36)),
      segmentId,
      offset: buf.readUInt32LE(at + 40),
      storedLength: buf.readUInt32LE(at + 44),
      encoding: buf.readUInt8(at + 48),
    });
    at += ENTRY;
  }
  const manifest = { volumeSize, blockSize, segments, entries };
  validateEntries(entries, manifest);
  return manifest;
}

function validateEntries(
  entries: readonly ManifestEntry[],
  manifest: Pick<Manifest, 'volumeSize' | 'blockSize' | 'segments'>,
) {
  if (manifest.blockSize !== BLOCK_SIZE)
    throw corrupt(`block size ${manifest.blockSize} is not ${BLOCK_SIZE}.`);
  if (manifest.volumeSize <= 0 || manifest.volumeSize % manifest.blockSize !== 0) {
    throw corrupt(`volume size ${manifest.volumeSize} is not a positive multiple of the block size.`);
  }
  const blocks = manifest.volumeSize / manifest.blockSize;
  let previous = -1;
  for (const entry of entries) {
    if (!Number.isInteger(entry.blockIndex) || entry.blockIndex < 0 || entry.blockIndex >= blocks) {
      throw new VolsnapError(
        'request.invalid',
        `Block index ${entry.blockIndex} is outside the volume (it has ${blocks} blocks).`,
        {
          details: { blockIndex: entry.blockIndex, blockCount: blocks },
        },
      );
    }
    if (entry.blockIndex <= previous)
      throw corrupt(`block ${entry.blockIndex} appears twice or out of order.`);
    previous = entry.blockIndex;
    const size = manifest.segments.get(entry.segmentId);
    if (size === undefined || entry.offset + entry.storedLength > size || entry.storedLength === 0) {
      throw corrupt(`block ${entry.blockIndex} lies outside segment ${entry.segmentId}.`);
    }
  }
}

/** Stored bytes the manifest's blocks take (blocks shared inside it count once per entry). */
export function manifestStoredBytes(manifest: Manifest): number {
  return manifest.entries.reduce((sum, e) => sum + e.storedLength, 0);
}
