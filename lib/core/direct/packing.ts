import { createHash } from 'node:crypto';
import { blockCount } from '../format/blocks.ts';
import { decodeManifest, type Manifest, type ManifestEntry } from '../format/manifest.ts';
import { decodeStagedBlock, STAGED_ZERO, type StagedBlock } from '../format/staged-block.ts';
import type { Compressor } from '../ports/codec.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import { VolsnapError } from '../shared/errors.ts';
import type { SnapshotService } from '../snapshots/snapshot-service.ts';
import { deleteStagedBlocks } from '../snapshots/snapshot-verify.ts';
import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';
import { type PartOutcome, PartRunner } from '../tasks/part-runner.ts';
import { sessionWriter, snapshotPartKind } from '../tasks/parts.ts';
import { BLOCKS_PER_PART, invalid } from './writes.ts';

const DIGEST = 32;

export interface DirectPackerOptions {
  snapshots: SnapshotRepository;
  objects: ObjectStore;
  compressor: Compressor;
  service: Pick<SnapshotService, 'complete' | 'extendLease'>;
  /** Staged blocks read ahead of the writer (memory: this many blocks, plus one open segment). */
  readAhead?: number;
}

/**
 * The worker that packs the blocks a client PUT through the EBS direct API, once it called
 * CompleteSnapshot: part by part (8 GiB of the volume each, one queue message each), the staged
 * blocks in index order into new segments of up to 16 MiB (zero blocks absent, a block identical to
 * the parent's at its index or to another of this snapshot stored once), the parent's blocks
 * referenced where nothing was written. The part's manifest and the digests of the blocks it packed
 * are its checkpoint. The worker finishing the last part checks `ChangedBlocksCount` and the LINEAR
 * aggregate checksum against the digests, then completes the snapshot through the usual completion;
 * a wrong count or checksum puts it in `error`. Either way the staged blocks are deleted. A part
 * whose worker died is sent again by the reaper (the snapshot's lease), as for every part work.
 */
export class DirectPacker {
  readonly #o: DirectPackerOptions;
  readonly #runner: PartRunner<Snapshot>;

  constructor(options: DirectPackerOptions) {
    this.#o = options;
    const base = snapshotPartKind(options, {
      owns: (snapshot) => snapshot.direct?.completion !== undefined && !snapshot.verification,
      write: (snapshot, part) => this.#pack(snapshot, part),
      release: (snapshot) => deleteStagedBlocks(options.objects, snapshot.snapshotId),
    });
    this.#runner = new PartRunner({
      ...base,
      finish: async (snapshot, tally) => {
        await this.#checkAggregate(snapshot);
        await base.finish(snapshot, tally);
      },
    });
  }

  /** Packs part `part` of snapshot `snapshotId`; the delivery that packs the last part completes it. */
  runPart(snapshotId: string, part: number): Promise<PartOutcome> {
    return this.#runner.runPart(snapshotId, part);
  }

  /** Packs the part's staged blocks over the parent's; stores the part's digests; returns its manifest. */
  async #pack(snapshot: Snapshot, part: number): Promise<Manifest> {
    const { objects } = this.#o;
    const first = part * BLOCKS_PER_PART;
    const end = Math.min(first + BLOCKS_PER_PART, blockCount(snapshot.volumeSize));
    const staged = await this.#stagedIndices(snapshot.snapshotId, part, first, end);
    const parent = await this.#parent(snapshot);
    const inherited = (parent?.entries ?? []).filter((e) => e.blockIndex >= first && e.blockIndex < end);
    const writer = sessionWriter(this.#o, snapshot, parent);
    const reads = this.#reader(snapshot.snapshotId, part, staged);
    const digests = Buffer.alloc(staged.length * DIGEST);
    let s = 0;
    let p = 0;
    while (s < staged.length || p < inherited.length) {
      const stagedIndex = staged[s] ?? Number.POSITIVE_INFINITY;
      const entry = inherited[p];
      if (entry && entry.blockIndex < stagedIndex) {
        await this.#inherit(writer, snapshot, entry);
        p++;
        continue;
      }
      if (entry?.blockIndex === stagedIndex) p++;
      const block = await reads.next();
      block.hash.copy(digests, s * DIGEST);
      if (block.encoding === STAGED_ZERO) writer.addZeroBlocks(stagedIndex, 1);
      else await writer.addEncoded(stagedIndex, block.hash, block.encoding, block.stored);
      s++;
    }
    const manifest = await writer.finish();
    await objects.put(ObjectLayout.stagedDigests(snapshot.snapshotId, part), digests);
    return manifest;
  }

  /** A block nothing was written to: the parent's, referenced, or rewritten if its segment is mostly dead. */
  async #inherit(
    writer: ReturnType<typeof sessionWriter>,
    snapshot: Snapshot,
    entry: ManifestEntry,
  ): Promise<void> {
    if (writer.reuseIfUnchanged(entry.blockIndex, entry.hash)) return;
    const stored = await this.#o.objects.getRange(
      ObjectLayout.segment(snapshot.accountId, entry.segmentId),
      entry.offset,
      entry.offset + entry.storedLength,
    );
    await writer.addEncoded(entry.blockIndex, entry.hash, entry.encoding, stored);
  }

  /** The block indices staged in the part, ascending. */
  async #stagedIndices(snapshotId: string, part: number, first: number, end: number): Promise<number[]> {
    const indices: number[] = [];
    for await (const object of this.#o.objects.list(ObjectLayout.stagedBlockPrefix(snapshotId, part))) {
      const index = Number(object.key.slice(object.key.lastIndexOf('/') + 1));
      if (Number.isSafeInteger(index) && index >= first && index < end) indices.push(index);
    }
    return indices.sort((a, b) => a - b);
  }

  /** Reads the staged blocks in order, `readAhead` of them in flight. */
  #reader(snapshotId: string, part: number, indices: readonly number[]): { next(): Promise<StagedBlock> } {
    const inFlight: Promise<StagedBlock>[] = [];
    const depth = this.#o.readAhead ?? 16;
    let next = 0;
    const fill = () => {
      while (inFlight.length < depth && next < indices.length) {
        const index = indices[next++] as number;
        const key = ObjectLayout.stagedBlock(snapshotId, part, index);
        inFlight.push(
          this.#o.objects.get(key).then((bytes) => {
            if (!bytes) throw new Error(`staged block ${key} was listed but is gone`);
            return decodeStagedBlock(bytes);
          }),
        );
      }
    };
    // A read that fails before its turn is awaited later: mark it handled so it does not crash the worker.
    const read = () => {
      fill();
      const head = inFlight.shift() as Promise<StagedBlock>;
      for (const pending of inFlight) pending.catch(() => undefined);
      fill();
      return head;
    };
    return { next: read };
  }

  async #parent(snapshot: Snapshot): Promise<Manifest | undefined> {
    if (!snapshot.parentSnapshotId) return undefined;
    const bytes = await this.#o.objects.get(ObjectLayout.manifest(snapshot.parentSnapshotId));
    if (!bytes) {
      throw new VolsnapError(
        'snapshot.notFound',
        `The parent snapshot ${snapshot.parentSnapshotId} was deleted before this snapshot was packed.`,
      );
    }
    return decodeManifest(bytes);
  }

  /** Every block PUT, by the parts' digests: their number and LINEAR checksum as CompleteSnapshot gave them. */
  async #checkAggregate(snapshot: Snapshot): Promise<void> {
    const expected = snapshot.direct?.completion;
    if (!expected) return;
    const aggregate = createHash('sha256');
    let written = 0;
    for (let part = 0; part < (snapshot.parts ?? 1); part++) {
      const digests = await this.#o.objects.get(ObjectLayout.stagedDigests(snapshot.snapshotId, part));
      if (!digests)
        throw new Error(`the digests of packed part ${part} of ${snapshot.snapshotId} are missing`);
      written += digests.length / DIGEST;
      aggregate.update(digests);
    }
    if (written !== expected.changedBlocksCount) {
      throw invalid(
        `CompleteSnapshot's ChangedBlocksCount is ${expected.changedBlocksCount}, but ${written} block(s) were written.`,
      );
    }
    const checksum = aggregate.digest('base64');
    if (expected.checksum !== undefined && checksum !== expected.checksum) {
      throw invalid(
        `CompleteSnapshot's LINEAR checksum is ${expected.checksum}, but the blocks written aggregate to ${checksum} (SHA-256 over their SHA-256 digests in ascending block index).`,
      );
    }
  }
}
