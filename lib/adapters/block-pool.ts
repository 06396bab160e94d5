import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BLOCK_SIZE } from '../core/format/blocks.ts';
import { CLIENT_ZSTD_LEVEL } from './zstd.ts';

/** What {@link BlockPool.digest} found of one block. */
export type BlockDigest =
  | { zero: true }
  | { zero: false; hash: Buffer; unchanged: true }
  | { zero: false; hash: Buffer; unchanged: false; encoding: number; stored: Uint8Array }
  | { zero: false; hash: Buffer; unchanged: false; encoding?: undefined; stored?: undefined };

interface Pending {
  resolve: (answer: Record<string, unknown>) => void;
  reject: (error: Error) => void;
  worker: Worker;
}

/**
 * Hashing and compression of blocks on worker threads (block-worker.mjs), so that reading,
 * the network and the main thread's bookkeeping overlap with them and several cores share them. A
 * block's bytes are moved to a worker and back (transferred, not copied): the caller's buffer is
 * unusable until the answer comes. Jobs go to the worker with the fewest in flight. A worker that
 * dies fails the jobs it held; nothing is retried. Memory: the caller's buffers plus each answer's
 * compressed bytes. Call {@link close} when done: the workers keep the process alive.
 */
export class BlockPool {
  readonly #workers: Worker[] = [];
  readonly #load = new Map<Worker, number>();
  readonly #pending = new Map<number, Pending>();
  readonly #spare: ArrayBuffer[] = [];
  #nextId = 0;
  #closed = false;

  /** `threads`: workers to start (default: the cores available, at most 4). `level`: zstd's (default {@link CLIENT_ZSTD_LEVEL}). */
  constructor(options: { threads?: number; level?: number } = {}) {
    const threads = Math.max(1, options.threads ?? Math.min(4, availableParallelism()));
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL('./block-worker.mjs', import.meta.url), {
        workerData: { level: options.level ?? CLIENT_ZSTD_LEVEL },
      });
      worker.on('message', (message: Record<string, unknown>) => this.#answered(worker, message));
      worker.on('error', (error) => this.#failAll(worker, error));
      worker.on('exit', (code) => this.#failAll(worker, new Error(`a block worker exited (code ${code})`)));
      this.#workers.push(worker);
      this.#load.set(worker, 0);
    }
  }

  get threads(): number {
    return this.#workers.length;
  }

  /** A block-sized buffer to read into, handed back by {@link digest} answers (reused, not allocated). */
  blockBuffer(): Buffer {
    return Buffer.from(this.#spare.pop() ?? new ArrayBuffer(BLOCK_SIZE));
  }

  /** Hands back a buffer of {@link blockBuffer} for reuse (one no job took, or a job's answered one). */
  recycle(block: Buffer): void {
    if (
      block.byteOffset === 0 &&
      block.buffer.byteLength === BLOCK_SIZE &&
      block.buffer instanceof ArrayBuffer
    )
      this.#spare.push(block.buffer);
  }

  /**
   * Looks at a block read into `block` (a buffer of {@link blockBuffer}, moved to the worker): zero,
   * or its SHA-256; unchanged when that equals `unchangedIf`; else, with `compress`, also its stored
   * form (zstd where smaller, else raw: `stored` is then undefined and the plain bytes are stored).
   * The buffer comes back to {@link blockBuffer}'s spares once the answer is used: `release` it.
   */
  async digest(
    block: Buffer,
    options: { unchangedIf?: Uint8Array; compress: boolean },
  ): Promise<{ digest: BlockDigest; plain: Buffer; release: () => void }> {
    const transfer = this.#transferable(block);
    const answer = await this.#send({ block: transfer, ...options }, [transfer]);
    const plain = Buffer.from(answer.block as ArrayBuffer);
    const release = () => this.recycle(plain);
    if (answer.zero) return { digest: { zero: true }, plain, release };
    const hash = Buffer.from(answer.hash as ArrayBuffer);
    if (answer.unchanged) return { digest: { zero: false, hash, unchanged: true }, plain, release };
    if (answer.encoding === undefined)
      return { digest: { zero: false, hash, unchanged: false }, plain, release };
    const encoding = answer.encoding as number;
    const stored = answer.stored ? new Uint8Array(answer.stored as ArrayBuffer) : plain;
    return { digest: { zero: false, hash, unchanged: false, encoding, stored }, plain, release };
  }

  /** Stops the workers; jobs still in flight fail. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }

  /**
   * The ArrayBuffer the bytes start (moved as it is: offsets into the bytes are offsets into it), or
   * a copy of them when they start inside one or it may be Node's pool of small buffers (under 4 KiB
   * each, in 8 KiB ArrayBuffers: moving one would take it from the buffers sharing it).
   */
  #transferable(bytes: Buffer): ArrayBuffer {
    const own = bytes.byteOffset === 0 && bytes.buffer.byteLength > Buffer.poolSize;
    if (own && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
    const copy = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(copy).set(bytes);
    return copy;
  }

  #send(message: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<Record<string, unknown>> {
    if (this.#closed) return Promise.reject(new Error('the block pool is closed'));
    const worker = this.#workers.reduce((a, b) =>
      (this.#load.get(b) ?? 0) < (this.#load.get(a) ?? 0) ? b : a,
    ) as Worker;
    const id = this.#nextId++;
    this.#load.set(worker, (this.#load.get(worker) ?? 0) + 1);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker });
      worker.postMessage({ ...message, id }, transfer);
    });
  }

  #answered(worker: Worker, message: Record<string, unknown>): void {
    const id = message.id as number;
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    this.#load.set(worker, (this.#load.get(worker) ?? 1) - 1);
    if (typeof message.error === 'string')
      pending.reject(new Error(`a block worker failed: ${message.error}`));
    else pending.resolve(message);
  }

  #failAll(worker: Worker, error: Error): void {
    for (const [id, pending] of this.#pending) {
      if (pending.worker !== worker) continue;
      this.#pending.delete(id);
      pending.reject(error);
    }
  }
}
