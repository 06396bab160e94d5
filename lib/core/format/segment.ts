import { createHash } from 'node:crypto';
import { type Compressor, decodeBlock, encodeBlock } from '../ports/codec.ts';
import { VolsnapError } from '../shared/errors.ts';
import { blockHash } from './blocks.ts';

/**
 * Segments: immutable objects packing many stored blocks, followed by an index of them and a fixed
 * footer, so a segment describes itself (docs/formats.md, "Segment"). A reader fetches the footer
 * with one ranged GET of the last {@link SEGMENT_FOOTER_SIZE} bytes, then the index, then any run of
 * neighbouring blocks in one ranged GET; every block is checked against its SHA-256 when read.
 *
 * Layout (little-endian):
 *   [stored block 0][stored block 1]…[index: entryCount × 56 bytes][footer: 64 bytes]
 *   index entry: sha256(32) offset(u64) storedLength(u32) plainLength(u32) encoding(u8) reserved(7)
 *   footer: magic "VSNAPSEG"(8) version(u32) entryCount(u32) indexOffset(u64) indexLength(u64) sha256(index)(32)
 */
export const SEGMENT_MAGIC = Buffer.from('VSNAPSEG', 'ascii');
export const SEGMENT_VERSION = 1;
export const SEGMENT_FOOTER_SIZE = 64;
export const SEGMENT_INDEX_ENTRY_SIZE = 56;
/** Segments are sealed before their blocks pass this size (the unit of transfer: 16 MiB). */
export const SEGMENT_TARGET_SIZE = 16 * 1024 * 1024;

/** Where one block lives inside a segment. */
export interface SegmentEntry {
  hash: Buffer;
  offset: number;
  storedLength: number;
  plainLength: number;
  encoding: number;
}

export interface SegmentFooter {
  entryCount: number;
  indexOffset: number;
  indexLength: number;
  indexHash: Buffer;
}

function corrupt(message: string): VolsnapError {
  return new VolsnapError('data.corrupt', message);
}

/** Room for a segment's blocks: the target, one block past it, and its index and footer for most. */
export function segmentCapacity(targetSize = SEGMENT_TARGET_SIZE): number {
  return targetSize + 512 * 1024 + 64 * 1024;
}

/**
 * Packs blocks into one segment, written in place into one buffer (the caller's, when it recycles
 * them: a fresh 16 MiB buffer costs page faults on every first touch, several times the copy itself).
 * Not safe for concurrent use; memory held is that buffer.
 */
export class SegmentBuilder {
  #buffer: Buffer;
  readonly #entries: SegmentEntry[] = [];
  #size = 0;

  constructor(
    private readonly compressor: Compressor,
    private readonly targetSize = SEGMENT_TARGET_SIZE,
    /** Where to write (at least {@link segmentCapacity} bytes to never grow); a new one otherwise. */
    buffer?: Buffer,
  ) {
    this.#buffer = buffer ?? Buffer.allocUnsafe(segmentCapacity(targetSize));
  }

  /** Bytes of stored blocks so far. */
  get size(): number {
    return this.#size;
  }

  get entries(): readonly SegmentEntry[] {
    return this.#entries;
  }

  /** Whether a block of `storedLength` still fits below the target size (an empty segment takes any). */
  fits(storedLength: number): boolean {
    return this.#entries.length === 0 || this.#size + storedLength <= this.targetSize;
  }

  /** Encodes and appends a block (its hash computed here unless given); returns where it lives. */
  add(plain: Uint8Array, hash: Buffer = blockHash(plain)): SegmentEntry {
    const { encoding, stored } = encodeBlock(this.compressor, plain);
    return this.addEncoded(hash, plain.length, encoding, stored);
  }

  /** Appends a block already encoded (copied from another segment without decoding); `stored` is copied in. */
  addEncoded(hash: Buffer, plainLength: number, encoding: number, stored: Uint8Array): SegmentEntry {
    this.#ensure(this.#size + stored.length);
    this.#buffer.set(stored, this.#size);
    const entry: SegmentEntry = {
      hash,
      offset: this.#size,
      storedLength: stored.length,
      plainLength,
      encoding,
    };
    this.#entries.push(entry);
    this.#size += stored.length;
    return entry;
  }

  /** The whole segment object: blocks, index, footer (a view of the builder's buffer). */
  seal(): Buffer {
    const index = encodeSegmentIndex(this.#entries);
    const footer = encodeSegmentFooter({
      entryCount: this.#entries.length,
      indexOffset: this.#size,
      indexLength: index.length,
      indexHash: createHash('sha256').update(index).digest(),
    });
    const total = this.#size + index.length + footer.length;
    this.#ensure(total);
    index.copy(this.#buffer, this.#size);
    footer.copy(this.#buffer, this.#size + index.length);
    return this.#buffer.subarray(0, total);
  }

  /** Grows the buffer when a segment outgrows it (many tiny compressed blocks: a large index). */
  #ensure(bytes: number): void {
    if (bytes <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(bytes, this.#buffer.length * 2));
    this.#buffer.copy(grown, 0, 0, this.#size);
    this.#buffer = grown;
  }
}

export function encodeSegmentIndex(entries: readonly SegmentEntry[]): Buffer {
  const index = Buffer.alloc(entries.length * SEGMENT_INDEX_ENTRY_SIZE);
  entries.forEach((entry, i) => {
    const at = i * SEGMENT_INDEX_ENTRY_SIZE;
    entry.hash.copy(index, at);
    index.writeBigUInt64LE(BigInt(entry.offset), at + 32);
    index.writeUInt32LE(entry.storedLength, at + 40);
    index.writeUInt32LE(entry.plainLength, at + 44);
    index.writeUInt8(entry.encoding, at + 48);
  });
  return index;
}

export function encodeSegmentFooter(footer: SegmentFooter): Buffer {
  const out = Buffer.alloc(SEGMENT_FOOTER_SIZE);
  SEGMENT_MAGIC.copy(out, 0);
  out.writeUInt32LE(SEGMENT_VERSION, 8);
  out.writeUInt32LE(footer.entryCount, 12);
  out.writeBigUInt64LE(BigInt(footer.indexOffset), 16);
  out.writeBigUInt64LE(BigInt(footer.indexLength), 24);
  footer.indexHash.copy(out, 32);
  return out;
}

/** Reads the footer from the last {@link SEGMENT_FOOTER_SIZE} bytes of a segment of `objectSize` bytes. */
export function parseSegmentFooter(tail: Uint8Array, objectSize: number): SegmentFooter {
  const buf = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
  if (buf.length !== SEGMENT_FOOTER_SIZE || !buf.subarray(0, 8).equals(SEGMENT_MAGIC)) {
    throw corrupt('Not a volsnap segment: the footer magic is missing (truncated or not a segment).');
  }
  const version = buf.readUInt32LE(8);
  if (version !== SEGMENT_VERSION)
    throw corrupt(
      `Segment format version ${version} is not supported (this build reads ${SEGMENT_VERSION}).`,
    );
  const footer: SegmentFooter = {
    entryCount: buf.readUInt32LE(12),
    indexOffset: Number(buf.readBigUInt64LE(16)),
    indexLength: Number(buf.readBigUInt64LE(24)),
    indexHash: Buffer.from(buf.subarray(32, 64)),
  };
  if (
    footer.indexLength !== footer.entryCount * SEGMENT_INDEX_ENTRY_SIZE ||
    footer.indexOffset + footer.indexLength + SEGMENT_FOOTER_SIZE !== objectSize
  ) {
    throw corrupt(`Segment footer does not fit an object of ${objectSize} bytes (truncated or extended).`);
  }
  return footer;
}

/** Parses and verifies the index (its SHA-256 is in the footer); every entry must lie before the index. */
export function parseSegmentIndex(index: Uint8Array, footer: SegmentFooter): SegmentEntry[] {
  const buf = Buffer.from(index.buffer, index.byteOffset, index.byteLength);
  if (
    buf.length !== footer.indexLength ||
    !createHash('sha256').update(buf).digest().equals(footer.indexHash)
  ) {
    throw corrupt('Segment index does not match the digest in its footer.');
  }
  const entries: SegmentEntry[] = [];
  for (let i = 0; i < footer.entryCount; i++) {
    const at = i * SEGMENT_INDEX_ENTRY_SIZE;
    const entry: SegmentEntry = {
      hash: Buffer.from(buf.subarray(at, at + 32)),
      offset: Number(buf.readBigUInt64LE(at + 32)),
      storedLength: buf.readUInt32LE(at + 40),
      plainLength: buf.readUInt32LE(at + 44),
      encoding: buf.readUInt8(at + 48),
    };
    if (entry.offset + entry.storedLength > footer.indexOffset)
      throw corrupt(`Segment index entry ${i} points past the block area.`);
    entries.push(entry);
  }
  return entries;
}

/**
 * Decodes one stored block and checks it against its SHA-256. Throws `data.corrupt` naming the
 * expected hash when the bytes are not the block they claim to be.
 */
export function readSegmentBlock(
  compressor: Compressor,
  entry: SegmentEntry,
  stored: Uint8Array,
): Uint8Array {
  if (stored.length !== entry.storedLength) {
    throw corrupt(
      `Block ${entry.hash.toString('hex')} is ${stored.length} bytes stored; its index says ${entry.storedLength}.`,
    );
  }
  let plain: Uint8Array;
  try {
    plain = decodeBlock(compressor, entry.encoding, stored, entry.plainLength);
  } catch (cause) {
    throw new VolsnapError(
      'data.corrupt',
      `Block ${entry.hash.toString('hex')} does not decode: ${(cause as Error).message}`,
      { cause },
    );
  }
  if (plain.length !== entry.plainLength || !blockHash(plain).equals(entry.hash)) {
    throw corrupt(`Block ${entry.hash.toString('hex')} does not match its SHA-256.`);
  }
  return plain;
}

/** Parses a whole segment object held in memory: footer, index, and a verified reader of its blocks. */
export function openSegment(object: Uint8Array, compressor: Compressor) {
  const buf = Buffer.from(object.buffer, object.byteOffset, object.byteLength);
  if (buf.length < SEGMENT_FOOTER_SIZE)
    throw corrupt(`A segment is at least ${SEGMENT_FOOTER_SIZE} bytes; this one is ${buf.length}.`);
  const footer = parseSegmentFooter(buf.subarray(buf.length - SEGMENT_FOOTER_SIZE), buf.length);
  const entries = parseSegmentIndex(
    buf.subarray(footer.indexOffset, footer.indexOffset + footer.indexLength),
    footer,
  );
  return {
    footer,
    entries,
    read: (entry: SegmentEntry) =>
      readSegmentBlock(compressor, entry, buf.subarray(entry.offset, entry.offset + entry.storedLength)),
  };
}
