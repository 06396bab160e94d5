import { ImageReader, ImageService } from '../core/instances/images.ts';
import { InstanceService } from '../core/instances/instances.ts';
import { snapshotCopier } from './copies.ts';
import { exportService } from './exports.ts';
import { accountService } from './identity.ts';
import type { Factory } from './region.ts';
import { snapshotService, volumeService } from './snapshots.ts';

/** Instances: their volumes, devices and properties. */
export const instanceService: Factory<InstanceService> = (region) =>
  new InstanceService(region.ports.instances, region.ports.volumes, region.ports.clock, region.name);

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
