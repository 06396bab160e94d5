import { BLOCK_SIZE } from '../format/blocks.ts';
import { decodeManifest, encodeManifest, type Manifest } from '../format/manifest.ts';
import type { Compressor } from '../ports/codec.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import type { WorkQueue } from '../ports/queue.ts';
import { VolsnapError } from '../shared/errors.ts';
import type { SnapshotService } from '../snapshots/snapshot-service.ts';
import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';
import { type ImageAccess, imageLocation } from '../volumes/image-location.ts';
import type { VolumeRepository } from '../volumes/volumes.ts';
import { type PartOutcome, PartRunner } from './part-runner.ts';
import { sessionWriter, snapshotPartKind, systemCaller } from './parts.ts';

export interface ImageSnapshotterOptions {
  snapshots: SnapshotRepository;
  volumes: VolumeRepository;
  /** The region's bucket (segments, manifests). */
  objects: ObjectStore;
  /** A store reading the given bucket (images). */
  objectsIn: (bucket: string) => ObjectStore;
  service: SnapshotService;
  compressor: Compressor;
  access: ImageAccess;
  /** Ranged GETs of the image in flight (memory: readConcurrency × rangeBytes, plus a segment). */
  readConcurrency?: number;
  /** Bytes per ranged GET, rounded down to whole blocks. */
  rangeBytes?: number;
  /** Images larger than this are written by several workers, one part each (whole blocks). */
  partBytes?: number;
  /** Where the parts are announced. */
  queue: WorkQueue;
}

/**
 * Snapshots an image-backed volume server-side, as a worker: reads the image object with parallel
 * ranged GETs, writes its blocks against the parent like the CLI does, and completes the snapshot
 * through the same verification. Idempotent per message: a snapshot no longer pending is left
 * alone; a redelivered part already written is not written again, and a redelivered whole-image
 * message starts the writing again (segments of an abandoned attempt are unreferenced and
 * garbage-collected). Failing for good deletes what it wrote, as a copy and an import do.
 */
export class ImageSnapshotter {
  readonly #o: Required<ImageSnapshotterOptions>;
  readonly #runner: PartRunner<Snapshot>;

  constructor(options: ImageSnapshotterOptions) {
    this.#o = { readConcurrency: 4, rangeBytes: 8 * 1024 * 1024, partBytes: 8 * 1024 ** 3, ...options };
    this.#runner = new PartRunner(
      snapshotPartKind(this.#o, {
        // A stray image message for another kind of server-side work leaves that work alone.
        owns: (snapshot) => !snapshot.copiedFrom && !snapshot.importedFrom && !snapshot.verification,
        write: async (snapshot, part) => {
          const parts = snapshot.parts ?? 1;
          const blocksPerPart = this.#partBytes() / BLOCK_SIZE;
          const first = part * blocksPerPart;
          const last = part === parts - 1 ? snapshot.volumeSize / BLOCK_SIZE : first + blocksPerPart;
          return this.#writeBlocks(snapshot, await this.#image(snapshot), first, last, false);
        },
      }),
    );
  }

  /**
   * Writes the snapshot, or for a large image announces its parts; permanent failures leave it in
   * `error` with the reason and delete what it wrote, transient ones throw (the message is
   * delivered again).
   */
  run(snapshotId: string): Promise<'completed' | 'error' | 'skipped' | 'split'> {
    return this.#runner.attempt(snapshotId, async (snapshot) => {
      const image = await this.#image(snapshot);
      const parts = Math.ceil(image.size / this.#partBytes());
      if (parts <= 1) {
        const manifest = await this.#writeBlocks(snapshot, image, 0, snapshot.volumeSize / BLOCK_SIZE, true);
        await this.#complete(snapshot, manifest);
        return 'completed';
      }
      await this.#o.snapshots.transition(snapshot.snapshotId, ['pending'], 'pending', { parts });
      for (let part = 0; part < parts; part++)
        await this.#o.queue.send({ kind: 'snapshot.fromImagePart', snapshotId: snapshot.snapshotId, part });
      return 'split';
    });
  }

  /**
   * Writes one part of a snapshot split by {@link run}; the worker finishing the last part completes
   * it. A redelivered part already written is not written again.
   */
  runPart(snapshotId: string, part: number): Promise<PartOutcome> {
    return this.#runner.runPart(snapshotId, part);
  }

  #partBytes(): number {
    return Math.max(1, Math.floor(this.#o.partBytes / BLOCK_SIZE)) * BLOCK_SIZE;
  }

  /** The image object of the snapshot's volume, checked: allowed, present, not larger than the volume. */
  async #image(snapshot: Snapshot): Promise<{ store: ObjectStore; key: string; size: number; uri: string }> {
    const volume = await this.#o.volumes.get(snapshot.accountId, snapshot.volumeId);
    if (!volume?.imageUri)
      throw new VolsnapError('request.invalid', `Volume ${snapshot.volumeId} has no image to read.`);
    const { bucket, key } = imageLocation(volume.imageUri, snapshot.accountId, this.#o.access);
    const store = this.#o.objectsIn(bucket);
    const head = await store.head(key);
    if (!head) throw new VolsnapError('request.invalid', `The image ${volume.imageUri} does not exist.`);
    if (head.size > snapshot.volumeSize) {
      throw new VolsnapError(
        'request.invalid',
        `The image ${volume.imageUri} is ${head.size} bytes, larger than volume ${volume.volumeId} (${snapshot.volumeSize} bytes).`,
      );
    }
    return { store, key, size: head.size, uri: volume.imageUri };
  }

  async #complete(snapshot: Snapshot, manifest: Manifest): Promise<void> {
    await this.#o.objects.put(ObjectLayout.manifestUpload(snapshot.snapshotId), encodeManifest(manifest));
    await this.#o.service.complete(systemCaller(snapshot.accountId), snapshot.snapshotId);
  }

  /** Writes blocks [first, end) of the volume from the image; returns their manifest. */
  async #writeBlocks(
    snapshot: Snapshot,
    image: { store: ObjectStore; key: string; size: number },
    first: number,
    end: number,
    reportProgress: boolean,
  ): Promise<Manifest> {
    let parent: Manifest | undefined;
    if (snapshot.parentSnapshotId) {
      const bytes = await this.#o.objects.get(ObjectLayout.manifest(snapshot.parentSnapshotId));
      if (bytes) parent = decodeManifest(bytes);
    }
    const writer = sessionWriter(this.#o, snapshot, parent);
    const { readConcurrency } = this.#o;
    // Ranges start on block boundaries: each one is split into whole blocks.
    const rangeBytes = Math.max(1, Math.floor(this.#o.rangeBytes / BLOCK_SIZE)) * BLOCK_SIZE;
    const imageEnd = Math.min(image.size, end * BLOCK_SIZE);
    const ranges: { start: number; end: number }[] = [];
    for (let start = first * BLOCK_SIZE; start < imageEnd; start += rangeBytes)
      ranges.push({ start, end: Math.min(imageEnd, start + rangeBytes) });
    // Read ahead in parallel, consume in order: the writer needs blocks in ascending order.
    const inFlight: Promise<Uint8Array>[] = [];
    let next = 0;
    const fill = () => {
      while (inFlight.length < readConcurrency && next < ranges.length) {
        const range = ranges[next++] as { start: number; end: number };
        inFlight.push(image.store.getRange(image.key, range.start, range.end));
      }
    };
    fill();
    const zero = Buffer.alloc(BLOCK_SIZE);
    let index = first;
    let reported = 0;
    for (let r = 0; r < ranges.length; r++) {
      const data = Buffer.from((await inFlight.shift()) as Uint8Array);
      fill();
      for (let offset = 0; offset < data.length; offset += BLOCK_SIZE) {
        const chunk = data.subarray(offset, offset + BLOCK_SIZE);
        // The image's last block may be short: the rest of it reads as zeros.
        await writer.add(
          index++,
          chunk.length === BLOCK_SIZE ? chunk : Buffer.concat([chunk, zero.subarray(chunk.length)]),
        );
      }
      const progress = Math.floor((95 * (index - first)) / (end - first));
      if (reportProgress && progress >= reported + 5) {
        reported = progress;
        await this.#o.snapshots.transition(snapshot.snapshotId, ['pending'], 'pending', { progress });
      }
    }
    // Past the end of the image the volume is zeros.
    writer.addZeroBlocks(index, end - index);
    return writer.finish();
  }
}
