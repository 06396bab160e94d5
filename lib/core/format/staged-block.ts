import { type Compressor, encodeBlock } from '../ports/codec.ts';
import { VolsnapError } from '../shared/errors.ts';
import { BLOCK_SIZE, blockHash, isZeroBlock } from './blocks.ts';

/**
 * A block PUT through the EBS direct API (PutSnapshotBlock), staged as one object until its snapshot
 * is completed and a worker packs the staged blocks into segments (docs/formats.md, "Staged block").
 *
 * Layout (little-endian): magic "VSNAPSTB"(8) version(u32) encoding(u8: 0 raw, 1 zstd, 2 zero)
 * reserved(3) sha256(plain)(32), then the stored bytes (none for a zero block).
 */
export const STAGED_BLOCK_MAGIC = Buffer.from('VSNAPSTB', 'ascii');
export const STAGED_BLOCK_VERSION = 1;
export const STAGED_BLOCK_HEADER_SIZE = 48;
/** A block of zeros: nothing stored (it is absent from the manifest), but it counts as written. */
export const STAGED_ZERO = 2;

export interface StagedBlock {
  /** SHA-256 of the 524 288 plain bytes (what the client's `x-amz-Checksum` named). */
  hash: Buffer;
  /** 0 raw, 1 zstd (as in segments), or {@link STAGED_ZERO}. */
  encoding: number;
  stored: Uint8Array;
}

/** Encodes a full plain block as a staged object: zstd where smaller, a header alone for zeros. */
export function encodeStagedBlock(
  compressor: Compressor,
  plain: Uint8Array,
  hash = blockHash(plain),
): Buffer {
  if (plain.length !== BLOCK_SIZE)
    throw new Error(`a staged block is ${BLOCK_SIZE} bytes, not ${plain.length}`);
  const { encoding, stored } = isZeroBlock(plain)
    ? { encoding: STAGED_ZERO, stored: new Uint8Array(0) }
    : encodeBlock(compressor, plain);
  const out = Buffer.alloc(STAGED_BLOCK_HEADER_SIZE + stored.length);
  STAGED_BLOCK_MAGIC.copy(out, 0);
  out.writeUInt32LE(STAGED_BLOCK_VERSION, 8);
  out.writeUInt8(encoding, 12);
  hash.copy(out, 16);
  out.set(stored, STAGED_BLOCK_HEADER_SIZE);
  return out;
}

/** Decodes a staged object (the stored bytes are a view of `object`); `data.corrupt` if it is not one. */
export function decodeStagedBlock(object: Uint8Array): StagedBlock {
  const buf = Buffer.from(object.buffer, object.byteOffset, object.byteLength);
  if (buf.length < STAGED_BLOCK_HEADER_SIZE || !buf.subarray(0, 8).equals(STAGED_BLOCK_MAGIC))
    throw new VolsnapError('data.corrupt', 'A staged block has no VSNAPSTB header.');
  const version = buf.readUInt32LE(8);
  const encoding = buf.readUInt8(12);
  if (version !== STAGED_BLOCK_VERSION || encoding > STAGED_ZERO)
    throw new VolsnapError('data.corrupt', `A staged block has version ${version}, encoding ${encoding}.`);
  const stored = buf.subarray(STAGED_BLOCK_HEADER_SIZE);
  if ((encoding === STAGED_ZERO) !== (stored.length === 0) || stored.length > BLOCK_SIZE)
    throw new VolsnapError(
      'data.corrupt',
      `A staged block of encoding ${encoding} holds ${stored.length} bytes.`,
    );
  return { hash: Buffer.from(buf.subarray(16, 48)), encoding, stored };
}
