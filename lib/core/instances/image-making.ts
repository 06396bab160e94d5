import { type Caller, requirePermission } from '../identity/identity.ts';
import { isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { DEFAULT_AGENT_TIMEOUT_MS } from '../snapshots/snapshot-access.ts';
import type { Volume } from '../volumes/volumes.ts';
import { discardSnapshots, ImageUseCase } from './image-context.ts';
import { viewFor } from './image-reader.ts';
import {
  type Image,
  type ImageSnapshot,
  requireCompleted,
  validateDescription,
  validateName,
} from './image-records.ts';

export interface CreateImageInput {
  instanceId: string;
  name: string;
  description?: string;
  /** Refuse (409 `instance.running`) if the instance is marked running. */
  requireStopped?: boolean;
}

export interface CopyImageInput {
  sourceRegion: string;
  sourceImageId: string;
  name?: string;
  description?: string;
}

/** Making images: of an instance (one snapshot per volume, one moment), or as a copy of another region's. */
export class ImageMaking extends ImageUseCase {
  /**
   * Snapshots every volume of an instance at one moment: one group id and one `takenAt` for all.
   * Image-backed volumes are read by workers; a volume on a host gets a `queued` snapshot, which
   * the CLI (`--file`) or `volsnap agent` on the host takes. The image is `pending` until they are
   * all written.
   */
  async create(caller: Caller, input: CreateImageInput): Promise<Image> {
    requirePermission(caller, 'snapshot:create');
    const name = validateName(input.name);
    const description = validateDescription(input.description ?? '');
    const instance = await this.o.instances.get(caller, input.instanceId);
    if (instance.volumes.length === 0) {
      throw new VolsnapError(
        'request.invalid',
        `Instance ${instance.instanceId} has no volumes: attach them first (volsnap instance attach ${instance.instanceId} vol-… --device /dev/vda).`,
      );
    }
    if (input.requireStopped && instance.state === 'running') {
      throw new VolsnapError(
        'instance.running',
        `Instance ${instance.instanceId} is marked running, and --require-stopped was given. Stop it (and mark it: volsnap instance mark ${instance.instanceId} stopped), then take the image.`,
        { details: { instanceId: instance.instanceId, state: instance.state } },
      );
    }
    const volumes: Volume[] = [];
    for (const attached of instance.volumes) {
      const volume = await this.o.volumeRecords.get(caller.accountId, attached.volumeId);
      if (!volume) {
        throw new VolsnapError(
          'volume.notFound',
          `Volume ${attached.volumeId} (${attached.device} of instance ${instance.instanceId}) no longer exists: detach it first.`,
          { details: { volumeId: attached.volumeId, instanceId: instance.instanceId } },
        );
      }
      volumes.push(volume);
    }
    const imageId = newId('image');
    const group = { imageId, groupId: newId('group'), takenAt: isoTime(this.o.clock.now()) };
    const made: ImageSnapshot[] = [];
    try {
      for (const [i, attached] of instance.volumes.entries()) {
        const snapshot = await this.o.snapshots.createScheduled(
          caller,
          volumes[i] as Volume,
          {
            name: `${name} ${attached.device}`,
            description: `${attached.device} of instance ${instance.name} (${instance.instanceId}), image ${imageId}`,
            group,
          },
          this.o.agentTimeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS,
        );
        made.push({
          snapshotId: snapshot.snapshotId,
          volumeId: attached.volumeId,
          device: attached.device,
          bootIndex: attached.bootIndex,
          sizeBytes: snapshot.volumeSize,
        });
      }
      const image: Image = {
        imageId,
        accountId: caller.accountId,
        name,
        description,
        instance: {
          instanceId: instance.instanceId,
          name: instance.name,
          state: instance.state,
          properties: instance.properties,
          volumes: instance.volumes,
        },
        snapshots: made,
        groupId: group.groupId,
        takenAt: group.takenAt,
        crashConsistent: instance.state === 'running',
        state: 'pending',
        region: this.o.region,
        createdAt: group.takenAt,
      };
      await this.o.images.create(image);
      return viewFor(caller, await this.reader.refresh(image));
    } catch (error) {
      await discardSnapshots(this.o, made);
      throw error;
    }
  }

  /**
   * Copies an image the caller may read (its own, or shared with it) from `sourceRegion` into this
   * region and the caller's account: each snapshot with the snapshot copier (incrementally), and the
   * image record here, `completed` when every copy is.
   */
  async copy(caller: Caller, input: CopyImageInput): Promise<Image> {
    requirePermission(caller, 'snapshot:copy');
    const { copier, readerIn } = this.o;
    if (!copier || !readerIn) throw new VolsnapError('internal', 'This deployment cannot copy images.');
    if (input.name !== undefined) validateName(input.name);
    const source = await readerIn(input.sourceRegion).visible(caller, input.sourceImageId);
    requireCompleted(source, 'copied');
    const imageId = newId('image');
    const group = { imageId, groupId: newId('group'), takenAt: source.takenAt };
    const made: ImageSnapshot[] = [];
    try {
      for (const ref of source.snapshots) {
        const copy = await copier.start(caller, {
          sourceRegion: input.sourceRegion,
          sourceSnapshotId: ref.snapshotId,
          group,
        });
        made.push({
          snapshotId: copy.snapshotId,
          volumeId: copy.volumeId,
          device: ref.device,
          bootIndex: ref.bootIndex,
          sizeBytes: copy.volumeSize,
        });
      }
      const image: Image = {
        imageId,
        accountId: caller.accountId,
        name: input.name ?? source.name,
        description: validateDescription(input.description ?? source.description),
        instance: source.instance,
        snapshots: made,
        groupId: group.groupId,
        takenAt: source.takenAt,
        crashConsistent: source.crashConsistent,
        state: 'pending',
        region: this.o.region,
        createdAt: isoTime(this.o.clock.now()),
        copiedFrom: { region: input.sourceRegion, imageId: source.imageId, accountId: source.accountId },
      };
      await this.o.images.create(image);
      return viewFor(caller, await this.reader.refresh(image));
    } catch (error) {
      await discardSnapshots(this.o, made);
      throw error;
    }
  }
}
