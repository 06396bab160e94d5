import type { Compressor } from '../ports/codec.ts';
import { BLOCK_SIZE, blockHash, isZeroBlock } from './blocks.ts';
import type { Manifest, ManifestEntry } from './manifest.ts';
import { SegmentBuilder } from './segment.ts';

/** What a writer did with the blocks it was given. */
export interface WriteReport {
  blocks: number;
  zeroBlocks: number;
  /** Unchanged since the parent: the parent's stored copy is referenced. */
  reusedBlocks: number;
  /** Identical to an earlier block of this snapshot: stored once. */
  duplicateBlocks: number;
  /**
   * Unchanged blocks written again because their parent segment was mostly dead (less than half of
   * its bytes still referenced by the parent): keeps segments from fragmenting down a long chain.
   * Counted in newBlocks too.
   */
  rewrittenBlocks: number;
  newBlocks: number;
  /** Plain and stored bytes of the new blocks. */
  newPlainBytes: number;
  newStoredBytes: number;
  segments: number;
}

export interface SnapshotWriterOptions {
  volumeSize: number;
  compressor: Compressor;
  /** The parent snapshot's manifest: blocks it already holds are referenced, not written. */
  parent?: Manifest;
  /** Names the next segment (the server issues ids with upload URLs). */
  nextSegmentId: () => Promise<string>;
  /**
   * Stores a sealed segment. The writer waits for it before filling another, so memory stays at
   * one open segment plus what the callee holds (bound the callee's queue to bound the total).
   */
  store: (segmentId: string, object: Buffer) => Promise<void>;
  segmentTargetSize?: number;
  /**
   * A buffer to build the next segment in (see segmentCapacity). The callee of `store` may hand it
   * back for reuse once it no longer needs the object; without this, every segment gets a new one.
   */
  segmentBuffer?: () => Buffer;
  /**
   * Waits for the stores still under way, called by {@link SnapshotWriter.finish} after the last
   * segment is sealed: for a `store` that returns once its object is on its way, not stored.
   */
  flush?: () => Promise<void>;
}

/** A report of nothing written yet. */
export function emptyWriteReport(): WriteReport {
  return {
    blocks: 0,
    zeroBlocks: 0,
    reusedBlocks: 0,
    duplicateBlocks: 0,
    rewrittenBlocks: 0,
    newBlocks: 0,
    newPlainBytes: 0,
    newStoredBytes: 0,
    segments: 0,
  };
}

/**
 * Writes a snapshot of a volume from its blocks, given in ascending index order: skips zero blocks,
 * references blocks unchanged since the parent, stores identical blocks once, and packs the rest
 * into segments of up to 16 MiB. Memory: one open segment, the parent's block map, and one hash per
 * distinct new block. Not reentrant: call {@link add} sequentially.
 */
export class SnapshotWriter {
  readonly report: WriteReport = emptyWriteReport();
  readonly #entries: ManifestEntry[] = [];
  readonly #segments = new Map<string, number>();
  readonly #parentByIndex = new Map<number, ManifestEntry>();
  /** Parent segments less than half alive: their blocks are rewritten rather than referenced. */
  readonly #sparseSegments = new Set<string>();
  readonly #written = new Map<string, ManifestEntry>();
  #open: { id: string; builder: SegmentBuilder } | undefined;
  #lastIndex = -1;

  constructor(private readonly options: SnapshotWriterOptions) {
    const live = new Map<string, Map<number, number>>();
    for (const entry of options.parent?.entries ?? []) {
      this.#parentByIndex.set(entry.blockIndex, entry);
      const locations = live.get(entry.segmentId) ?? new Map<number, number>();
      locations.set(entry.offset, entry.storedLength);
      live.set(entry.segmentId, locations);
    }
    for (const [segmentId, locations] of live) {
      const size = options.parent?.segments.get(segmentId) ?? 0;
      const liveBytes = [...locations.values()].reduce((sum, n) => sum + n, 0);
      if (size > 0 && liveBytes * 2 < size) this.#sparseSegments.add(segmentId);
    }
  }

  /** Adds block `index` (a full block; a short last read is zero-padded by the caller). */
  async add(index: number, block: Uint8Array): Promise<void> {
    if (index <= this.#lastIndex)
      throw new Error(`blocks must be added in ascending order (${index} after ${this.#lastIndex})`);
    if (block.length !== BLOCK_SIZE)
      throw new Error(`block ${index} is ${block.length} bytes, not ${BLOCK_SIZE}`);
    this.#lastIndex = index;
    this.report.blocks++;
    if (isZeroBlock(block)) {
      this.report.zeroBlocks++;
      return;
    }
    await this.#place(index, blockHash(block), block.length, (builder, hash) => builder.add(block, hash));
  }

  /**
   * Adds block `index` as already encoded (`stored`, in `encoding`) by a caller that has verified it
   * against `hash` (a copy): stored as it is, not encoded again; otherwise as {@link add}.
   */
  async addEncoded(index: number, hash: Buffer, encoding: number, stored: Uint8Array): Promise<void> {
    if (index <= this.#lastIndex)
      throw new Error(`blocks must be added in ascending order (${index} after ${this.#lastIndex})`);
    this.#lastIndex = index;
    this.report.blocks++;
    // The segment copies the bytes in: the caller may reuse its buffer for its next read.
    await this.#place(index, hash, BLOCK_SIZE, (builder) =>
      builder.addEncoded(hash, BLOCK_SIZE, encoding, stored),
    );
  }

  /** References the parent's or an earlier copy of a non-zero block, or stores it with `store`. */
  async #place(
    index: number,
    hash: Buffer,
    plainLength: number,
    store: (
      builder: SegmentBuilder,
      hash: Buffer,
    ) => { offset: number; storedLength: number; encoding: number },
  ): Promise<void> {
    const inParent = this.#parentByIndex.get(index);
    const unchanged = inParent?.hash.equals(hash) ?? false;
    if (inParent && unchanged && !this.#sparseSegments.has(inParent.segmentId)) {
      this.#reference(index, inParent, this.options.parent?.segments.get(inParent.segmentId) ?? 0);
      this.report.reusedBlocks++;
      return;
    }
    if (unchanged) this.report.rewrittenBlocks++;
    const key = hash.toString('hex');
    const earlier = this.#written.get(key);
    if (earlier) {
      this.#entries.push({ ...earlier, blockIndex: index });
      this.report.duplicateBlocks++;
      return;
    }
    const segment = await this.#segmentFor();
    const placed = store(segment.builder, hash);
    const entry: ManifestEntry = {
      blockIndex: index,
      hash,
      segmentId: segment.id,
      offset: placed.offset,
      storedLength: placed.storedLength,
      encoding: placed.encoding,
    };
    this.#entries.push(entry);
    this.#written.set(key, entry);
    this.report.newBlocks++;
    this.report.newPlainBytes += plainLength;
    this.report.newStoredBytes += placed.storedLength;
  }

  /** Whether {@link reuseIfUnchanged} would reference the parent's copy of block `index` (no side effects). */
  isUnchanged(index: number, hash: Buffer): boolean {
    return this.reusableParentHash(index)?.equals(hash) ?? false;
  }

  /**
   * The parent's SHA-256 of block `index` when a block unchanged there is referenced, not written
   * again (the parent has it, in a segment not mostly dead); undefined otherwise. For a caller that
   * hashes blocks elsewhere: a block with this hash needs no compressing ({@link reuseIfUnchanged}).
   */
  reusableParentHash(index: number): Buffer | undefined {
    const inParent = this.#parentByIndex.get(index);
    return inParent && !this.#sparseSegments.has(inParent.segmentId) ? inParent.hash : undefined;
  }

  /**
   * For a caller that knows a block's SHA-256 without holding its bytes (a copy reads the source's
   * manifest): references the parent's copy if block `index` is unchanged there (and its segment is
   * not mostly dead) and returns true; otherwise returns false and the caller must {@link add} it.
   */
  reuseIfUnchanged(index: number, hash: Buffer): boolean {
    if (index <= this.#lastIndex)
      throw new Error(`blocks must be added in ascending order (${index} after ${this.#lastIndex})`);
    if (!this.isUnchanged(index, hash)) return false;
    const inParent = this.#parentByIndex.get(index) as ManifestEntry;
    this.#lastIndex = index;
    this.report.blocks++;
    this.#reference(index, inParent, this.options.parent?.segments.get(inParent.segmentId) ?? 0);
    this.report.reusedBlocks++;
    return true;
  }

  /** Counts blocks [from, from + count) as zero without looking at them (past the end of a file or image). */
  addZeroBlocks(from: number, count: number): void {
    if (count <= 0) return;
    if (from <= this.#lastIndex)
      throw new Error(`blocks must be added in ascending order (${from} after ${this.#lastIndex})`);
    this.#lastIndex = from + count - 1;
    this.report.blocks += count;
    this.report.zeroBlocks += count;
  }

  /** Seals the last segment and returns the manifest of the snapshot. */
  async finish(): Promise<Manifest> {
    await this.#seal();
    await this.options.flush?.();
    return {
      volumeSize: this.options.volumeSize,
      blockSize: BLOCK_SIZE,
      segments: this.#segments,
      entries: this.#entries,
    };
  }

  #reference(index: number, entry: ManifestEntry, segmentSize: number): void {
    this.#entries.push({ ...entry, blockIndex: index });
    this.#segments.set(entry.segmentId, segmentSize);
  }

  async #segmentFor(): Promise<{ id: string; builder: SegmentBuilder }> {
    // A block is at most BLOCK_SIZE stored (raw when zstd does not shrink it).
    if (this.#open && !this.#open.builder.fits(BLOCK_SIZE)) await this.#seal();
    if (!this.#open) {
      this.#open = {
        id: await this.options.nextSegmentId(),
        builder: new SegmentBuilder(
          this.options.compressor,
          this.options.segmentTargetSize,
          this.options.segmentBuffer?.(),
        ),
      };
    }
    return this.#open;
  }

  async #seal(): Promise<void> {
    const open = this.#open;
    if (!open) return;
    this.#open = undefined;
    const object = open.builder.seal();
    this.#segments.set(open.id, object.length);
    this.report.segments++;
    await this.options.store(open.id, object);
  }
}
