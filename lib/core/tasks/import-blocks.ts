import { BLOCK_SIZE } from '../format/blocks.ts';
import type { DiskFormat } from '../format/disk-format.ts';
import type { Manifest } from '../format/manifest.ts';
import { inflateQcow2Cluster, parseQcow2Header, type Qcow2Cluster, qcow2Cluster } from '../format/qcow2.ts';
import type { SnapshotWriter } from '../format/snapshot-writer.ts';
import {
  parseVsnapFooter,
  parseVsnapHeader,
  parseVsnapIndex,
  readVsnapBlock,
  VSNAP_FOOTER_SIZE,
  VSNAP_HEADER_SIZE,
  type VsnapEntry,
  type VsnapFooter,
  vsnapHeaderLength,
} from '../format/vsnap.ts';
import type { Compressor } from '../ports/codec.ts';
import type { ObjectStore } from '../ports/objects.ts';
import type { RemoteObject } from '../ports/remote.ts';
import { VolsnapError } from '../shared/errors.ts';
import type { SnapshotService } from '../snapshots/snapshot-service.ts';
import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';
import { sessionWriter } from './parts.ts';
import { coalesceRanges, type RunBuffers, readRunsInOrder, sharedRunBuffers } from './ranged-reads.ts';

/** What reading an import's blocks takes: where its segments go, and how it reads. */
export interface ImportBlocksOptions {
  snapshots: Pick<SnapshotRepository, 'addSessionSegments'>;
  /** Extends the import's lease as segments are written (see `nextSessionSegment`). */
  service?: Pick<SnapshotService, 'extendLease'>;
  objects: ObjectStore;
  compressor: Compressor;
  /** Blocks per part. */
  partBlocks: number;
  /** Reads in flight (memory: this many reads, plus a segment). */
  readConcurrency: number;
  /** Bytes per ranged GET of a raw image (whole blocks). */
  rangeBytes: number;
}

/**
 * Reads part `part` of an import's source (vsnap, qcow2 or raw) and writes its blocks, each one
 * checked (vsnap: its SHA-256 and the object's digests; raw: its length); returns the part's manifest.
 */
export async function importBlocks(
  o: ImportBlocksOptions,
  snapshot: Snapshot,
  remote: RemoteObject,
  format: DiskFormat,
  part: number,
): Promise<Manifest> {
  const writer = sessionWriter(o, snapshot);
  const first = part * o.partBlocks;
  const end = Math.min(snapshot.volumeSize / BLOCK_SIZE, first + o.partBlocks);
  if (format === 'vsnap') {
    const { footer, entries } = await readVsnap(remote);
    if (footer.volumeSize !== snapshot.volumeSize) {
      throw new VolsnapError('data.corrupt', 'The vsnap object changed since the import started.');
    }
    const mine = entries.filter((e) => e.blockIndex >= first && e.blockIndex < end);
    // The blocks lie end to end in the object: runs of them are read with one ranged GET each.
    const runs = coalesceRanges(
      mine.map((e) => ({ object: '', start: e.offset, end: e.offset + e.storedLength, item: e })),
      o.rangeBytes,
    );
    let next = first;
    await readRunsInOrder(
      runs,
      o.readConcurrency,
      (run, into) => remote.range(run.start, run.end, into),
      async ({ item: e }, stored) => {
        if (e.blockIndex > next) writer.addZeroBlocks(next, e.blockIndex - next);
        next = e.blockIndex + 1;
        readVsnapBlock(o.compressor, e, stored);
        await writer.addEncoded(e.blockIndex, e.hash, e.encoding, stored);
      },
      // The writer copies each block into its segment: the run's buffer is read into again.
      sharedRunBuffers,
    );
  } else if (format === 'qcow2') {
    const reader = await qcow2Reader(remote);
    const last = Math.min(end, Math.ceil(reader.size / BLOCK_SIZE));
    // Batches of blocks read together: their clusters stored end to end come in one ranged GET.
    const perBatch = Math.max(1, Math.floor(o.rangeBytes / BLOCK_SIZE));
    const batches: number[][] = [];
    for (let index = first; index < last; index += perBatch)
      batches.push(Array.from({ length: Math.min(perBatch, last - index) }, (_, i) => index + i));
    await inOrder(
      o.readConcurrency,
      batches,
      (batch) => reader.blocks(batch, o.rangeBytes),
      async (batch, blocks) => {
        for (const [i, index] of batch.entries())
          await writer.add(index, blocks.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
      },
      (batch) => batch[0] as number,
      writer,
      first,
    );
  } else {
    const imageEnd = Math.min(remote.size, end * BLOCK_SIZE);
    const rangeBytes = Math.max(1, Math.floor(o.rangeBytes / BLOCK_SIZE)) * BLOCK_SIZE;
    const ranges: { start: number; end: number }[] = [];
    for (let start = first * BLOCK_SIZE; start < imageEnd; start += rangeBytes)
      ranges.push({ start, end: Math.min(imageEnd, start + rangeBytes) });
    const zero = Buffer.alloc(BLOCK_SIZE);
    await inOrder(
      o.readConcurrency,
      ranges,
      (r, into) => remote.range(r.start, r.end, into),
      async (r, data) => {
        for (let offset = 0; offset < data.length; offset += BLOCK_SIZE) {
          // A view, not a copy: the writer hashes and encodes the block before it returns.
          const chunk = data.subarray(offset, offset + BLOCK_SIZE);
          const block =
            chunk.length === BLOCK_SIZE ? chunk : Buffer.concat([chunk, zero.subarray(chunk.length)]);
          await writer.add((r.start + offset) / BLOCK_SIZE, block);
        }
      },
      (r) => r.start / BLOCK_SIZE,
      writer,
      first,
      { pool: sharedRunBuffers, lengthOf: (r) => r.end - r.start },
    );
  }
  // After the last block read, the part is zeros.
  const reached = first + writer.report.blocks;
  if (end > reached) writer.addZeroBlocks(reached, end - reached);
  return writer.finish();
}

/**
 * Reads items ahead in parallel (bounded) and hands them to `use` in order, filling the gaps
 * between them with zero blocks. With `buffers`, each read goes into one of them (`read` gets it as
 * `into`), given back once `use` returns: `use` copies what it keeps.
 */
async function inOrder<T>(
  readConcurrency: number,
  items: T[],
  read: (item: T, into?: Uint8Array) => Promise<Uint8Array>,
  use: (item: T, bytes: Uint8Array) => Promise<void>,
  firstBlock: (item: T) => number,
  writer: SnapshotWriter,
  partStart: number,
  buffers?: { pool: RunBuffers; lengthOf: (item: T) => number },
): Promise<void> {
  const reads: Promise<Uint8Array>[] = [];
  const taken: (Uint8Array | undefined)[] = [];
  const fill = (upTo: number) => {
    while (reads.length < Math.min(items.length, upTo)) {
      const into = buffers?.pool.take(buffers.lengthOf(items[reads.length] as T));
      const read_ = read(items[reads.length] as T, into);
      read_.catch(() => {});
      reads.push(read_);
      taken.push(into);
    }
  };
  fill(readConcurrency);
  let next = partStart;
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as T;
    const at = firstBlock(item);
    if (at > next) writer.addZeroBlocks(next, at - next);
    const bytes = await (reads[i] as Promise<Uint8Array>);
    fill(i + 1 + readConcurrency);
    await use(item, bytes);
    buffers?.pool.give(taken[i]);
    taken[i] = undefined;
    next = partStart + writer.report.blocks;
  }
}

/** Reads a qcow2 image's blocks (512 KiB of the guest disk each) through its L1 and L2 tables, a batch at a time. */
async function qcow2Reader(remote: RemoteObject): Promise<{
  size: number;
  /** Blocks `indices` (ascending), end to end; host runs of at most `maxRunBytes` per ranged GET. */
  blocks: (indices: readonly number[], maxRunBytes: number) => Promise<Buffer>;
}> {
  const image = parseQcow2Header(await remote.range(0, Math.min(remote.size, 4096)));
  const clusterSize = 2 ** image.clusterBits;
  const l2Entries = clusterSize / 8;
  const within = (offset: number, length: number) => {
    if (offset + length > remote.size)
      throw new VolsnapError(
        'data.corrupt',
        `The qcow2 image points past its end (offset ${offset}); it is truncated.`,
      );
  };
  within(image.l1Offset, image.l1Size * 8);
  const l1 = Buffer.from(await remote.range(image.l1Offset, image.l1Offset + image.l1Size * 8));
  const tables = new Map<number, Promise<Buffer | undefined>>();
  const table = (i: number) => {
    let found = tables.get(i);
    if (!found) {
      const offset = Number(l1.readBigUInt64BE(i * 8) & 0x00fffffffffffe00n);
      if (offset !== 0) within(offset, clusterSize);
      found =
        offset === 0
          ? Promise.resolve(undefined)
          : remote.range(offset, offset + clusterSize).then((b) => Buffer.from(b));
      tables.set(i, found);
    }
    return found;
  };
  const cluster = async (index: number): Promise<Qcow2Cluster> => {
    const i = Math.floor(index / l2Entries);
    if (i >= image.l1Size) return { kind: 'zero' };
    const l2 = await table(i);
    return l2
      ? qcow2Cluster(l2.readBigUInt64BE((index % l2Entries) * 8), image.clusterBits)
      : { kind: 'zero' };
  };
  let inflated: { offset: number; bytes: Buffer } | undefined;
  return {
    size: image.size,
    blocks: async (indices, maxRunBytes) => {
      const out = Buffer.alloc(indices.length * BLOCK_SIZE);
      // Guest bytes stored next to each other on the host are read together, across blocks.
      const runs: { host: number; length: number; pieces: { at: number; length: number }[] }[] = [];
      for (const [i, index] of indices.entries()) {
        const start = index * BLOCK_SIZE;
        const end = Math.min(start + BLOCK_SIZE, image.size);
        for (let guest = start; guest < end; ) {
          const offsetInCluster = guest % clusterSize;
          const length = Math.min(clusterSize - offsetInCluster, end - guest);
          const where = await cluster(Math.floor(guest / clusterSize));
          const at = i * BLOCK_SIZE + guest - start;
          if (where.kind === 'standard') {
            within(where.offset, clusterSize);
            const host = where.offset + offsetInCluster;
            const run = runs.at(-1);
            if (run && run.host + run.length === host && run.length + length <= maxRunBytes) {
              run.length += length;
              run.pieces.push({ at, length });
            } else runs.push({ host, length, pieces: [{ at, length }] });
          } else if (where.kind === 'compressed') {
            if (inflated?.offset !== where.offset) {
              const length_ = Math.min(where.length, remote.size - where.offset);
              inflated = {
                offset: where.offset,
                bytes: inflateQcow2Cluster(
                  await remote.range(where.offset, where.offset + length_),
                  clusterSize,
                ),
              };
            }
            inflated.bytes.copy(out, at, offsetInCluster, offsetInCluster + length);
          }
          guest += length;
        }
      }
      await Promise.all(
        runs.map(async (run) => {
          const bytes = Buffer.from(await remote.range(run.host, run.host + run.length));
          let from = 0;
          for (const piece of run.pieces) {
            bytes.copy(out, piece.at, from, from + piece.length);
            from += piece.length;
          }
        }),
      );
      return out;
    },
  };
}

/** A vsnap object's footer and index, read with three ranged GETs and checked. */
export async function readVsnap(
  remote: RemoteObject,
): Promise<{ footer: VsnapFooter; entries: VsnapEntry[] }> {
  if (remote.size < VSNAP_HEADER_SIZE + VSNAP_FOOTER_SIZE) {
    throw new VolsnapError(
      'data.corrupt',
      `Not a whole vsnap object: it is too short (${remote.size} bytes).`,
    );
  }
  const footer = parseVsnapFooter(
    await remote.range(remote.size - VSNAP_FOOTER_SIZE, remote.size),
    remote.size,
  );
  const headerLength = vsnapHeaderLength(await remote.range(0, VSNAP_HEADER_SIZE));
  parseVsnapHeader(await remote.range(0, headerLength), footer);
  const index = await remote.range(footer.indexOffset, footer.indexOffset + footer.indexLength);
  return { footer, entries: parseVsnapIndex(index, footer, headerLength) };
}
