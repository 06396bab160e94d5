import { BLOCK_SIZE } from './blocks.ts';
import type { Caller } from './identity.ts';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.ts';
import { ObjectLayout, type ObjectStore } from './objects.ts';
import type { Snapshot } from './snapshots.ts';

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

/** Workers act for the owner of what they write. */
export function systemCaller(accountId: string): Caller {
  return {
    accountId,
    userName: 'volsnap-worker',
    keyId: 'system',
    role: 'owner',
    permissions: [],
    operator: false,
  };
}
