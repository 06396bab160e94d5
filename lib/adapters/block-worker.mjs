// A worker thread of BlockPool (block-pool.ts): hashes, compresses and checks 512 KiB blocks off the
// main thread. Plain JavaScript, so that it loads as it is under tsx, vitest and the bundled CLI alike
// (build-cli.js copies it beside the bundle). Its zstd is the zstd-napi addon's, else node:zlib's
// (Node.js 22.15 and newer, where the addon is not built): both write and read standard zstd frames.
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
    if (!zlib.zstdCompressSync || !zlib.zstdDecompressSync || levelParam === undefined) throw error;
    return {
      compressSmaller: (plain) => {
        const compressed = zlib.zstdCompressSync(plain, { params: { [levelParam]: level } });
        return compressed.length < plain.length ? compressed : undefined;
      },
      decompress: (stored, plainLength) =>
        zlib.zstdDecompressSync(stored, { maxOutputLength: Math.max(1, plainLength) }),
    };
  }
  const cctx = new binding.CCtx();
  const dctx = new binding.DCtx();
  let out = Buffer.alloc(0);
  return {
    compressSmaller: (plain) => {
      const bound = binding.compressBound(plain.length);
      if (out.length < bound) out = Buffer.allocUnsafe(bound);
      const n = cctx.compress(out, plain, level);
      return n < plain.length ? Buffer.from(out.subarray(0, n)) : undefined;
    },
    decompress: (stored, plainLength) => {
      const plain = Buffer.allocUnsafe(plainLength);
      const n = dctx.decompress(plain, stored);
      return n === plainLength ? plain : plain.subarray(0, n);
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

/**
 * `verify`: a run of stored blocks read from a segment (`run`), each entry { offset, storedLength,
 * encoding, hash, plainLength }. Each is decoded and checked against its SHA-256. Answers, per
 * entry, where its plain bytes are: in `run` itself ({ at }, a raw block) or a buffer of its own
 * ({ plain }); or the first entry that fails ({ failed, message }). `run` goes back with the answer.
 */
function verify({ run, entries }) {
  const bytes = Buffer.from(run);
  const blocks = [];
  const transfer = [run];
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    const stored = bytes.subarray(entry.offset, entry.offset + entry.storedLength);
    const fail = (message) => ({ answer: { failed: i, message, run }, transfer: [run] });
    if (stored.length !== entry.storedLength)
      return fail(`is ${stored.length} bytes stored; its index says ${entry.storedLength}.`);
    let plain;
    if (entry.encoding === RAW) plain = stored;
    else if (entry.encoding === ZSTD) {
      try {
        plain = codec.decompress(stored, entry.plainLength);
      } catch (error) {
        return fail(`does not decode: ${error.message}`);
      }
    } else return fail(`has an unknown encoding (${entry.encoding}).`);
    if (plain.length !== entry.plainLength || !createHash('sha256').update(plain).digest().equals(entry.hash))
      return fail('does not match its SHA-256.');
    if (entry.encoding === RAW) blocks.push({ at: entry.offset });
    else {
      const own_ = own(plain);
      blocks.push({ plain: own_ });
      transfer.push(own_);
    }
  }
  return { answer: { blocks, run }, transfer };
}

parentPort.on('message', (message) => {
  try {
    const { answer, transfer } = message.op === 'verify' ? verify(message) : digest(message);
    parentPort.postMessage({ id: message.id, ...answer }, transfer);
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: error?.message ?? String(error) });
  }
});
