import { createHash } from 'node:crypto';
import { BLOCK_SIZE } from '../format/blocks.ts';
import { decodeManifest, type Manifest, type ManifestEntry } from '../format/manifest.ts';
import { readSegmentBlock } from '../format/segment.ts';
import { type Caller, requirePermission } from '../identity/identity.ts';
import type { Compressor } from '../ports/codec.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import { VolsnapError } from '../shared/errors.ts';
import { type Tags, withoutReserved } from '../shared/tags.ts';
import type { SnapshotService } from '../snapshots/snapshot-service.ts';
import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';
import type { Volume, VolumeRepository } from '../volumes/volumes.ts';
import { isPermanent, type PartKind, type PartOutcome, PartRunner } from './part-runner.ts';
import { PART_BLOCKS, sessionWriter, snapshotPartKind, systemCaller } from './parts.ts';
import { RUN_BYTES, sharedRunBuffers } from './ranged-reads.ts';

/** A region snapshots can be copied from (this one, or another through the region registry). */
export interface CopySource {
  /** The snapshot, if `caller` may read it there (`snapshot.notFound` otherwise, as for a missing one). */
  readable(caller: Caller, snapshotId: string): Promise<Snapshot>;
  /** A completed snapshot's manifest (undefined once the snapshot is gone). */
  manifest(snapshotId: string): Promise<Manifest | undefined>;
  /** Bytes [start, end) of a segment of `accountId`. */
  /** With `into`, as {@link ObjectStore.getRange}'s: the bytes may be a view of it. */
  readRange(
    accountId: string,
    segmentId: string,
    start: number,
    end: number,
    into?: Uint8Array,
  ): Promise<Uint8Array>;
  /** Holds the source while a copy reads it (retention leaves it alone), until released or `until`. */
  hold(snapshotId: string, holder: string, until: string): Promise<void>;
  release(snapshotId: string, holder: string): Promise<void>;
}

export interface CopyInput {
  sourceRegion: string;
  sourceSnapshotId: string;
  name?: string;
  description?: string;
  tags?: Tags;
  clientToken?: string;
  /** For a copy of an image's snapshot: the copied image, its group and point in time. */
  group?: Pick<Snapshot, 'imageId' | 'groupId' | 'takenAt'>;
}

export interface SnapshotCopierOptions {
  region: string;
  /** Opens a region by name; an unknown one is `region.unknown` (400). */
  source: (region: string) => CopySource;
  snapshots: SnapshotRepository;
  volumes: VolumeRepository;
  /** This region's bucket (segments, manifests, part manifests). */
  objects: ObjectStore;
  service: SnapshotService;
  compressor: Compressor;
  /** Blocks per part: each part is one queue message, one worker, one checkpoint ({@link PART_BLOCKS} by default). */
  partBlocks?: number;
  /** Source reads in flight (each up to `runBytes`). */
  readConcurrency?: number;
  /** Longest ranged GET: neighbouring blocks of a segment are read together up to this size. */
  runBytes?: number;
}

/**
 * Copies snapshots into this region and the caller's account: a new, independent snapshot with its
 * own id. The copy is written against the previous copy of the same source volume (a volume of the
 * caller's that stands for that lineage here), so only blocks whose SHA-256 changed are read from
 * the source and stored; the rest are referenced. Workers copy it in parts; a finished part is a
 * checkpoint (its blocks' manifest is kept), so a worker that dies is replaced by a redelivered
 * message that redoes only its own unfinished part. If the source is deleted or unshared before
 * the copy has read it, the copy fails cleanly (`error`, with the reason); it never completes
 * without all its blocks. Within a part, runs of neighbouring blocks of a source segment are read
 * with one ranged GET, `readConcurrency` ahead, while the segments written are stored two at a
 * time: memory per part is (`readConcurrency` + 1) × `runBytes` plus three segments (with the
 * defaults 5 × 8 + 3 × 16.6 MiB, about 90 MiB).
 */
export class SnapshotCopier {
  readonly #o: Required<SnapshotCopierOptions>;
  readonly #runner: PartRunner<Snapshot>;

  constructor(options: SnapshotCopierOptions) {
    this.#o = { partBlocks: PART_BLOCKS, readConcurrency: 4, runBytes: RUN_BYTES, ...options };
    this.#runner = new PartRunner(this.#kind());
  }

  /** Starts a copy (called in the destination region): checks the source, then queues its parts. */
  async start(caller: Caller, input: CopyInput): Promise<Snapshot> {
    requirePermission(caller, 'snapshot:copy');
    const source = await this.#o.source(input.sourceRegion).readable(caller, input.sourceSnapshotId);
    if (source.state !== 'completed') {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${source.snapshotId} is ${source.state}; only completed snapshots can be copied.`,
        { details: { snapshotId: source.snapshotId, state: source.state } },
      );
    }
    const volume = await this.#targetVolume(caller, input.sourceRegion, source);
    const parts = Math.max(1, Math.ceil(source.volumeSize / BLOCK_SIZE / this.#o.partBlocks));
    const copy = await this.#o.service.createCopy(
      caller,
      volume,
      {
        name: input.name ?? source.name,
        description: input.description ?? source.description,
        // The source's own tags, not the service's (a policy's mark belongs to the source region).
        tags: input.tags ?? withoutReserved(source.tags),
        clientToken: input.clientToken,
        ...(input.group ? { group: input.group } : {}),
      },
      {
        from: { region: input.sourceRegion, snapshotId: source.snapshotId, accountId: source.accountId },
        parts,
      },
    );
    // Held until the copy ends (or its deadline passes): retention policies skip it meanwhile.
    if (copy.state === 'pending')
      await this.#o
        .source(input.sourceRegion)
        .hold(source.snapshotId, copy.snapshotId, copy.deadline)
        .catch(() => undefined);
    return copy;
  }

  /**
   * Copies part `part` of a pending copy; the worker finishing the last part completes it.
   * Permanent failures (source gone or unreadable, corrupt blocks) put the copy in `error` and
   * delete what it wrote; transient ones throw, and the redelivered message redoes this part only.
   */
  runPart(snapshotId: string, part: number): Promise<PartOutcome> {
    return this.#runner.runPart(snapshotId, part);
  }

  /** Copies as a kind of part work: the source is checked at every part, and held until the copy ends. */
  #kind(): PartKind<Snapshot> {
    return snapshotPartKind(this.#o, {
      owns: (copy) => copy.copiedFrom !== undefined,
      check: (copy) => this.#sourceReadable(copy),
      write: (copy, part) => {
        const parts = copy.parts ?? 1;
        // Progress within a part, for copies small enough to be one (larger ones move per part).
        const onProgress =
          parts === 1
            ? async (fraction: number) => {
                await this.#o.snapshots.transition(copy.snapshotId, ['pending'], 'pending', {
                  progress: Math.floor(95 * fraction),
                });
              }
            : undefined;
        return this.#copyBlocks(copy, this.#o.source(copiedFrom(copy).region), part, onProgress);
      },
      // Once the copy is whole, or failed, its source is free for retention again.
      // Best effort: a hold not released lapses at the copy's deadline.
      release: async (copy) => {
        const from = copiedFrom(copy);
        await Promise.resolve()
          .then(() => this.#o.source(from.region).release(from.snapshotId, copy.snapshotId))
          .catch(() => undefined);
      },
    });
  }

  /** Checked again at every part: a source deleted or unshared meanwhile stops the copy. */
  async #sourceReadable(copy: Snapshot): Promise<void> {
    const from = copiedFrom(copy);
    const gone = (cause?: unknown) =>
      new VolsnapError(
        'snapshot.invalidState',
        `The source snapshot ${from.snapshotId} in ${from.region} was deleted or is no longer shared with this account, before the copy had read it.`,
        { cause },
      );
    const readable = await this.#o
      .source(from.region)
      .readable(systemCaller(copy.accountId), from.snapshotId)
      .catch((error) => {
        // Only the source region's refusal says it is gone (404, no longer shared); that region's
        // table or API failing for now (a 5xx, unreachable) is retried with the part.
        throw isPermanent(error) ? gone(error) : error;
      });
    // In the recycle bin it is deleted as far as its owner said: the copy stops.
    if (readable.state !== 'completed') throw gone();
  }

  /** The caller's volume standing for the source volume's lineage here, created on the first copy. */
  async #targetVolume(caller: Caller, sourceRegion: string, source: Snapshot): Promise<Volume> {
    const volumeId = lineageVolumeId(caller.accountId, sourceRegion, source.volumeId);
    const existing = await this.#o.volumes.get(caller.accountId, volumeId);
    if (existing) return existing;
    const volume: Volume = {
      volumeId,
      accountId: caller.accountId,
      name: `copies of ${source.volumeId} (${sourceRegion})`,
      sizeBytes: source.volumeSize,
      tags: {},
      region: this.#o.region,
      createdAt: source.createdAt,
      copiedFrom: { region: sourceRegion, volumeId: source.volumeId, accountId: source.accountId },
    };
    try {
      await this.#o.volumes.create(volume);
    } catch (error) {
      // Two first copies at once: the other one made it.
      const made = await this.#o.volumes.get(caller.accountId, volumeId);
      if (made) return made;
      throw error;
    }
    return volume;
  }

  /** Writes the part's blocks: unchanged ones referenced from the previous copy, the others read from the source and verified. */
  async #copyBlocks(
    copy: Snapshot,
    source: CopySource,
    part: number,
    onProgress?: (fraction: number) => Promise<void>,
  ): Promise<Manifest> {
    const from = copiedFrom(copy);
    const sourceManifest = await source.manifest(from.snapshotId);
    if (!sourceManifest) {
      throw new VolsnapError(
        'snapshot.invalidState',
        `The source snapshot ${from.snapshotId} in ${from.region} was deleted before the copy had read it.`,
      );
    }
    const parent = copy.parentSnapshotId
      ? await this.#o.objects.get(ObjectLayout.manifest(copy.parentSnapshotId))
      : undefined;
    const writer = sessionWriter(this.#o, copy, parent ? decodeManifest(parent) : undefined);
    const first = part * this.#o.partBlocks;
    const end = Math.min(copy.volumeSize / BLOCK_SIZE, first + this.#o.partBlocks);
    const entries = sourceManifest.entries
      .filter((e) => e.blockIndex >= first && e.blockIndex < end)
      .sort((a, b) => a.blockIndex - b.blockIndex);
    // Blocks the previous copy holds are referenced without reading them. The others are read in
    // runs of neighbouring blocks of a segment, ahead in parallel, and consumed in block order.
    const runs: ManifestEntry[][] = [];
    const runOf = new Map<ManifestEntry, number>();
    for (const entry of entries) {
      if (writer.isUnchanged(entry.blockIndex, entry.hash)) continue;
      const run = runs.at(-1);
      const head = run?.[0];
      const tail = run?.at(-1);
      const joins =
        run !== undefined &&
        head !== undefined &&
        tail !== undefined &&
        tail.segmentId === entry.segmentId &&
        tail.offset + tail.storedLength === entry.offset &&
        entry.offset + entry.storedLength - head.offset <= this.#o.runBytes;
      if (joins) run.push(entry);
      else runs.push([entry]);
      runOf.set(entry, runs.length - 1);
    }
    const reads: ({ bytes: Promise<Uint8Array>; into?: Uint8Array } | undefined)[] = [];
    let consumed = 0;
    const total = runOf.size;
    let done = 0;
    let reported = 0;
    const fill = () => {
      while (reads.length < runs.length && reads.length - consumed < this.#o.readConcurrency) {
        const run = runs[reads.length] as ManifestEntry[];
        const head = run[0] as ManifestEntry;
        const tail = run.at(-1) as ManifestEntry;
        const end = tail.offset + tail.storedLength;
        // Read into a buffer of the copier's: each block is copied into the new segment.
        const into = sharedRunBuffers.take(end - head.offset);
        const read = source.readRange(from.accountId, head.segmentId, head.offset, end, into);
        read.catch(() => {}); // awaited in order below; a failure surfaces there
        reads.push({ bytes: read, ...(into ? { into } : {}) });
      }
    };
    fill();
    let current: { run: number; bytes: Uint8Array; base: number; into?: Uint8Array } | undefined;
    let next = first;
    for (const entry of entries) {
      if (entry.blockIndex > next) writer.addZeroBlocks(next, entry.blockIndex - next);
      next = entry.blockIndex + 1;
      if (writer.reuseIfUnchanged(entry.blockIndex, entry.hash)) continue;
      const run = runOf.get(entry) as number;
      if (current?.run !== run) {
        sharedRunBuffers.give(current?.into);
        const read = reads[run] as { bytes: Promise<Uint8Array>; into?: Uint8Array };
        const bytes = await read.bytes;
        reads[run] = undefined;
        consumed = run + 1;
        fill();
        const head = (runs[run] as ManifestEntry[])[0] as ManifestEntry;
        current = { run, bytes, base: head.offset, ...(read.into ? { into: read.into } : {}) };
      }
      const at = entry.offset - current.base;
      const stored = current.bytes.subarray(at, at + entry.storedLength);
      // Verified by decoding (throws data.corrupt, which fails the copy), then kept as it was
      // stored: a copy does not compress again.
      readSegmentBlock(this.#o.compressor, { ...entry, plainLength: BLOCK_SIZE }, stored);
      await writer.addEncoded(entry.blockIndex, entry.hash, entry.encoding, stored);
      done++;
      if (onProgress && done * 20 >= reported * total + total) {
        reported = Math.floor((done * 20) / total);
        await onProgress(done / total);
      }
    }
    sharedRunBuffers.give(current?.into);
    if (end > next) writer.addZeroBlocks(next, end - next);
    return writer.finish();
  }
}

/** Where a copy reads from (every snapshot the copier runs has it: its kind's `owns` checks that). */
function copiedFrom(copy: Snapshot): NonNullable<Snapshot['copiedFrom']> {
  if (!copy.copiedFrom) throw new Error(`snapshot ${copy.snapshotId} is not a copy`);
  return copy.copiedFrom;
}

/**
 * The id of the volume that holds an account's copies of one source volume: derived, so every copy
 * of the lineage finds it (and the previous copy) without a lookup table.
 */
export function lineageVolumeId(accountId: string, sourceRegion: string, sourceVolumeId: string): string {
  const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
  const digest = createHash('sha256').update(`${accountId}\n${sourceRegion}\n${sourceVolumeId}`).digest();
  let id = '';
  for (let i = 0; i < 16; i++) id += alphabet[(digest[i] as number) & 31];
  return `vol-${id}`;
}

/** A region's snapshots as a copy source: its snapshot service decides who may read what. */
export function copySourceOf(service: SnapshotService, objects: ObjectStore): CopySource {
  return {
    readable: (caller, snapshotId) => service.get(caller, snapshotId),
    manifest: async (snapshotId) => {
      const bytes = await objects.get(ObjectLayout.manifest(snapshotId));
      return bytes ? decodeManifest(bytes) : undefined;
    },
    readRange: (accountId, segmentId, start, end, into) =>
      objects.getRange(ObjectLayout.segment(accountId, segmentId), start, end, { into }),
    hold: (snapshotId, holder, until) => service.hold(snapshotId, holder, until),
    release: (snapshotId, holder) => service.release(snapshotId, holder),
  };
}
