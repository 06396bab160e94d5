import type { DiskFormat } from '../format/disk-format.ts';
import { type Caller, type Permission, requirePermission } from '../identity/identity.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import type { Page } from '../shared/pagination.ts';
import { requirePrintable } from '../shared/text.ts';
import {
  type AccountDirectory,
  DEFAULT_AGENT_TIMEOUT_MS,
  type SnapshotService,
} from '../snapshots/snapshot-service.ts';
import {
  isHeld,
  type Snapshot,
  type SnapshotRepository,
  type SnapshotState,
} from '../snapshots/snapshots.ts';
import type { ExportService } from '../tasks/exports.ts';
import type { SnapshotCopier } from '../tasks/snapshot-copy.ts';
import type { Volume, VolumeRepository, VolumeService } from '../volumes/volumes.ts';
import {
  type AttachedVolume,
  byBootIndex,
  type Instance,
  type InstanceService,
  type InstanceState,
} from './instances.ts';

/**
 * An image is an instance snapshot, as OpenStack and CROC make them: one snapshot per attached
 * volume, all of one moment (one group id, one `takenAt`), and the instance's metadata (name,
 * properties, devices and boot order), from which new instances are launched.
 *
 * Its state follows its snapshots: `completed` once every one is, `error` as soon as one fails or
 * is deleted (the reason names the volume), `pending` meanwhile. It is computed from the snapshots
 * whenever the image is read and stored with a conditional transition; `error` is final, and no
 * image is ever shown `completed` unless all its snapshots are.
 */
export type ImageState = 'pending' | 'completed' | 'error';

export const IMAGE_TRANSITIONS: Record<ImageState, readonly ImageState[]> = {
  pending: ['completed', 'error'],
  // A snapshot of a completed image deleted behind its back breaks it.
  completed: ['error'],
  error: [],
};

/** One volume of the instance, as the image holds it. */
export interface ImageSnapshot {
  snapshotId: string;
  volumeId: string;
  device: string;
  bootIndex: number;
  /** The snapshot's size: a volume launched from it is at least this large. */
  sizeBytes: number;
  /** Filled in when read: the snapshot's state (`deleted` once it is gone), progress and reason. */
  state?: SnapshotState | 'deleted';
  progress?: number;
  stateReason?: string;
}

export interface Image {
  imageId: string;
  accountId: string;
  name: string;
  description: string;
  /** The instance the image was taken of, as it was then. */
  instance: {
    instanceId: string;
    name: string;
    state: InstanceState;
    properties: Record<string, string>;
    volumes: AttachedVolume[];
  };
  /** One per volume, in boot order. */
  snapshots: ImageSnapshot[];
  /** Every snapshot of the image carries it, and `takenAt`. */
  groupId: string;
  takenAt: string;
  /** Taken of an instance marked running: as consistent as after a power cut, no more. */
  crashConsistent: boolean;
  state: ImageState;
  stateReason?: string;
  /** When read: how far its snapshots are, 0–100. */
  progress?: number;
  region: string;
  createdAt: string;
  completedAt?: string;
  /** Accounts it is shared with (shown to its owner only). */
  sharedWith?: string[];
  /** For a copy: the image it was copied from. */
  copiedFrom?: { region: string; imageId: string; accountId: string };
}

/**
 * Where images are kept, with which images hold each snapshot and whom each is shared with.
 * Implementations: DynamoDB and in memory, one contract suite. Reads by id (any account).
 */
export interface ImageRepository {
  /** Stores a new image and the references from its snapshots to it, atomically. */
  create(image: Image): Promise<void>;
  get(imageId: string): Promise<Image | undefined>;
  /** The account's images, newest first. */
  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Image>>;
  /** Images other accounts shared with this one, newest first. */
  listShared(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Image>>;
  /**
   * Moves an image from one of `from` to `to` with `changes`; undefined if it was not in one of
   * `from` (someone else moved it first) or is gone.
   */
  transition(
    imageId: string,
    from: readonly ImageState[],
    to: ImageState,
    changes?: Partial<Pick<Image, 'stateReason' | 'completedAt'>>,
  ): Promise<Image | undefined>;
  /** Lets an account read the image (idempotent); undefined if it is gone. */
  share(imageId: string, accountId: string): Promise<Image | undefined>;
  /** Takes it back (idempotent); undefined if it is gone. */
  unshare(imageId: string, accountId: string): Promise<Image | undefined>;
  /** Removes the image, its shares and its snapshots' references to it. */
  remove(image: Image): Promise<void>;
  /** The ids of the images holding a snapshot. */
  imagesOf(snapshotId: string): Promise<string[]>;
}

/** What `image delete` did with each snapshot of the image. */
export interface ImageDeletion {
  imageId: string;
  /** Deleted for good (not completed, or the account keeps no recycle bin). */
  deleted: ImageSnapshot[];
  /** In the recycle bin until `purgeAt` (`volsnap snapshot undelete` brings one back). */
  recycled: (ImageSnapshot & { purgeAt?: string })[];
  /** Kept, and why: another image holds it, it is shared or public, a copy or export reads it. */
  kept: (ImageSnapshot & { reasons: string[] })[];
  /** Already gone before. */
  gone: ImageSnapshot[];
}

/** What a launch made: a new instance, one new volume per snapshot. */
export interface Launch {
  imageId: string;
  instance: Instance;
  volumes: {
    volumeId: string;
    device: string;
    bootIndex: number;
    sizeBytes: number;
    sourceSnapshotId: string;
  }[];
  /** What a launch does not carry over. */
  notes: string[];
}

/** As every provider warns: a launched instance is not its original on the network. */
export const NETWORK_NOTE =
  'Network identity is not copied: the new instance has none of the original addresses, MAC addresses, ports or host name; give it its own before booting it beside the original.';

/**
 * Reading images: who may see one (its owner, and accounts it is shared with; any other gets 404
 * exactly as for a missing one), and its state derived from its snapshots. One per region; a copy
 * reads the source region's through its own reader.
 */
export class ImageReader {
  constructor(
    private readonly images: ImageRepository,
    private readonly snapshots: Pick<SnapshotRepository, 'get'>,
    private readonly clock: Clock,
  ) {}

  /** An image the caller may read, its state brought up to date. */
  async visible(caller: Caller, imageId: string): Promise<Image> {
    const image = isId('image', imageId) ? await this.images.get(imageId) : undefined;
    if (!image || !mayRead(caller, image)) throw notFound(imageId);
    return viewFor(caller, await this.refresh(image));
  }

  /** One the caller may change: it must hold `permission` and own it (403 if it only reads it). */
  async owned(caller: Caller, imageId: string, permission: Permission, verb: string): Promise<Image> {
    requirePermission(caller, permission);
    const image = await this.visible(caller, imageId);
    if (image.accountId !== caller.accountId) {
      throw new VolsnapError(
        'auth.forbidden',
        `Image ${imageId} belongs to another account: only its owner can ${verb} it.`,
        { details: { imageId } },
      );
    }
    return image;
  }

  /**
   * The image with each snapshot's state, and its own state derived from them and stored if it
   * moved: `error` if one failed or is gone (naming the volume), `completed` if all are, else
   * `pending`. A transition lost to another reader is read again (states only move forward).
   */
  async refresh(image: Image, attempts = 3): Promise<Image> {
    const found = await Promise.all(image.snapshots.map((s) => this.snapshots.get(s.snapshotId)));
    const snapshots = image.snapshots.map((ref, i) => annotate(ref, found[i]));
    const progress = Math.floor(
      snapshots.reduce((sum, s) => sum + (s.state === 'completed' ? 100 : (s.progress ?? 0)), 0) /
        Math.max(1, snapshots.length),
    );
    const failed = snapshots.filter((s) => isFailed(s.state));
    const derived: ImageState =
      failed.length > 0 ? 'error' : snapshots.every((s) => s.state === 'completed') ? 'completed' : 'pending';
    let current = image;
    if (derived !== image.state && IMAGE_TRANSITIONS[image.state].includes(derived)) {
      const moved = await this.images.transition(
        image.imageId,
        [image.state],
        derived,
        derived === 'error'
          ? { stateReason: failureReason(failed) }
          : { completedAt: latest(found) ?? isoTime(this.clock.now()) },
      );
      if (!moved) {
        const now = await this.images.get(image.imageId);
        if (!now) throw notFound(image.imageId);
        if (attempts > 0) return this.refresh(now, attempts - 1);
        current = now;
      } else current = moved;
    }
    return { ...current, snapshots, progress: current.state === 'completed' ? 100 : progress };
  }
}

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

const MAX_NAME = 200;
const MAX_DESCRIPTION = 1024;

/** Image use cases: create (an instance snapshot), list, show, delete, launch, share, copy, export. */
export class ImageService {
  readonly #o: ImageServiceOptions;
  readonly reader: ImageReader;

  constructor(options: ImageServiceOptions) {
    this.#o = options;
    this.reader = new ImageReader(options.images, options.snapshotRecords, options.clock);
  }

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
    const instance = await this.#o.instances.get(caller, input.instanceId);
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
      const volume = await this.#o.volumeRecords.get(caller.accountId, attached.volumeId);
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
    const group = { imageId, groupId: newId('group'), takenAt: isoTime(this.#o.clock.now()) };
    const made: ImageSnapshot[] = [];
    try {
      for (const [i, attached] of instance.volumes.entries()) {
        const snapshot = await this.#o.snapshots.createScheduled(
          caller,
          volumes[i] as Volume,
          {
            name: `${name} ${attached.device}`,
            description: `${attached.device} of instance ${instance.name} (${instance.instanceId}), image ${imageId}`,
            group,
          },
          this.#o.agentTimeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS,
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
        region: this.#o.region,
        createdAt: group.takenAt,
      };
      await this.#o.images.create(image);
      return viewFor(caller, await this.reader.refresh(image));
    } catch (error) {
      await this.#discard(made);
      throw error;
    }
  }

  get(caller: Caller, imageId: string): Promise<Image> {
    return this.reader.visible(caller, imageId);
  }

  /** The caller's images, or those other accounts shared with it; each with its state brought up to date. */
  async list(
    caller: Caller,
    page: { limit: number; nextToken?: string },
    scope: 'own' | 'shared' = 'own',
  ): Promise<Page<Image>> {
    const listed =
      scope === 'shared'
        ? await this.#o.images.listShared(caller.accountId, page)
        : await this.#o.images.list(caller.accountId, page);
    const items = await Promise.all(
      listed.items
        .filter((i) => mayRead(caller, i))
        .map(async (i) => viewFor(caller, await this.reader.refresh(i))),
    );
    return { ...listed, items };
  }

  /**
   * Deletes an image. Its shares go first (with the grants they made on its snapshots); then each
   * snapshot is deleted as `snapshot delete` does (into the recycle bin if the account keeps one)
   * unless another image holds it, it is still shared or public, or a copy or export reads it: those
   * are kept, and the answer says why.
   */
  async delete(caller: Caller, imageId: string): Promise<ImageDeletion> {
    const image = await this.reader.owned(caller, imageId, 'snapshot:delete', 'delete');
    for (const grantee of image.sharedWith ?? []) await this.#revoke(image, grantee);
    const report: ImageDeletion = { imageId, deleted: [], recycled: [], kept: [], gone: [] };
    const nowIso = isoTime(this.#o.clock.now());
    for (const full of image.snapshots) {
      const { state: _s, progress: _p, stateReason: _r, ...ref } = full;
      const snapshot = await this.#o.snapshotRecords.get(ref.snapshotId);
      if (!snapshot || snapshot.state === 'deleting' || snapshot.accountId !== caller.accountId) {
        report.gone.push(ref);
        continue;
      }
      if (snapshot.state === 'recycled') {
        report.recycled.push({ ...ref, ...(snapshot.purgeAt ? { purgeAt: snapshot.purgeAt } : {}) });
        continue;
      }
      const reasons: string[] = [];
      const others = (await this.#o.images.imagesOf(ref.snapshotId)).filter((id) => id !== imageId);
      if (others.length > 0) reasons.push(`image ${others.join(', ')} also holds it`);
      if ((snapshot.sharedWith ?? []).length > 0)
        reasons.push(`it is shared with ${(snapshot.sharedWith ?? []).join(', ')}`);
      if (snapshot.public) reasons.push('it is public');
      if (isHeld(snapshot, nowIso))
        reasons.push(`a copy or export is reading it (${Object.keys(snapshot.holds ?? {}).join(', ')})`);
      if (reasons.length > 0) {
        report.kept.push({ ...ref, reasons });
        continue;
      }
      try {
        const recycled = await this.#o.snapshots.delete(caller, ref.snapshotId);
        if (recycled)
          report.recycled.push({ ...ref, ...(recycled.purgeAt ? { purgeAt: recycled.purgeAt } : {}) });
        else report.deleted.push(ref);
      } catch (error) {
        if (!(error instanceof VolsnapError && error.code === 'snapshot.notFound')) throw error;
        report.gone.push(ref);
      }
    }
    await this.#o.images.remove(image);
    return report;
  }

  /**
   * Registers a new instance from a completed image the caller may read: one new volume per
   * snapshot (its size, made from the snapshot as `volume create --snapshot` does), the same
   * devices, boot order and properties, marked stopped. Network identity is not copied.
   */
  async launch(caller: Caller, imageId: string, input: { name: string }): Promise<Launch> {
    requirePermission(caller, 'volume:create');
    const image = await this.reader.visible(caller, imageId);
    this.#completed(image, 'launched');
    const made: Launch['volumes'] = [];
    try {
      for (const ref of byBootIndex(image.snapshots)) {
        const source = await this.#o.snapshots.sourceForVolume(caller, ref.snapshotId);
        const volume = await this.#o.volumes.register(caller, {
          name: `${String(input.name).slice(0, MAX_NAME)} ${ref.device}`,
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
      const instance = await this.#o.instances.registerFor(caller, {
        name: input.name,
        volumes: made.map((v) => ({ volumeId: v.volumeId, device: v.device, bootIndex: v.bootIndex })),
        properties: image.instance.properties,
        state: 'stopped',
      });
      return { imageId, instance, volumes: made, notes: [NETWORK_NOTE] };
    } catch (error) {
      for (const v of made)
        await this.#o.volumeRecords
          .deleteUnlessSnapshots(caller.accountId, v.volumeId)
          .catch(() => undefined);
      throw error;
    }
  }

  /**
   * Lets another account read a completed image: it sees the image, and its snapshots are shared
   * with it (so it can launch, restore and copy them). It stays the owner's. Idempotent.
   */
  async share(caller: Caller, imageId: string, accountRef: string): Promise<Image> {
    const image = await this.reader.owned(caller, imageId, 'snapshot:share', 'share');
    const grantee = await this.#o.accounts.resolveAccount(accountRef);
    if (grantee.accountId === caller.accountId) {
      throw new VolsnapError(
        'request.invalid',
        'An image is always readable by its own account: share it with another.',
      );
    }
    this.#completed(image, 'shared');
    for (const ref of image.snapshots)
      await this.#o.snapshots.share(caller, ref.snapshotId, grantee.accountId);
    const updated = await this.#o.images.share(imageId, grantee.accountId);
    if (!updated) throw notFound(imageId);
    return viewFor(caller, await this.reader.refresh(updated));
  }

  /** Takes a share back, from the image and its snapshots: the account's next request is a 404. */
  async unshare(caller: Caller, imageId: string, accountRef: string): Promise<Image> {
    const image = await this.reader.owned(caller, imageId, 'snapshot:share', 'unshare');
    const grantee = await this.#o.accounts.resolveAccount(accountRef);
    const updated = await this.#revoke(image, grantee.accountId);
    return viewFor(caller, await this.reader.refresh(updated));
  }

  /**
   * Copies an image the caller may read (its own, or shared with it) from `sourceRegion` into this
   * region and the caller's account: each snapshot with the snapshot copier (incrementally), and the
   * image record here, `completed` when every copy is.
   */
  async copy(caller: Caller, input: CopyImageInput): Promise<Image> {
    requirePermission(caller, 'snapshot:copy');
    const { copier, readerIn } = this.#o;
    if (!copier || !readerIn) throw new VolsnapError('internal', 'This deployment cannot copy images.');
    if (input.name !== undefined) validateName(input.name);
    const source = await readerIn(input.sourceRegion).visible(caller, input.sourceImageId);
    this.#completed(source, 'copied');
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
        region: this.#o.region,
        createdAt: isoTime(this.#o.clock.now()),
        copiedFrom: { region: input.sourceRegion, imageId: source.imageId, accountId: source.accountId },
      };
      await this.#o.images.create(image);
      return viewFor(caller, await this.reader.refresh(image));
    } catch (error) {
      await this.#discard(made);
      throw error;
    }
  }

  /** Exports each snapshot of a completed image the caller may read, as `snapshot export` does. */
  async export(
    caller: Caller,
    imageId: string,
    format: DiskFormat,
  ): Promise<{
    imageId: string;
    exports: (Omit<ImageSnapshot, 'state' | 'progress' | 'stateReason'> & { exportId: string })[];
  }> {
    requirePermission(caller, 'snapshot:export');
    const { exports } = this.#o;
    if (!exports) throw new VolsnapError('internal', 'This deployment cannot export images.');
    const image = await this.reader.visible(caller, imageId);
    this.#completed(image, 'exported');
    const started = [];
    for (const { state: _s, progress: _p, stateReason: _r, ...ref } of image.snapshots) {
      const record = await exports.start(caller, ref.snapshotId, format);
      started.push({ ...ref, exportId: record.exportId });
    }
    return { imageId, exports: started };
  }

  /**
   * Takes a grant back from the image and its snapshots. The caller's right was checked by what it
   * does (`snapshot:share` to unshare, `snapshot:delete` to delete the image), so the grants go
   * through the repository: deleting an image needs no right to share.
   */
  async #revoke(image: Image, granteeId: string): Promise<Image> {
    const updated = await this.#o.images.unshare(image.imageId, granteeId);
    if (!updated) throw notFound(image.imageId);
    for (const ref of image.snapshots)
      await this.#o.snapshotRecords.unshare(ref.snapshotId, { accountId: granteeId });
    return updated;
  }

  #completed(image: Image, verb: string): void {
    if (image.state !== 'completed') {
      throw new VolsnapError(
        'image.invalidState',
        `Image ${image.imageId} is ${image.state}${image.stateReason ? ` (${image.stateReason})` : ''}; only a completed image can be ${verb}.`,
        { details: { imageId: image.imageId, state: image.state } },
      );
    }
  }

  /** Snapshots made for an image that could not be recorded: deleted for good. */
  async #discard(made: readonly ImageSnapshot[]): Promise<void> {
    for (const ref of made) {
      const snapshot = await this.#o.snapshotRecords.get(ref.snapshotId).catch(() => undefined);
      if (snapshot) await this.#o.snapshots.purge(snapshot).catch(() => undefined);
    }
  }
}

function mayRead(caller: Caller, image: Image): boolean {
  return image.accountId === caller.accountId || (image.sharedWith ?? []).includes(caller.accountId);
}

/** Whom it is shared with is shown to its owner only. */
function viewFor(caller: Caller, image: Image): Image {
  if (image.accountId === caller.accountId) return image;
  const { sharedWith: _hidden, ...rest } = image;
  return rest;
}

function annotate(ref: ImageSnapshot, snapshot: Snapshot | undefined): ImageSnapshot {
  const { state: _s, progress: _p, stateReason: _r, ...plain } = ref;
  if (!snapshot || snapshot.state === 'deleting') return { ...plain, state: 'deleted' };
  return {
    ...plain,
    state: snapshot.state,
    progress: snapshot.state === 'completed' ? 100 : snapshot.progress,
    ...(snapshot.stateReason ? { stateReason: snapshot.stateReason } : {}),
  };
}

function isFailed(state: ImageSnapshot['state']): boolean {
  return state === 'error' || state === 'deleted' || state === 'recycled';
}

/** Names each failed volume, its device and snapshot, and why. */
function failureReason(failed: readonly ImageSnapshot[]): string {
  const parts = failed.map((s) => {
    const what = `The snapshot of volume ${s.volumeId} (${s.device}), ${s.snapshotId},`;
    if (s.state === 'deleted') return `${what} was deleted.`;
    if (s.state === 'recycled') return `${what} was deleted (it is in the recycle bin).`;
    return `${what} failed: ${s.stateReason ?? 'no reason given'}`;
  });
  return parts.join(' ').slice(0, 2000);
}

function latest(snapshots: readonly (Snapshot | undefined)[]): string | undefined {
  const times = snapshots.map((s) => s?.completedAt).filter((t): t is string => t !== undefined);
  return times.length > 0 ? times.sort().at(-1) : undefined;
}

function validateName(name: string): string {
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME) {
    throw new VolsnapError('request.invalid', `An image name is 1–${MAX_NAME} characters.`);
  }
  return requirePrintable('The image name', name);
}

function validateDescription(description: string): string {
  if (typeof description !== 'string' || description.length > MAX_DESCRIPTION) {
    throw new VolsnapError(
      'request.invalid',
      `An image description is at most ${MAX_DESCRIPTION} characters.`,
    );
  }
  return requirePrintable('The image description', description);
}

function notFound(imageId: string): VolsnapError {
  return new VolsnapError('image.notFound', `No image ${imageId} in this account and region.`, {
    details: { imageId },
  });
}
