import { open } from 'node:fs/promises';
import type { BlockPool } from '../adapters/block-pool.ts';
import type { SnapshotWriter } from '../core/format/snapshot-writer.ts';

type Writer = Pick<
  SnapshotWriter,
  'addEncoded' | 'addZeroBlocks' | 'reuseIfUnchanged' | 'reusableParentHash'
>;

type Queued =
  | { index: number; job: Promise<Awaited<ReturnType<BlockPool['digest']>>> }
  | { index: number; reuse: Buffer }
  | { from: number; count: number };

/**
 * What was learnt of blocks before the writer existed ({@link hashAhead}): by index, the block's
 * SHA-256, or null for a zero block.
 */
export type KnownBlocks = ReadonlyMap<number, Buffer | null>;

/**
 * A {@link SnapshotWriter} fed through a {@link BlockPool}: each block read is hashed (and, unless
 * unchanged since the parent, compressed) on a worker thread while the next ones are read, and the
 * answers reach the writer in index order, as `readBlocks` gives them. A block is compressed only
 * where it may be stored: one whose SHA-256 equals the parent's reusable copy is not. At most
 * `window` blocks are in flight (memory: window × 512 KiB, plus their compressed bytes); `add`
 * waits while the window is full, and `finish` until every block reached the writer. A worker's
 * failure is thrown by the `add` or `finish` that reaches that block. Not reentrant, as the writer.
 */
export class PooledBlockSink {
  readonly #queue: Queued[] = [];

  constructor(
    private readonly writer: Writer,
    private readonly pool: BlockPool,
    private readonly window = pool.threads * 4,
    /**
     * Blocks hashed ahead: one known zero, or known to equal the parent's reusable copy, is not sent
     * to a worker again. Any other is hashed again from the bytes read now, which are what is stored.
     */
    private readonly known?: KnownBlocks,
  ) {}

  /** The buffer to read the next block into: {@link add} takes it over. */
  blockBuffer(): Buffer {
    return this.pool.blockBuffer();
  }

  /** Sends block `index` (a buffer of {@link blockBuffer}, taken over) to a worker. */
  async add(index: number, block: Buffer): Promise<void> {
    const unchangedIf = this.writer.reusableParentHash(index);
    const known = this.known?.get(index);
    if (known === null || (known && unchangedIf?.equals(known))) {
      this.pool.recycle(block);
      this.#queue.push(known ? { index, reuse: known } : { from: index, count: 1 });
      return;
    }
    const job = this.pool.digest(block, { ...(unchangedIf ? { unchangedIf } : {}), compress: true });
    job.catch(() => {}); // thrown when its turn comes to reach the writer
    this.#queue.push({ index, job });
    while (this.#queue.length > this.window) await this.#applyFirst();
  }

  /** Blocks [from, from + count) are zero: they reach the writer after the blocks before them. */
  addZeroBlocks(from: number, count: number): void {
    if (count <= 0) return;
    if (this.#queue.length === 0) this.writer.addZeroBlocks(from, count);
    else this.#queue.push({ from, count });
  }

  /** Waits until every block added has reached the writer. */
  async finish(): Promise<void> {
    while (this.#queue.length > 0) await this.#applyFirst();
  }

  async #applyFirst(): Promise<void> {
    const first = this.#queue.shift();
    if (!first) return;
    if ('count' in first) {
      this.writer.addZeroBlocks(first.from, first.count);
      return;
    }
    if ('reuse' in first) {
      this.#reuse(first.index, first.reuse);
      return;
    }
    const { digest, plain, release } = await first.job;
    try {
      if (digest.zero) this.writer.addZeroBlocks(first.index, 1);
      else if (digest.unchanged) this.#reuse(first.index, digest.hash);
      else {
        // The segment copies the stored bytes in: the block's buffer can be read into again after.
        await this.writer.addEncoded(first.index, digest.hash, digest.encoding ?? 0, digest.stored ?? plain);
      }
    } finally {
      release();
    }
  }

  /** References the parent's copy of a block found equal to {@link SnapshotWriter.reusableParentHash}. */
  #reuse(index: number, hash: Buffer): void {
    if (!this.writer.reuseIfUnchanged(index, hash))
      throw new Error(`block ${index} matched its parent's copy, which the writer does not reuse`);
  }
}

/** Blocks hashed ahead at most: 4 GiB of a volume, 128 KiB of hashes. */
const HASH_AHEAD_LIMIT = 8192;

/**
 * Reads and hashes the first blocks of `file` on the pool while the caller waits for the service
 * (the snapshot's creation, its parent's manifest), from block 0 on, until `stop` (or the end of the
 * file, or {@link HASH_AHEAD_LIMIT}). `stop` answers what it learnt, for {@link PooledBlockSink}; the
 * file is read again afterwards (from the page cache), so nothing here is stored. Memory: a few
 * blocks in flight and 32 bytes per block hashed. A failure to read ends it early, not the snapshot.
 */
export function hashAhead(
  file: string,
  blocks: number,
  pool: BlockPool,
): { stop: () => Promise<KnownBlocks> } {
  const known = new Map<number, Buffer | null>();
  let stopped = false;
  const run = (async () => {
    const handle = await open(file, 'r');
    const inFlight = new Set<Promise<void>>();
    try {
      for (let index = 0; index < Math.min(blocks, HASH_AHEAD_LIMIT) && !stopped; index++) {
        const buffer = pool.blockBuffer();
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, index * buffer.length);
        if (bytesRead < buffer.length) {
          pool.recycle(buffer);
          break; // the last, short block is left to the read that stores it
        }
        const job = pool.digest(buffer, { compress: false }).then(({ digest, release }) => {
          known.set(index, digest.zero ? null : digest.hash);
          release();
        });
        inFlight.add(job);
        void job.finally(() => inFlight.delete(job)).catch(() => {});
        while (inFlight.size >= pool.threads * 2) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    } finally {
      await handle.close();
    }
  })().catch(() => {});
  return {
    stop: async () => {
      stopped = true;
      await run;
      return known;
    },
  };
}
