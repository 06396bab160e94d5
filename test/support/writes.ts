import { BLOCK_SIZE } from '../../lib/core/format/blocks.ts';
import { decodeManifest, encodeManifest } from '../../lib/core/format/manifest.ts';
import { SnapshotWriter, type WriteReport } from '../../lib/core/format/snapshot-writer.ts';
import type { Caller } from '../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../lib/core/ports/objects.ts';
import type { Snapshot } from '../../lib/core/snapshots/snapshots.ts';
import type { MemoryRegion } from './memory-region.ts';

export interface WriteOptions {
  /** Bytes per segment (the writer's default unless given; tests use a few blocks). */
  segmentTargetSize?: number;
  /** Write against the parent's manifest, as the CLI does (default); false writes every block anew. */
  againstParent?: boolean;
  /** Complete the snapshot after writing it (default). */
  complete?: boolean;
}

/**
 * What the CLI does with a pending snapshot, in memory: writes `data`'s blocks into segments named
 * by the service (direct puts into the region's store), uploads the manifest, and completes it.
 */
export async function writeSnapshot(
  region: MemoryRegion,
  caller: Caller,
  pending: Snapshot,
  data: Buffer,
  options: WriteOptions = {},
): Promise<{ snapshot: Snapshot; report: WriteReport }> {
  const { snapshots } = region;
  const { objects, compressor } = region.ports;
  const parentBytes =
    options.againstParent !== false && pending.parentSnapshotId
      ? await objects.get(ObjectLayout.manifest(pending.parentSnapshotId))
      : undefined;
  const writer = new SnapshotWriter({
    volumeSize: data.length,
    compressor,
    parent: parentBytes ? decodeManifest(parentBytes) : undefined,
    ...(options.segmentTargetSize ? { segmentTargetSize: options.segmentTargetSize } : {}),
    nextSegmentId: async () =>
      (await snapshots.uploadUrls(caller, pending.snapshotId, 1)).segments[0]?.segmentId ?? '',
    store: (id, object) => objects.put(ObjectLayout.segment(caller.accountId, id), object),
  });
  for (let i = 0; i * BLOCK_SIZE < data.length; i++)
    await writer.add(i, data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  await objects.put(ObjectLayout.manifestUpload(pending.snapshotId), encodeManifest(await writer.finish()));
  if (options.complete === false) return { snapshot: pending, report: writer.report };
  return { snapshot: await snapshots.complete(caller, pending.snapshotId), report: writer.report };
}
