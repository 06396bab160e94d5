import { ImageReader, ImageService } from '../core/instances/images.ts';
import { snapshotCopier } from './copies.ts';
import { exportService } from './exports.ts';
import { accountService } from './identity.ts';
import { instanceService } from './instances.ts';
import type { Factory } from './region.ts';
import { snapshotService, volumeService } from './snapshots.ts';

// Images in their own module: a function that wires instances does not carry copies and exports.

/** The region's images as its own service reads them (another region's copies read them so). */
export const imageReader: Factory<ImageReader> = (region) =>
  new ImageReader(region.ports.images, region.ports.snapshots, region.ports.clock);

/** Images of instances (instance snapshots): create, launch, share, copy, export. */
export const imageService: Factory<ImageService> = (region) =>
  new ImageService({
    images: region.ports.images,
    snapshotRecords: region.ports.snapshots,
    snapshots: region.get(snapshotService),
    volumeRecords: region.ports.volumes,
    volumes: region.get(volumeService),
    instances: region.get(instanceService),
    accounts: region.get(accountService),
    clock: region.ports.clock,
    region: region.name,
    copier: region.get(snapshotCopier),
    exports: region.get(exportService),
    readerIn: (name) => region.region(name).get(imageReader),
    ...region.tuning.images,
  });
