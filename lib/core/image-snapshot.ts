import { BLOCK_SIZE } from './blocks.ts';
import type { Compressor } from './codec.ts';
import { VolsnapError } from './errors.ts';
import type { Caller } from './identity.ts';
import { newId } from './ids.ts';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.ts';
import { ObjectLayout, type ObjectStore } from './objects.ts';
import type { SnapshotService } from './snapshot-service.ts';
import { SnapshotWriter } from './snapshot-writer.ts';
import type { Snapshot, SnapshotRepository } from './snapshots.ts';
import type { VolumeRepository } from './volumes.ts';

/** Which objects may back a volume: the account's own `images/{accountId}/` in the region's bucket, or an allowed bucket. */
export interface ImageAccess {
  regionBucket: string;
  /** Further buckets the deployment may read images from (its IAM role must allow it). */
  extraBuckets: readonly string[];
}

/** `s3://bucket/key` → its parts, if the account may use that object as a volume's bytes. */
export function imageLocation(
  uri: string,
  accountId: string,
  access: ImageAccess,
): { bucket: string; key: string } {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2])
    throw new VolsnapError('request.invalid', `The image must be given as s3://bucket/key; '${uri}' is not.`);
  const [bucket, key] = [match[1], match[2]];
  const own =
    bucket === access.regionBucket &&
    key.startsWith(ObjectLayout.imagePrefix(accountId)) &&
    !key.includes('..');
  if (!own && !access.extraBuckets.includes(bucket)) {
    throw new VolsnapError(
      'request.invalid',
      `volsnap cannot read images from ${bucket}/${key}. Put the image under s3://${access.regionBucket}/${ObjectLayout.imagePrefix(accountId)}, or ask the operator to allow the bucket.`,
    );
  }
  return { bucket, key };
}

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
    this.#o = { readConcurrency: 4, rangeBytes: 8 * 1024 * 1024, ...options };
  }

  /** Writes the snapshot; permanent failures leave it in `error` with the reason, transient ones throw. */
  async run(snapshotId: string): Promise<'completed' | 'error' | 'skipped'> {
    const snapshot = await this.#o.snapshots.get(snapshotId);
    if (snapshot?.state !== 'pending') return 'skipped';
    try {
      await this.#write(snapshot);
      return 'completed';
    } catch (error) {
      if (error instanceof VolsnapError && error.exposed) {
        await this.#o.snapshots.transition(snapshotId, ['pending'], 'error', { stateReason: error.message });
        return 'error';
      }
      throw error;
    }
  }

  async #write(snapshot: Snapshot): Promise<void> {
    const volume = await this.#o.volumes.get(snapshot.accountId, snapshot.volumeId);
    if (!volume?.imageUri)
      throw new VolsnapError('request.invalid', `Volume ${snapshot.volumeId} has no image to read.`);
    const { bucket, key } = imageLocation(volume.imageUri, snapshot.accountId, this.#o.access);
    const images = this.#o.objectsIn(bucket);
    const head = await images.head(key);
    if (!head) throw new VolsnapError('request.invalid', `The image ${volume.imageUri} does not exist.`);
    if (head.size > snapshot.volumeSize) {
      throw new VolsnapError(
        'request.invalid',
        `The image ${volume.imageUri} is ${head.size} bytes, larger than volume ${volume.volumeId} (${snapshot.volumeSize} bytes).`,
      );
    }
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
    const ranges: { start: number; end: number }[] = [];
    for (let start = 0; start < head.size; start += rangeBytes)
      ranges.push({ start, end: Math.min(head.size, start + rangeBytes) });
    // Read ahead in parallel, consume in order: the writer needs blocks in ascending order.
    const inFlight: Promise<Uint8Array>[] = [];
    let next = 0;
    const fill = () => {
      while (inFlight.length < readConcurrency && next < ranges.length) {
        const range = ranges[next++] as { start: number; end: number };
        inFlight.push(images.getRange(key, range.start, range.end));
      }
    };
    fill();
    const blocks = snapshot.volumeSize / BLOCK_SIZE;
    const zero = Buffer.alloc(BLOCK_SIZE);
    let index = 0;
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
      const progress = Math.floor((95 * index) / blocks);
      if (progress >= reported + 5) {
        reported = progress;
        await this.#o.snapshots.transition(snapshot.snapshotId, ['pending'], 'pending', { progress });
      }
    }
    // Past the end of the image the volume is zeros.
    writer.addZeroBlocks(index, blocks - index);
    const manifest = await writer.finish();
    await this.#o.objects.put(ObjectLayout.manifestUpload(snapshot.snapshotId), encodeManifest(manifest));
    const system: Caller = { accountId: snapshot.accountId, keyId: 'system', role: 'owner' };
    await this.#o.service.complete(system, snapshot.snapshotId);
  }
}
