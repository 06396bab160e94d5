import type { BlockPool } from '../adapters/block-pool.ts';
import type { SnapshotWriter } from '../core/format/snapshot-writer.ts';

type Writer = Pick<
  SnapshotWriter,
  'addEncoded' | 'addZeroBlocks' | 'reuseIfUnchanged' | 'reusableParentHash'
>;

type Queued =
  | { index: number; job: Promise<Awaited<ReturnType<BlockPool['digest']>>> }
  | { from: number; count: number };

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
  ) {}

  /** The buffer to read the next block into: {@link add} takes it over. */
  blockBuffer(): Buffer {
    return this.pool.blockBuffer();
  }

  /** Sends block `index` (a buffer of {@link blockBuffer}, taken over) to a worker. */
  async add(index: number, block: Buffer): Promise<void> {
    const unchangedIf = this.writer.reusableParentHash(index);
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
    const { digest, plain, release } = await first.job;
    try {
      if (digest.zero) this.writer.addZeroBlocks(first.index, 1);
      else if (digest.unchanged) {
        if (!this.writer.reuseIfUnchanged(first.index, digest.hash))
          throw new Error(`block ${first.index} matched its parent's copy, which the writer does not reuse`);
      } else {
        // The segment copies the stored bytes in: the block's buffer can be read into again after.
        await this.writer.addEncoded(first.index, digest.hash, digest.encoding ?? 0, digest.stored ?? plain);
      }
    } finally {
      release();
    }
  }
}
