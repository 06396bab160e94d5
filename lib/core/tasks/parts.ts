import { BLOCK_SIZE } from '../format/blocks.ts';
import { decodeManifest, encodeManifest, type Manifest } from '../format/manifest.ts';
import { segmentCapacity } from '../format/segment.ts';
import { SnapshotWriter, type SnapshotWriterOptions } from '../format/snapshot-writer.ts';
import type { Compressor } from '../ports/codec.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import { newId } from '../shared/ids.ts';
import { systemOf } from '../snapshots/snapshot-access.ts';
import type { SnapshotService } from '../snapshots/snapshot-service.ts';
import { deleteStagedBlocks } from '../snapshots/snapshot-verify.ts';
import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';
import type { PartKind, PartTally } from './part-runner.ts';

/** Where a part's manifest waits for the others (a checkpoint: a finished part is not redone). */
export function partKey(snapshotId: string, part: number): string {
  return `uploads/parts/${snapshotId}/${part}`;
}

/**
 * Merges the parts' manifests of a snapshot written in parts (block ranges are disjoint and
 * ordered) and uploads the result where completion reads it; returns the merged manifest.
 */
export async function mergeParts(objects: ObjectStore, snapshot: Snapshot, parts: number): Promise<Manifest> {
  const merged: Manifest = {
    volumeSize: snapshot.volumeSize,
    blockSize: BLOCK_SIZE,
    segments: new Map(),
    entries: [],
  };
  for (let p = 0; p < parts; p++) {
    const bytes = await objects.get(partKey(snapshot.snapshotId, p));
    if (!bytes)
      throw new Error(`part ${p} of ${snapshot.snapshotId} is marked done but its manifest is missing`);
    const partial = decodeManifest(bytes);
    for (const [id, size] of partial.segments) merged.segments.set(id, size);
    merged.entries.push(...partial.entries);
  }
  await objects.put(ObjectLayout.manifestUpload(snapshot.snapshotId), encodeManifest(merged));
  return merged;
}

export async function deleteParts(objects: ObjectStore, snapshotId: string, parts: number): Promise<void> {
  await objects.deleteMany(Array.from({ length: parts }, (_, p) => partKey(snapshotId, p)));
}

/**
 * After a server-side write failed for good: deletes the segments it stored. They belong to this
 * snapshot's session alone (no other snapshot can reference them: completion checks that), so
 * nothing is orphaned. Idempotent; a worker still writing a redelivered part may add one more,
 * which garbage collection reclaims.
 */
export async function deleteSessionSegments(
  objects: ObjectStore,
  snapshots: Pick<SnapshotRepository, 'sessionSegments'>,
  snapshot: Snapshot,
): Promise<void> {
  const segments = await snapshots.sessionSegments(snapshot.snapshotId);
  await objects.deleteMany(
    [...segments].map((segmentId) => ObjectLayout.segment(snapshot.accountId, segmentId)),
  );
}

/**
 * A writer of a snapshot's blocks for a worker: each new segment is recorded in the snapshot's
 * session before it is stored under the account, so that failing the work can find and delete it.
 * Segments are stored {@link SEGMENT_STORES_IN_FLIGHT} at a time while the writer fills the next
 * (reading and writing overlap); `finish` returns once every one is stored. Memory: the open
 * segment plus the ones being stored, each {@link segmentCapacity} (about 16.6 MiB): at most
 * 3 × 16.6 MiB, their buffers reused.
 */
export function sessionWriter(
  o: {
    snapshots: Pick<SnapshotRepository, 'addSessionSegments'>;
    objects: ObjectStore;
    compressor: Compressor;
    service?: Pick<SnapshotService, 'extendLease'>;
  },
  snapshot: Snapshot,
  parent?: Manifest,
): SnapshotWriter {
  const sink = pipelinedStore(
    (segmentId, object) => o.objects.put(ObjectLayout.segment(snapshot.accountId, segmentId), object),
    SEGMENT_STORES_IN_FLIGHT,
  );
  return new SnapshotWriter({
    volumeSize: snapshot.volumeSize,
    compressor: o.compressor,
    parent,
    nextSegmentId: nextSessionSegment(o, snapshot.snapshotId),
    ...sink,
  });
}

/** Segments a worker's writer stores at once while it fills the next (see {@link sessionWriter}). */
export const SEGMENT_STORES_IN_FLIGHT = 2;

/**
 * A writer's `store` that returns once the object is on its way: at most `inFlight` stores under
 * way (the next waits for a slot), each stored object's buffer handed back for a later segment
 * (`segmentBuffer`; fresh 16 MiB buffers cost page faults), and `flush` waiting for the rest. A
 * failed store fails the next `store` or the `flush`. `put` must not keep the buffer it is given
 * once it resolved (the object stores copy it, or send it).
 */
export function pipelinedStore(
  put: (segmentId: string, object: Buffer) => Promise<void>,
  inFlight: number,
): Pick<SnapshotWriterOptions, 'store' | 'segmentBuffer' | 'flush'> {
  const pending = new Set<Promise<void>>();
  const spare: Buffer[] = [];
  let failure: { error: unknown } | undefined;
  const rethrow = () => {
    if (failure) throw failure.error;
  };
  return {
    store: async (segmentId, object) => {
      rethrow();
      while (pending.size >= inFlight) await Promise.race(pending).catch(() => undefined);
      rethrow();
      const stored: Promise<void> = put(segmentId, object).then(
        () => {
          pending.delete(stored);
          // Only a buffer a segment of any size fits in is reused (not one a caller made smaller).
          if (object.buffer.byteLength - object.byteOffset >= segmentCapacity())
            spare.push(Buffer.from(object.buffer, object.byteOffset, segmentCapacity()));
        },
        (error: unknown) => {
          pending.delete(stored);
          failure ??= { error };
        },
      );
      pending.add(stored);
    },
    segmentBuffer: () => spare.pop() ?? Buffer.allocUnsafe(segmentCapacity()),
    flush: async () => {
      await Promise.all(pending);
      rethrow();
    },
  };
}

/**
 * Blocks per part of a copy or import (512 MiB of the volume): a 1 GiB volume is two parts, worked
 * on at once by two workers, each overlapping its reads with its writes; a part stays well within a
 * worker's time limit, and its checkpoint loses little when a worker dies.
 */
export const PART_BLOCKS = 1024;

/** Segments a worker writes between two extensions of its work's lease (about 128–256 MiB: seconds). */
export const SEGMENTS_PER_HEARTBEAT = 16;

/**
 * The segment ids of a worker writing a snapshot's blocks: each recorded in the snapshot's session
 * before it is used, and every {@link SEGMENTS_PER_HEARTBEAT} segments the work's lease extended
 * (a long part keeps its lease: the reaper sends its parts again only when no worker is on it).
 */
export function nextSessionSegment(
  o: {
    snapshots: Pick<SnapshotRepository, 'addSessionSegments'>;
    service?: Pick<SnapshotService, 'extendLease'>;
  },
  snapshotId: string,
): () => Promise<string> {
  let written = 0;
  return async () => {
    const id = newId('segment');
    await o.snapshots.addSessionSegments(snapshotId, [id]);
    if (++written % SEGMENTS_PER_HEARTBEAT === 0) await o.service?.extendLease(snapshotId);
    return id;
  };
}

/** Workers act for the owner of what they write (the one worker identity, shared with the snapshots). */
export const systemCaller = systemOf;

/** What a kind of server-side snapshot work brings to {@link snapshotPartKind}; the rest is shared. */
export interface SnapshotWork {
  /** Whether a pending snapshot is this kind's work: a stray message of another kind is skipped. */
  owns(snapshot: Snapshot): boolean;
  /** Checked at every delivery (see {@link PartKind.check}). */
  check?(snapshot: Snapshot): Promise<void>;
  /**
   * Writes the part's blocks and returns their manifest. Segments are stored under the account and
   * recorded in the snapshot's session first, so that failing removes them. Memory: one part's reads.
   */
  write(snapshot: Snapshot, part: number): Promise<Manifest>;
  /**
   * Lets go of what the work holds besides its own objects (a source's hold, an import's source),
   * once the snapshot completed or failed. Idempotent.
   */
  release?(snapshot: Snapshot): Promise<void>;
}

export interface SnapshotPartsOptions {
  snapshots: Pick<SnapshotRepository, 'get' | 'completePart' | 'transition' | 'sessionSegments'>;
  objects: ObjectStore;
  service: Pick<SnapshotService, 'complete' | 'extendLease'>;
}

/**
 * A snapshot written in parts by workers, as a {@link PartKind}: a part's checkpoint is its
 * manifest (kept until the last part merges them), the last part completes the snapshot through
 * the usual verification, and failing for good puts it in `error` and deletes its segments, part
 * manifests and staged manifest.
 */
export function snapshotPartKind(o: SnapshotPartsOptions, work: SnapshotWork): PartKind<Snapshot> {
  const counted = async (snapshot: Snapshot, part: number): Promise<PartTally | undefined> => {
    const done = await o.snapshots.completePart(snapshot.snapshotId, part);
    return done === undefined ? undefined : { done };
  };
  return {
    load: async (snapshotId) => {
      const snapshot = await o.snapshots.get(snapshotId);
      return snapshot?.state === 'pending' && work.owns(snapshot) ? snapshot : undefined;
    },
    parts: (snapshot) => snapshot.parts ?? 1,
    isCheckpointed: (snapshot, part) => snapshot.partsDone?.includes(part) ?? false,
    renew: (snapshot) => o.service.extendLease(snapshot.snapshotId),
    check: async (snapshot) => {
      await work.check?.(snapshot);
    },
    work: async (snapshot, part) => {
      const manifest = await work.write(snapshot, part);
      await o.objects.put(partKey(snapshot.snapshotId, part), encodeManifest(manifest));
      return counted(snapshot, part);
    },
    // A part counted twice counts once: the worker that died before finishing is finished for.
    recount: counted,
    progress: async (snapshot, progress) => {
      await o.snapshots.transition(snapshot.snapshotId, ['pending'], 'pending', { progress });
    },
    finish: async (snapshot) => {
      const parts = snapshot.parts ?? 1;
      await mergeParts(o.objects, snapshot, parts);
      await o.service.complete(systemCaller(snapshot.accountId), snapshot.snapshotId);
      await deleteParts(o.objects, snapshot.snapshotId, parts);
      await work.release?.(snapshot);
    },
    fail: async (snapshot, reason) => {
      await failSnapshotWork(o, snapshot, reason);
      await work.release?.(snapshot);
    },
  };
}

/**
 * Puts pending server-side snapshot work in `error` with the reason and deletes what it wrote (the
 * kinds' `fail`, and the reaper's for server-side work that ran out of attempts or time):
 * part manifests, session segments, the staged manifest. Only while the snapshot is in `error`
 * (failed now, or by another path before): one that completed meanwhile keeps its segments.
 */
export async function failSnapshotWork(
  o: Pick<SnapshotPartsOptions, 'snapshots' | 'objects'>,
  snapshot: Snapshot,
  reason: string,
): Promise<void> {
  const failed =
    (await o.snapshots.transition(snapshot.snapshotId, ['pending'], 'error', { stateReason: reason })) ??
    (await o.snapshots.get(snapshot.snapshotId));
  if (failed?.state !== 'error') return;
  await deleteParts(o.objects, snapshot.snapshotId, failed.parts ?? snapshot.parts ?? 1);
  await deleteSessionSegments(o.objects, o.snapshots, snapshot);
  await o.objects.delete(ObjectLayout.manifestUpload(snapshot.snapshotId));
  if (snapshot.direct) await deleteStagedBlocks(o.objects, snapshot.snapshotId);
}
