import type { Clock } from '../shared/clock.ts';
import type { AccountDirectory, SnapshotService } from '../snapshots/snapshot-service.ts';
import type { SnapshotRepository } from '../snapshots/snapshots.ts';
import type { ExportService } from '../tasks/exports.ts';
import type { SnapshotCopier } from '../tasks/snapshot-copy.ts';
import type { VolumeRepository, VolumeService } from '../volumes/volumes.ts';
import type { ImageReader } from './image-reader.ts';
import type { ImageRepository, ImageSnapshot } from './image-records.ts';
import type { InstanceService } from './instances.ts';

export interface ImageServiceOptions {
  images: ImageRepository;
  /** This region's snapshot records (their states, holds and shares). */
  snapshotRecords: SnapshotRepository;
  snapshots: SnapshotService;
  volumeRecords: VolumeRepository;
  volumes: VolumeService;
  instances: InstanceService;
  accounts: AccountDirectory;
  clock: Clock;
  region: string;
  /** Copies of snapshots into this region. */
  copier?: SnapshotCopier;
  exports?: ExportService;
  /** Another region's images, for copies (an unknown region is `region.unknown`). */
  readerIn?: (region: string) => ImageReader;
  /** How long a host volume's queued snapshot waits for the agent (or the CLI) to take it. */
  agentTimeoutMs?: number;
}

/** Snapshots made for an image that could not be recorded: deleted for good. */
export async function discardSnapshots(
  o: Pick<ImageServiceOptions, 'snapshotRecords' | 'snapshots'>,
  made: readonly ImageSnapshot[],
): Promise<void> {
  for (const ref of made) {
    const snapshot = await o.snapshotRecords.get(ref.snapshotId).catch(() => undefined);
    if (snapshot) await o.snapshots.purge(snapshot).catch(() => undefined);
  }
}

/** What every image use case is built from: the service's options and the region's reader. */
export interface ImageContext {
  options: ImageServiceOptions;
  reader: ImageReader;
}

/** A use case of images (internal to lib/core/instances): one {@link ImageService} holds one of each. */
export abstract class ImageUseCase {
  protected readonly o: ImageServiceOptions;
  protected readonly reader: ImageReader;

  constructor(context: ImageContext) {
    this.o = context.options;
    this.reader = context.reader;
  }
}
