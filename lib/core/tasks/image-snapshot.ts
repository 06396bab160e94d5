import { BLOCK_SIZE } from '../format/blocks.ts';
import { decodeManifest, encodeManifest, type Manifest } from '../format/manifest.ts';
import { SnapshotWriter } from '../format/snapshot-writer.ts';
import type { Compressor } from '../ports/codec.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import type { WorkQueue } from '../ports/queue.ts';
import { VolsnapError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { SnapshotService } from '../snapshots/snapshot-service.ts';
import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';
import { type ImageAccess, imageLocation } from '../volumes/image-location.ts';
import type { VolumeRepository } from '../volumes/volumes.ts';
import { finishPart, systemCaller } from './parts.ts';

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
 * alone; a redelivered message starts the writing again (segments of an abandoned attempt are
 * unreferenced and garbage-collected).
 */
export class ImageSnapshotter {
  readonly #o: Required<ImageSnapshotterOptions>;

  constructor(options: ImageSnapshotterOptions) {
    this.#o = { readConcurrency: 4, rangeBytes: 8 * 1024 * 1024, partBytes: 8 * 1024 ** 3, ...options };
  }

  /**
   * Writes the snapshot, or for a large image announces its parts; permanent failures leave it in
   * `error` with the reason, transient ones throw (the message is delivered again).
   */
  async run(snapshotId: string): Promise<'completed' | 'error' | 'skipped' | 'split'> {
    return this.#guard(snapshotId, async (snapshot) => {
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

  /** Writes one part of a snapshot split by {@link run}; the worker finishing the last part completes it. */
  async runPart(snapshotId: string, part: number): Promise<'completed' | 'error' | 'skipped' | 'part'> {
    return this.#guard(snapshotId, async (snapshot) => {
      const parts = snapshot.parts ?? 1;
      if (part < 0 || part >= parts)
        throw new VolsnapError('request.invalid', `Snapshot ${snapshotId} has no part ${part}.`);
      const image = await this.#image(snapshot);
      const blocksPerPart = this.#partBytes() / BLOCK_SIZE;
      const first = part * blocksPerPart;
      const last = part === parts - 1 ? snapshot.volumeSize / BLOCK_SIZE : first + blocksPerPart;
      const manifest = await this.#writeBlocks(snapshot, image, first, last, false);
      return finishPart(this.#o, snapshot, part, manifest);
    });
  }

  #partBytes(): number {
    return Math.max(1, Math.floor(this.#o.partBytes / BLOCK_SIZE)) * BLOCK_SIZE;
  }

  async #guard<T extends string>(
    snapshotId: string,
    work: (snapshot: Snapshot) => Promise<T>,
  ): Promise<T | 'error' | 'skipped'> {
    const snapshot = await this.#o.snapshots.get(snapshotId);
    if (snapshot?.state !== 'pending') return 'skipped';
    try {
      return await work(snapshot);
    } catch (error) {
      if (error instanceof VolsnapError && error.exposed) {
        await this.#o.snapshots.transition(snapshotId, ['pending'], 'error', { stateReason: error.message });
        return 'error';
      }
      throw error;
    }
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
    const writer = new SnapshotWriter({
      volumeSize: snapshot.volumeSize,
      compressor: this.#o.compressor,
      parent,
      nextSegmentId: async () => {
        const id = newId('segment');
        await this.#o.snapshots.addSessionSegments(snapshot.snapshotId, [id]);
        return id;
      },
      store: (segmentId, object) =>
        this.#o.objects.put(ObjectLayout.segment(snapshot.accountId, segmentId), object),
    });
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
