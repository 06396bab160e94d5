import { BLOCK_SIZE } from '../format/blocks.ts';
import { decodeManifest, encodeManifest, type Manifest } from '../format/manifest.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import { systemOf } from '../snapshots/snapshot-access.ts';
import type { SnapshotService } from '../snapshots/snapshot-service.ts';
import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';

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
  for (let p = 0; p < parts; p++) await objects.delete(partKey(snapshotId, p));
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
  for (const segmentId of await snapshots.sessionSegments(snapshot.snapshotId))
    await objects.delete(ObjectLayout.segment(snapshot.accountId, segmentId));
}

/** Workers act for the owner of what they write (the one worker identity, shared with the snapshots). */
export const systemCaller = systemOf;

/**
 * Checkpoints part `part` of a snapshot written in parts (its manifest, unless it was written by an
 * earlier delivery) and, when it is the last part done, merges the parts and completes the snapshot
 * through the usual verification. Idempotent: a part counted twice counts once.
 */
export async function finishPart(
  o: {
    snapshots: Pick<SnapshotRepository, 'completePart' | 'transition'>;
    objects: ObjectStore;
    service: Pick<SnapshotService, 'complete'>;
  },
  snapshot: Snapshot,
  part: number,
  manifest: Manifest | undefined,
): Promise<'part' | 'completed' | 'skipped'> {
  const parts = snapshot.parts ?? 1;
  if (manifest) await o.objects.put(partKey(snapshot.snapshotId, part), encodeManifest(manifest));
  const done = await o.snapshots.completePart(snapshot.snapshotId, part);
  if (done === undefined) return 'skipped';
  if (done < parts) {
    await o.snapshots.transition(snapshot.snapshotId, ['pending'], 'pending', {
      progress: Math.floor((95 * done) / parts),
    });
    return 'part';
  }
  await mergeParts(o.objects, snapshot, parts);
  await o.service.complete(systemCaller(snapshot.accountId), snapshot.snapshotId);
  await deleteParts(o.objects, snapshot.snapshotId, parts);
  return 'completed';
}
