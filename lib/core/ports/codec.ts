/**
 * How a block's bytes are stored in a segment. A port: lib/core does not know which zstd binding
 * runs (node:zlib on Lambda's Node 22, a native addon on Node 20).
 */
export const BlockEncoding = { raw: 0, zstd: 1 } as const;
export type BlockEncoding = (typeof BlockEncoding)[keyof typeof BlockEncoding];

export interface Compressor {
  /** zstd-compresses `plain`. Pure and synchronous; callers bound their own concurrency. */
  compress(plain: Uint8Array): Uint8Array;
  /** Decompresses a zstd frame whose plain length is known; throws on a corrupt frame. */
  decompress(stored: Uint8Array, plainLength: number): Uint8Array;
}

/** Encodes a block: zstd where that is smaller, else the raw bytes (incompressible data costs nothing extra). */
export function encodeBlock(
  compressor: Compressor,
  plain: Uint8Array,
): { encoding: BlockEncoding; stored: Uint8Array } {
  const compressed = compressor.compress(plain);
  return compressed.length < plain.length
    ? { encoding: BlockEncoding.zstd, stored: compressed }
    : { encoding: BlockEncoding.raw, stored: plain };
}

export function decodeBlock(
  compressor: Compressor,
  encoding: number,
  stored: Uint8Array,
  plainLength: number,
): Uint8Array {
  if (encoding === BlockEncoding.raw) return stored;
  if (encoding === BlockEncoding.zstd) return compressor.decompress(stored, plainLength);
  throw new Error(`unknown block encoding ${encoding}`);
}
