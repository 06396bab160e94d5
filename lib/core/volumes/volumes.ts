import { BLOCK_SIZE, isValidVolumeSize, MAX_VOLUME_SIZE } from '../format/blocks.ts';
import { type Caller, requirePermission } from '../identity/identity.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import type { Page } from '../shared/pagination.ts';
import { type Tags, validateTags } from '../shared/tags.ts';
import { requirePrintable } from '../shared/text.ts';
import { type ImageAccess, imageLocation } from './image-location.ts';

/**
 * A block device of fixed size. Its bytes live outside the service: on a host (read by the CLI or
 * agent) or, for image-backed volumes, in an object the service reads itself.
 */
export interface Volume {
  volumeId: string;
  accountId: string;
  name: string;
  sizeBytes: number;
  tags: Tags;
  region: string;
  createdAt: string;
  /** The snapshot the volume was created from: its first snapshot's parent. */
  sourceSnapshotId?: string;
  /** `s3://bucket/key` of the image holding the volume's bytes, for server-side snapshots. */
  imageUri?: string;
  /** For the volume copies land in: the volume they are copies of. */
  copiedFrom?: { region: string; volumeId: string; accountId: string };
}

export interface VolumeFilter {
  name?: string;
  tags?: Tags;
}

/**
 * Where volumes are kept. Implementations: DynamoDB, and in memory for unit tests; both pass the
 * same contract suite. Every method is scoped to one account: another account's volume is absent.
 */
export interface VolumeRepository {
  /** Stores a new volume; fails if the id exists (ids are random, so only a bug repeats one). */
  create(volume: Volume): Promise<void>;
  get(accountId: string, volumeId: string): Promise<Volume | undefined>;
  /** The account's volumes, newest first, filtered, one page at a time. */
  list(
    accountId: string,
    filter: VolumeFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Volume>>;
  /**
   * Deletes the volume unless snapshots of it exist outside the recycle bin (and not already being
   * deleted): then nothing is deleted, and `holding` names them. Snapshots in the recycle bin do not
   * keep it: they outlive it there, recoverable until their purge time, and `recycled` names them.
   * Atomic against snapshots created meanwhile (one that appears keeps the volume). Deleting an
   * absent volume is `volume.notFound`.
   */
  deleteUnlessSnapshots(accountId: string, volumeId: string): Promise<VolumeDeletion>;
}

/** What deleting a volume found; it was deleted when `holding` is empty. */
export interface VolumeDeletion {
  /** Snapshots that keep the volume: every one outside the recycle bin. */
  holding: string[];
  /** When it was deleted: its snapshots in the recycle bin, which stay there after it (until `purgeAt`). */
  recycled: { snapshotId: string; purgeAt?: string }[];
}

export interface RegisterVolumeInput {
  name: string;
  /** Defaults to the source snapshot's size when created from one. */
  sizeBytes?: number;
  tags?: Tags;
  imageUri?: string;
  /** A completed snapshot the caller may read: the volume starts as its copy. */
  source?: { snapshotId: string; volumeSize: number };
}

const NAME = /^[\p{L}\p{N} _.:/+\-@()[\]]{1,255}$/u;

/** Volume use cases: register, show, list, delete, with the rules every provider applies. */
export class VolumeService {
  constructor(
    private readonly volumes: VolumeRepository,
    private readonly clock: Clock,
    private readonly region: string,
    /** Which objects may back image-backed volumes. */
    private readonly imageAccess: ImageAccess,
  ) {}

  async register(caller: Caller, input: RegisterVolumeInput): Promise<Volume> {
    requirePermission(caller, 'volume:create');
    if (typeof input.name === 'string') requirePrintable('The volume name', input.name);
    if (!NAME.test(input.name)) {
      throw new VolsnapError(
        'request.invalid',
        'A volume name is 1–255 letters, digits, spaces and _.:/+-@()[].',
      );
    }
    const sizeBytes = input.sizeBytes ?? input.source?.volumeSize ?? Number.NaN;
    if (input.source && sizeBytes < input.source.volumeSize) {
      throw new VolsnapError(
        'volume.invalidSize',
        `A volume made from snapshot ${input.source.snapshotId} needs at least its size, ${input.source.volumeSize} bytes; ${sizeBytes} is smaller.`,
        { details: { sizeBytes, minimum: input.source.volumeSize } },
      );
    }
    if (sizeBytes > MAX_VOLUME_SIZE) {
      throw new VolsnapError(
        'volume.invalidSize',
        `A volume is at most 64 TiB (${MAX_VOLUME_SIZE} bytes, as on EBS); ${sizeBytes} is larger.`,
        { details: { sizeBytes, maximum: MAX_VOLUME_SIZE } },
      );
    }
    if (!isValidVolumeSize(sizeBytes)) {
      throw new VolsnapError(
        'volume.invalidSize',
        `A volume's size must be a positive multiple of ${BLOCK_SIZE} bytes (512 KiB); ${sizeBytes} is not. Round it up to ${roundUpToBlock(sizeBytes)}.`,
        { details: { sizeBytes, blockSize: BLOCK_SIZE } },
      );
    }
    if (input.imageUri !== undefined) imageLocation(input.imageUri, caller.accountId, this.imageAccess);
    const volume: Volume = {
      volumeId: newId('volume'),
      accountId: caller.accountId,
      name: input.name,
      sizeBytes,
      tags: validateTags(input.tags ?? {}),
      region: this.region,
      createdAt: isoTime(this.clock.now()),
      ...(input.imageUri ? { imageUri: input.imageUri } : {}),
      ...(input.source ? { sourceSnapshotId: input.source.snapshotId } : {}),
    };
    await this.volumes.create(volume);
    return volume;
  }

  /** The caller's volume, or `volume.notFound` (also for ids of other accounts' volumes). */
  async get(caller: Caller, volumeId: string): Promise<Volume> {
    const volume = isId('volume', volumeId) ? await this.volumes.get(caller.accountId, volumeId) : undefined;
    if (!volume) throw notFound(volumeId);
    return volume;
  }

  list(
    caller: Caller,
    filter: VolumeFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Volume>> {
    if (filter.tags) validateTags(filter.tags);
    return this.volumes.list(caller.accountId, filter, page);
  }

  /**
   * Deletes the volume; refused with 409 naming the snapshots while any exist outside the recycle
   * bin (as OpenStack does). Snapshots in the recycle bin do not keep it: deleting them was the
   * user's decision, and the bin's promise stands without the volume (each stays recoverable until
   * its purge time, and a recovered one restores, or makes a volume, as any other). Returns those.
   */
  async delete(caller: Caller, volumeId: string): Promise<VolumeDeletion> {
    requirePermission(caller, 'volume:delete');
    if (!isId('volume', volumeId)) throw notFound(volumeId);
    const found = await this.volumes.deleteUnlessSnapshots(caller.accountId, volumeId);
    const { holding } = found;
    if (holding.length > 0) {
      const shown = holding.slice(0, 10);
      const more = holding.length - shown.length;
      const run = shown.map((id) => `volsnap snapshot delete ${id}`).join(' && ');
      throw new VolsnapError(
        'volume.hasSnapshots',
        `Volume ${volumeId} still has ${holding.length} snapshot(s) outside the recycle bin: ${shown.join(', ')}${more > 0 ? ` and ${more} more (\`volsnap snapshot list --volume ${volumeId}\` lists them)` : ''}. Delete them first (\`${run}\`${more > 0 ? ', and the rest' : ''}), then delete the volume again; snapshots in the recycle bin do not keep it.`,
        { details: { volumeId, snapshotIds: holding } },
      );
    }
    return found;
  }
}

function notFound(volumeId: string): VolsnapError {
  return new VolsnapError('volume.notFound', `No volume ${volumeId} in this account and region.`, {
    details: { volumeId },
  });
}

function roundUpToBlock(size: number): number {
  return Number.isFinite(size) && size > 0 ? Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE : BLOCK_SIZE;
}
