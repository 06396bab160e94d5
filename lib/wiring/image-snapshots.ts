import { ImageSnapshotter } from '../core/tasks/image-snapshot.ts';
import type { Factory } from './region.ts';
import { imageAccessOf, snapshotService } from './snapshots.ts';

/** Server-side snapshots of image-backed volumes (the worker's use case). */
export const imageSnapshotter: Factory<ImageSnapshotter> = (region) => {
  const { snapshots, volumes, objects, objectsIn, compressor, queue } = region.ports;
  return new ImageSnapshotter({
    snapshots,
    volumes,
    objects,
    objectsIn,
    service: region.get(snapshotService),
    compressor,
    access: imageAccessOf(region),
    queue,
    ...region.tuning.imageSnapshots,
  });
};
