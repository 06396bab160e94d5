import { createHash } from 'node:crypto';
import type { Compressor } from '../ports/codec.ts';
import { VolsnapError } from '../shared/errors.ts';
import { BLOCK_SIZE } from './blocks.ts';
import type { Manifest } from './manifest.ts';
import { readSegmentBlock } from './segment.ts';

/**
 * `vsnap` v1: a snapshot as one portable object (docs/formats.md, "Export: vsnap"). Its layout is
 * known before a byte is written (a header, the stored blocks, an index, a footer), so an exporter
 * can write any byte range of it independently (multipart upload, several workers), and an importer
 * reads the footer with one ranged GET, then the header and index, then blocks in parallel.
 *
 *   [header: 32 bytes + metadata JSON][stored blocks…][index: entryCount × 56][footer: 128]
 */
export const VSNAP_MAGIC = Buffer.from('VSNAPEXP', 'ascii');
export const VSNAP_FOOTER_MAGIC = Buffer.from('VSNAPIDX', 'ascii');
export const VSNAP_VERSION = 1;
export const VSNAP_HEADER_SIZE = 32;
export const VSNAP_INDEX_ENTRY_SIZE = 56;
export const VSNAP_FOOTER_SIZE = 128;
/** Metadata beyond this is refused (a reader allocates it). */
const MAX_METADATA = 64 * 1024;

/** What a vsnap object says about itself. */
export interface VsnapMetadata {
  createdAt: string;
  sourceRegion: string;
  sourceSnapshotId: string;
  /** Free-form, e.g. the snapshot's name, description and tags. */
  [key: string]: unknown;
}

/** One stored block: where it is in the object and what it must hash to. */
export interface VsnapEntry {
  blockIndex: number;
  offset: number;
  storedLength: number;
  encoding: number;
  /** SHA-256 of the plain block. */
  hash: Buffer;
}

/** A vsnap object's layout: everything but the stored blocks' bytes. */
export interface VsnapLayout {
  volumeSize: number;
  blockSize: number;
  metadata: VsnapMetadata;
  header: Buffer;
  entries: VsnapEntry[];
  index: Buffer;
  footer: Buffer;
  /** Offset of the first stored block (= header length). */
  dataOffset: number;
  indexOffset: number;
  totalSize: number;
}

/**
 * The layout of a snapshot's export: the manifest's blocks in block order, each stored exactly as
 * in its segment (no second compression), at offsets fixed here.
 */
export function planVsnap(manifest: Manifest, metadata: VsnapMetadata): VsnapLayout {
  const meta = Buffer.from(JSON.stringify(metadata), 'utf8');
  if (meta.length > MAX_METADATA)
    throw new VolsnapError('request.invalid', 'The export metadata is too large.');
  const header = Buffer.alloc(VSNAP_HEADER_SIZE + meta.length);
  VSNAP_MAGIC.copy(header, 0);
  header.writeUInt32LE(VSNAP_VERSION, 8);
  header.writeUInt32LE(meta.length, 12);
  header.writeBigUInt64LE(BigInt(manifest.volumeSize), 16);
  header.writeUInt32LE(manifest.blockSize, 24);
  meta.copy(header, VSNAP_HEADER_SIZE);
  let offset = header.length;
  const entries: VsnapEntry[] = [...manifest.entries]
    .sort((a, b) => a.blockIndex - b.blockIndex)
    .map((e) => {
      const entry = {
        blockIndex: e.blockIndex,
        offset,
        storedLength: e.storedLength,
        encoding: e.encoding,
        hash: e.hash,
      };
      offset += e.storedLength;
      return entry;
    });
  const index = encodeIndex(entries);
  const indexOffset = offset;
  const footer = encodeFooter({
    entryCount: entries.length,
    indexOffset,
    indexLength: index.length,
    volumeSize: manifest.volumeSize,
    blockSize: manifest.blockSize,
    headerHash: sha256(header),
    indexHash: sha256(index),
  });
  return {
    volumeSize: manifest.volumeSize,
    blockSize: manifest.blockSize,
    metadata,
    header,
    entries,
    index,
    footer,
    dataOffset: header.length,
    indexOffset,
    totalSize: indexOffset + index.length + footer.length,
  };
}

/** What the footer says, checked: the object's size, the digests of header and index. */
export interface VsnapFooter {
  entryCount: number;
  indexOffset: number;
  indexLength: number;
  volumeSize: number;
  blockSize: number;
  headerHash: Buffer;
  indexHash: Buffer;
}

function encodeIndex(entries: VsnapEntry[]): Buffer {
  const index = Buffer.alloc(entries.length * VSNAP_INDEX_ENTRY_SIZE);
  entries.forEach((e, i) => {
    const at = i * VSNAP_INDEX_ENTRY_SIZE;
    index.writeBigUInt64LE(BigInt(e.blockIndex), at);
    index.writeBigUInt64LE(BigInt(e.offset), at + 8);
    index.writeUInt32LE(e.storedLength, at + 16);
    index.writeUInt8(e.encoding, at + 20);
    e.hash.copy(index, at + 24);
  });
  return index;
}

function encodeFooter(f: VsnapFooter): Buffer {
  const footer = Buffer.alloc(VSNAP_FOOTER_SIZE);
  VSNAP_FOOTER_MAGIC.copy(footer, 0);
  footer.writeUInt32LE(VSNAP_VERSION, 8);
  footer.writeBigUInt64LE(BigInt(f.entryCount), 16);
  footer.writeBigUInt64LE(BigInt(f.indexOffset), 24);
  footer.writeBigUInt64LE(BigInt(f.indexLength), 32);
  footer.writeBigUInt64LE(BigInt(f.volumeSize), 40);
  footer.writeUInt32LE(f.blockSize, 48);
  f.headerHash.copy(footer, 56);
  f.indexHash.copy(footer, 88);
  // The last 8 bytes: the first 8 bytes of the SHA-256 of the 120 before, so a footer damaged in
  // itself is told from one that points at damaged data.
  sha256(footer.subarray(0, 120)).copy(footer, 120, 0, 8);
  return footer;
}

function invalid(message: string): VolsnapError {
  return new VolsnapError('data.corrupt', `Not a whole vsnap object: ${message}`);
}

/**
 * Reads the last {@link VSNAP_FOOTER_SIZE} bytes of an object of `objectSize` bytes. Throws
 * `data.corrupt` for another format, a version it does not know, a damaged footer, or sizes that do
 * not add up (a truncated or extended object).
 */
export function parseVsnapFooter(footer: Uint8Array, objectSize: number): VsnapFooter {
  const f = Buffer.from(footer.buffer, footer.byteOffset, footer.byteLength);
  if (f.length !== VSNAP_FOOTER_SIZE || objectSize < VSNAP_HEADER_SIZE + VSNAP_FOOTER_SIZE)
    throw invalid(`it is too short (${objectSize} bytes).`);
  if (!f.subarray(0, 8).equals(VSNAP_FOOTER_MAGIC))
    throw invalid('its last bytes are not a vsnap footer (a truncated object, or not a vsnap export).');
  const version = f.readUInt32LE(8);
  if (version !== VSNAP_VERSION) throw invalid(`version ${version} is not one this reader knows (1).`);
  if (!sha256(f.subarray(0, 120)).subarray(0, 8).equals(f.subarray(120, 128)))
    throw invalid('its footer is damaged.');
  const parsed: VsnapFooter = {
    entryCount: Number(f.readBigUInt64LE(16)),
    indexOffset: Number(f.readBigUInt64LE(24)),
    indexLength: Number(f.readBigUInt64LE(32)),
    volumeSize: Number(f.readBigUInt64LE(40)),
    blockSize: f.readUInt32LE(48),
    headerHash: Buffer.from(f.subarray(56, 88)),
    indexHash: Buffer.from(f.subarray(88, 120)),
  };
  if (
    parsed.indexLength !== parsed.entryCount * VSNAP_INDEX_ENTRY_SIZE ||
    parsed.indexOffset + parsed.indexLength + VSNAP_FOOTER_SIZE !== objectSize
  )
    throw invalid(
      `its footer describes an object of another size than ${objectSize} bytes (truncated or extended).`,
    );
  if (parsed.blockSize !== BLOCK_SIZE || parsed.volumeSize <= 0 || parsed.volumeSize % BLOCK_SIZE !== 0)
    throw invalid(`volume size ${parsed.volumeSize} and block size ${parsed.blockSize} are not volsnap's.`);
  return parsed;
}

/** Checks the header bytes against the footer and returns its metadata. */
export function parseVsnapHeader(header: Uint8Array, footer: VsnapFooter): VsnapMetadata {
  const h = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  if (!sha256(h).equals(footer.headerHash)) throw invalid('its header does not match its digest.');
  if (!h.subarray(0, 8).equals(VSNAP_MAGIC)) throw invalid('it does not start with a vsnap header.');
  if (Number(h.readBigUInt64LE(16)) !== footer.volumeSize || h.readUInt32LE(24) !== footer.blockSize)
    throw invalid('its header and footer disagree on the volume.');
  try {
    return JSON.parse(h.subarray(VSNAP_HEADER_SIZE, VSNAP_HEADER_SIZE + h.readUInt32LE(12)).toString('utf8'));
  } catch {
    throw invalid('its metadata is not JSON.');
  }
}

/** The length of the header, from its first {@link VSNAP_HEADER_SIZE} bytes (to fetch the rest). */
export function vsnapHeaderLength(start: Uint8Array): number {
  const h = Buffer.from(start.buffer, start.byteOffset, start.byteLength);
  if (h.length < VSNAP_HEADER_SIZE || !h.subarray(0, 8).equals(VSNAP_MAGIC))
    throw invalid('it does not start with a vsnap header.');
  const metaLength = h.readUInt32LE(12);
  if (metaLength > MAX_METADATA) throw invalid('its metadata is larger than any vsnap writer makes.');
  return VSNAP_HEADER_SIZE + metaLength;
}

/**
 * Checks the index against the footer's digest and returns its entries, which must be in
 * ascending block order, inside the volume, and lie between the header and the index.
 */
export function parseVsnapIndex(index: Uint8Array, footer: VsnapFooter, dataOffset: number): VsnapEntry[] {
  const x = Buffer.from(index.buffer, index.byteOffset, index.byteLength);
  if (!sha256(x).equals(footer.indexHash)) throw invalid('its index does not match its digest.');
  const entries: VsnapEntry[] = [];
  const blocks = footer.volumeSize / footer.blockSize;
  let previous = -1;
  for (let i = 0; i < footer.entryCount; i++) {
    const at = i * VSNAP_INDEX_ENTRY_SIZE;
    const entry: VsnapEntry = {
      blockIndex: Number(x.readBigUInt64LE(at)),
      offset: Number(x.readBigUInt64LE(at + 8)),
      storedLength: x.readUInt32LE(at + 16),
      encoding: x.readUInt8(at + 20),
      hash: Buffer.from(x.subarray(at + 24, at + 56)),
    };
    if (
      entry.blockIndex <= previous ||
      entry.blockIndex >= blocks ||
      entry.offset < dataOffset ||
      entry.storedLength === 0 ||
      entry.storedLength > BLOCK_SIZE ||
      entry.offset + entry.storedLength > footer.indexOffset
    )
      throw invalid(`index entry ${i} (block ${entry.blockIndex}) lies outside the volume or the object.`);
    previous = entry.blockIndex;
    entries.push(entry);
  }
  return entries;
}

/** Decodes one stored block of a vsnap object and checks its SHA-256 (`data.corrupt` naming it otherwise). */
export function readVsnapBlock(compressor: Compressor, entry: VsnapEntry, stored: Uint8Array): Uint8Array {
  try {
    return readSegmentBlock(
      compressor,
      {
        hash: entry.hash,
        offset: entry.offset,
        storedLength: entry.storedLength,
        plainLength: BLOCK_SIZE,
        encoding: entry.encoding,
      },
      stored,
    );
  } catch (error) {
    throw new VolsnapError(
      'data.corrupt',
      `Block ${entry.blockIndex} of the vsnap object is damaged or tampered with: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}
