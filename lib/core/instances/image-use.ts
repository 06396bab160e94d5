import type { DiskFormat } from '../format/disk-format.ts';
import { type Caller, requirePermission } from '../identity/identity.ts';
import { VolsnapError } from '../shared/errors.ts';
import { ImageUseCase } from './image-context.ts';
import {
  type ImageSnapshot,
  imageNamePrefix,
  type Launch,
  NETWORK_NOTE,
  requireCompleted,
} from './image-records.ts';
import { byBootIndex } from './instances.ts';

/** The exports `image export` started: one per snapshot of the image. */
export interface ImageExports {
  imageId: string;
  exports: (Omit<ImageSnapshot, 'state' | 'progress' | 'stateReason'> & { exportId: string })[];
}

/** What a completed image is for: launching instances from it, exporting its snapshots. */
export class ImageUse extends ImageUseCase {
  /**
   * Registers a new instance from a completed image the caller may read: one new volume per
   * snapshot (its size, made from the snapshot as `volume create --snapshot` does), the same
   * devices, boot order and properties, marked stopped. Network identity is not copied.
   */
  async launch(caller: Caller, imageId: string, input: { name: string }): Promise<Launch> {
    requirePermission(caller, 'volume:create');
    const image = await this.reader.visible(caller, imageId);
    requireCompleted(image, 'launched');
    const made: Launch['volumes'] = [];
    try {
      for (const ref of byBootIndex(image.snapshots)) {
        const source = await this.o.snapshots.sourceForVolume(caller, ref.snapshotId);
        const volume = await this.o.volumes.register(caller, {
          name: `${imageNamePrefix(input.name)} ${ref.device}`,
          source,
          sizeBytes: Math.max(source.volumeSize, ref.sizeBytes),
        });
        made.push({
          volumeId: volume.volumeId,
          device: ref.device,
          bootIndex: ref.bootIndex,
          sizeBytes: volume.sizeBytes,
          sourceSnapshotId: ref.snapshotId,
        });
      }
      const instance = await this.o.instances.registerFor(caller, {
        name: input.name,
        volumes: made.map((v) => ({ volumeId: v.volumeId, device: v.device, bootIndex: v.bootIndex })),
        properties: image.instance.properties,
        state: 'stopped',
      });
      return { imageId, instance, volumes: made, notes: [NETWORK_NOTE] };
    } catch (error) {
      for (const v of made)
        await this.o.volumeRecords.deleteUnlessSnapshots(caller.accountId, v.volumeId).catch(() => undefined);
      throw error;
    }
  }

  /** Exports each snapshot of a completed image the caller may read, as `snapshot export` does. */
  async export(caller: Caller, imageId: string, format: DiskFormat): Promise<ImageExports> {
    requirePermission(caller, 'snapshot:export');
    const { exports } = this.o;
    if (!exports) throw new VolsnapError('internal', 'This deployment cannot export images.');
    const image = await this.reader.visible(caller, imageId);
    requireCompleted(image, 'exported');
    const started = [];
    for (const { state: _s, progress: _p, stateReason: _r, ...ref } of image.snapshots) {
      const record = await exports.start(caller, ref.snapshotId, format);
      started.push({ ...ref, exportId: record.exportId });
    }
    return { imageId, exports: started };
  }
}
