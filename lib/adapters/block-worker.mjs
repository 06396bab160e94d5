// A worker thread of BlockPool (block-pool.ts): hashes and compresses 512 KiB blocks off the main
// thread. Plain JavaScript, so that it loads as it is under tsx, vitest and the bundled CLI alike
// (build-cli.js copies it beside the bundle). Its zstd is the zstd-napi addon's, else node:zlib's
// (Node.js 22.15 and newer, where the addon is not built): both write standard zstd frames.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import zlib from 'node:zlib';

const RAW = 0;
const ZSTD = 1;
const level = workerData?.level ?? 3;

/**
 * zstd with `compressSmaller(plain)`: the compressed bytes in a buffer of their own, or undefined
 * when zstd does not make them smaller. The addon's contexts compress into one reused buffer, so an
 * incompressible block allocates nothing (fresh output per block would pile up as garbage).
 */
function zstd() {
  let binding;
  try {
    binding = createRequire(import.meta.url)('zstd-napi/binding');
  } catch (error) {
    const levelParam = zlib.constants.ZSTD_c_compressionLevel;
    if (!zlib.zstdCompressSync || levelParam === undefined) throw error;
    return {
      compressSmaller: (plain) => {
        const compressed = zlib.zstdCompressSync(plain, { params: { [levelParam]: level } });
        return compressed.length < plain.length ? compressed : undefined;
      },
    };
  }
  const cctx = new binding.CCtx();
  let out = Buffer.alloc(0);
  return {
    compressSmaller: (plain) => {
      const bound = binding.compressBound(plain.length);
      if (out.length < bound) out = Buffer.allocUnsafe(bound);
      const n = cctx.compress(out, plain, level);
      return n < plain.length ? Buffer.from(out.subarray(0, n)) : undefined;
    },
  };
}
const codec = zstd();

let zeros = Buffer.alloc(0);
function isZero(view) {
  if (zeros.length < view.length) zeros = Buffer.alloc(view.length);
  return view.equals(zeros.subarray(0, view.length));
}

/** A buffer's bytes as a transferable ArrayBuffer of their own (copied only when they share one). */
function own(bytes) {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer;
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

/**
 * `digest`: a block read from a volume. Zero → { zero }. Else its SHA-256; when that equals
 * `unchangedIf` (the parent's copy) → { hash, unchanged }; else, with `compress`, zstd where that is
 * smaller → { hash, encoding, stored }. The block's buffer goes back with every answer.
 */
function digest({ block, unchangedIf, compress }) {
  const view = Buffer.from(block);
  if (isZero(view)) return { answer: { zero: true, block }, transfer: [block] };
  const hash = createHash('sha256').update(view).digest();
  const hashBuffer = own(hash);
  if (unchangedIf && hash.equals(Buffer.from(unchangedIf)))
    return { answer: { hash: hashBuffer, unchanged: true, block }, transfer: [block, hashBuffer] };
  if (!compress) return { answer: { hash: hashBuffer, block }, transfer: [block, hashBuffer] };
  const compressed = codec.compressSmaller(view);
  if (!compressed)
    return { answer: { hash: hashBuffer, encoding: RAW, block }, transfer: [block, hashBuffer] };
  const stored = own(compressed);
  return {
    answer: { hash: hashBuffer, encoding: ZSTD, stored, block },
    transfer: [block, hashBuffer, stored],
  };
}

parentPort.on('message', (message) => {
  try {
    const { answer, transfer } = digest(message);
    parentPort.postMessage({ id: message.id, ...answer }, transfer);
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: error?.message ?? String(error) });
  }
});
