import { SnapshotService } from '../core/snapshots/snapshot-service.ts';
import type { ImageAccess } from '../core/volumes/image-location.ts';
import { VolumeService } from '../core/volumes/volumes.ts';
import { accountService } from './identity.ts';
import type { Factory, Region } from './region.ts';

/** Where image-backed volumes may be read from: the region's bucket and the extra image buckets. */
export function imageAccessOf(region: Region): ImageAccess {
  return { regionBucket: region.settings.bucket, extraBuckets: [...region.settings.imageBuckets] };
}

/** The records, bucket and codec every snapshot writer of the region works on (service, workers). */
export function snapshotStores(region: Region) {
  const { snapshots, volumes, objects, compressor } = region.ports;
  return { snapshots, volumes, objects, compressor };
}

export const volumeService: Factory<VolumeService> = (region) =>
  new VolumeService(region.ports.volumes, region.ports.clock, region.name, imageAccessOf(region));

export const snapshotService: Factory<SnapshotService> = (region) =>
  new SnapshotService({
    ...snapshotStores(region),
    clock: region.ports.clock,
    region: region.name,
    queue: region.ports.queue,
    accounts: region.get(accountService),
    ...region.tuning.snapshots,
  });
