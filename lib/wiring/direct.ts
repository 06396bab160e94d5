import { DirectReads } from '../core/direct/reads.ts';
import type { Factory } from './region.ts';
import { snapshotService } from './snapshots.ts';

/** The EBS direct API's reads (ListSnapshotBlocks, ListChangedBlocks, GetSnapshotBlock) of a region. */
export const directReads: Factory<DirectReads> = (region) =>
  new DirectReads({
    snapshots: region.get(snapshotService),
    objects: region.ports.objects,
    compressor: region.ports.compressor,
    clock: region.ports.clock,
    tokenKey: region.ports.tokenKey,
  });
