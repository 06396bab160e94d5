import { type CopySource, copySourceOf, SnapshotCopier } from '../core/tasks/snapshot-copy.ts';
import type { Factory, Region } from './region.ts';
import { snapshotService, snapshotStores } from './snapshots.ts';

/** A region's snapshots as a copy reads them: through that region's own service and bucket. */
export function copySourceIn(region: Region, name: string): CopySource {
  const source = region.region(name);
  return copySourceOf(source.get(snapshotService), source.ports.objects);
}

/** Copies of snapshots from any region into this one. */
export const snapshotCopier: Factory<SnapshotCopier> = (region) =>
  new SnapshotCopier({
    ...snapshotStores(region),
    region: region.name,
    source: (name) => copySourceIn(region, name),
    service: region.get(snapshotService),
    ...region.tuning.copies,
  });
