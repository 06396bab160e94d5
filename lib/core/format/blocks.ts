import { createHash } from 'node:crypto';

/** The unit of identity, verification and deduplication: 512 KiB, as in the EBS direct APIs. */
export const BLOCK_SIZE = 512 * 1024;

const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE);

/** Whether every byte of `block` is zero. Zero blocks are never stored: they read back as holes. */
export function isZeroBlock(block: Uint8Array): boolean {
  const view = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
  if (view.length === BLOCK_SIZE) return view.equals(ZERO_BLOCK);
  return view.equals(ZERO_BLOCK.subarray(0, view.length));
}

/** SHA-256 of a block's plain bytes: its identity. */
export function blockHash(block: Uint8Array): Buffer {
  return createHash('sha256').update(block).digest();
}

/** How many blocks a volume of `sizeBytes` has; the size must be a whole number of blocks. */
export function blockCount(sizeBytes: number): number {
  return sizeBytes / BLOCK_SIZE;
}

/** The largest volume: 64 TiB, as EBS. */
export const MAX_VOLUME_SIZE = 64 * 2 ** 40;

/** Whether `sizeBytes` is a valid volume size: positive, a multiple of the block size, at most 64 TiB. */
export function isValidVolumeSize(sizeBytes: number): boolean {
  return (
    Number.isSafeInteger(sizeBytes) &&
    sizeBytes > 0 &&
    sizeBytes % BLOCK_SIZE === 0 &&
    sizeBytes <= MAX_VOLUME_SIZE
  );
}
