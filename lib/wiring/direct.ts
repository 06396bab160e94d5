import { DirectPacker } from '../core/direct/packing.ts';
import { DirectReads } from '../core/direct/reads.ts';
import { DirectWrites } from '../core/direct/writes.ts';
import { DEFAULT_LEASE_MS, DEFAULT_UPLOAD_TIMEOUT_MS } from '../core/snapshots/snapshot-service.ts';
import type { Factory } from './region.ts';
import { snapshotService, snapshotStores } from './snapshots.ts';

/** StartSnapshot, PutSnapshotBlock and CompleteSnapshot of the EBS direct API (the `ebs` function). */
export const directWrites: Factory<DirectWrites> = (region) =>
  new DirectWrites({
    ...snapshotStores(region),
    clock: region.ports.clock,
    queue: region.ports.queue,
    service: region.get(snapshotService),
    region: region.name,
    leaseMs: region.tuning.snapshots?.leaseMs ?? DEFAULT_LEASE_MS,
    uploadTimeoutMs: region.tuning.snapshots?.uploadTimeoutMs ?? DEFAULT_UPLOAD_TIMEOUT_MS,
  });

/** The worker packing blocks staged through the EBS direct API into segments. */
export const directPacker: Factory<DirectPacker> = (region) =>
  new DirectPacker({ ...snapshotStores(region), service: region.get(snapshotService) });

/** The EBS direct API's reads (ListSnapshotBlocks, ListChangedBlocks, GetSnapshotBlock) of a region. */
export const directReads: Factory<DirectReads> = (region) =>
  new DirectReads({
    snapshots: region.get(snapshotService),
    objects: region.ports.objects,
    compressor: region.ports.compressor,
    clock: region.ports.clock,
    tokenKey: region.ports.tokenKey,
  });

/**
 * Reads the record of the snapshot a block route names, as its route will (the region's snapshot
 * repository): the route's `prefetch`, which joins the authentication's DynamoDB request.
 */
export const prefetchSnapshot: Factory<(path: Readonly<Record<string, string>>) => Promise<unknown>> =
  (region) => async (path) => {
    const snapshotId = path.snapshotId;
    return snapshotId ? region.ports.snapshots.get(snapshotId) : undefined;
  };
