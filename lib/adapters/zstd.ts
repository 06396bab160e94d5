import { createRequire } from 'node:module';
import { version as nodeVersion } from 'node:process';
import zlib from 'node:zlib';
import type { Compressor } from '../core/ports/codec.ts';

/**
 * The zstd level blocks are written with: zstd's own default. On data that does not compress (most
 * of a volume holding media or compressed files) it costs what level 1 costs, since zstd gives up
 * on such blocks early; on real files (an ext4 image of /usr/share) it stores 6% less than level 1
 * (256 vs 274 MiB of 753 MiB, within 2% of restic's `auto`) for about 1.45× level 1's CPU on those
 * blocks (measured with scripts/bench/compressible.ts's image, 512 KiB blocks).
 */
export const DEFAULT_ZSTD_LEVEL = 3;

/**
 * The level the CLI writes blocks at, on worker threads beside its reads (BlockPool). On an ext4
 * image of /usr/share (634 MiB of files in 1 GiB) level 5 stores 247.4 MiB, level 3 252.9 and
 * restic 0.14's `auto` 244.9 (its data files); compressing takes 4.3 CPU-s against 2.1 (zstd-napi,
 * one context reused). On incompressible data zstd gives up early: 0.42 CPU-s per 770 MiB against
 * 0.23. The service's own paths (imports, image snapshots) keep {@link DEFAULT_ZSTD_LEVEL}: there
 * every CPU-second is billed and no spare core waits.
 */
export const CLIENT_ZSTD_LEVEL = 5;

type ZlibWithZstd = typeof zlib & {
  zstdCompressSync?: (data: Uint8Array, options?: { params?: Record<number, number> }) => Buffer;
  zstdDecompressSync?: (data: Uint8Array, options?: { maxOutputLength?: number }) => Buffer;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number };
};

interface ZstdNapi {
  compress(data: Uint8Array, params?: { compressionLevel?: number }): Buffer;
  decompress(data: Uint8Array): Buffer;
}

/**
 * A zstd {@link Compressor}: Node's own zlib where it has zstd (Node ≥ 22.15, as on Lambda's
 * nodejs22.x), else the `zstd-napi` addon (Node 20). Both write standard zstd frames, so either
 * reads what the other wrote. Synchronous: callers bound concurrency themselves.
 */
export function createZstdCompressor(level = DEFAULT_ZSTD_LEVEL): Compressor & { implementation: string } {
  const z = zlib as ZlibWithZstd;
  const compressSync = z.zstdCompressSync;
  const decompressSync = z.zstdDecompressSync;
  const levelParam = z.constants.ZSTD_c_compressionLevel;
  if (compressSync && decompressSync && levelParam !== undefined) {
    return {
      implementation: 'node:zlib',
      compress: (plain) => compressSync(plain, { params: { [levelParam]: level } }),
      // maxOutputLength refuses a frame that holds more; one that holds less is refused here, as below.
      decompress: (stored, plainLength) => {
        const plain = decompressSync(stored, { maxOutputLength: Math.max(1, plainLength) });
        if (plain.length !== plainLength)
          throw new Error(`zstd frame holds ${plain.length} bytes, expected ${plainLength}`);
        return plain;
      },
    };
  }
  let napi: ZstdNapi;
  try {
    napi = createRequire(import.meta.url)('zstd-napi') as ZstdNapi;
  } catch (cause) {
    throw new Error(
      `zstd is not available: this Node.js (${nodeVersion}) has no zstd in zlib and the zstd-napi addon is not installed. Use Node.js 22.15 or newer, or run npm install.`,
      { cause },
    );
  }
  return {
    implementation: 'zstd-napi',
    compress: (plain) => napi.compress(plain, { compressionLevel: level }),
    decompress: (stored, plainLength) => {
      const plain = napi.decompress(stored);
      if (plain.length !== plainLength)
        throw new Error(`zstd frame holds ${plain.length} bytes, expected ${plainLength}`);
      return plain;
    },
  };
}
