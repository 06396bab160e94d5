import { type CopySource, copySourceOf, SnapshotCopier } from '../core/tasks/snapshot-copy.ts';
import type { Factory, Region } from './region.ts';
import { snapshotService } from './snapshots.ts';

/** A region's snapshots as a copy reads them: through that region's own service and bucket. */
export function copySourceIn(region: Region, name: string): CopySource {
  const source = region.region(name);
  return copySourceOf(source.get(snapshotService), source.ports.objects);
}

/** Copies of snapshots from any region into this one. */
export const snapshotCopier: Factory<SnapshotCopier> = (region) => {
  const { snapshots, volumes, objects, compressor } = region.ports;
  return new SnapshotCopier({
    region: region.name,
    source: (name) => copySourceIn(region, name),
    snapshots,
    volumes,
    objects,
    service: region.get(snapshotService),
    compressor,
    ...region.tuning.copies,
  });
};
