import { ImageSnapshotter } from '../core/tasks/image-snapshot.ts';
import type { Factory } from './region.ts';
import { imageAccessOf, snapshotService, snapshotStores } from './snapshots.ts';

/** Server-side snapshots of image-backed volumes (the worker's use case). */
export const imageSnapshotter: Factory<ImageSnapshotter> = (region) =>
  new ImageSnapshotter({
    ...snapshotStores(region),
    objectsIn: region.ports.objectsIn,
    service: region.get(snapshotService),
    access: imageAccessOf(region),
    queue: region.ports.queue,
    ...region.tuning.imageSnapshots,
  });
