import { VolsnapError } from '../shared/errors.ts';
import type { Page } from '../shared/pagination.ts';
import { requirePrintable } from '../shared/text.ts';
import type { SnapshotState } from '../snapshots/snapshots.ts';
import type { AttachedVolume, Instance, InstanceState } from './instances.ts';

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

const MAX_NAME = 200;
const MAX_DESCRIPTION = 1024;

/** An image's name cut to what a name may be (launched volumes are named after it). */
export function imageNamePrefix(name: string): string {
  return String(name).slice(0, MAX_NAME);
}

export function validateName(name: string): string {
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME) {
    throw new VolsnapError('request.invalid', `An image name is 1–${MAX_NAME} characters.`);
  }
  return requirePrintable('The image name', name);
}

export function validateDescription(description: string): string {
  if (typeof description !== 'string' || description.length > MAX_DESCRIPTION) {
    throw new VolsnapError(
      'request.invalid',
      `An image description is at most ${MAX_DESCRIPTION} characters.`,
    );
  }
  return requirePrintable('The image description', description);
}

/** `image.invalidState` unless the image is completed: only then can it be launched, shared, copied or exported. */
export function requireCompleted(image: Image, verb: string): void {
  if (image.state !== 'completed') {
    throw new VolsnapError(
      'image.invalidState',
      `Image ${image.imageId} is ${image.state}${image.stateReason ? ` (${image.stateReason})` : ''}; only a completed image can be ${verb}.`,
      { details: { imageId: image.imageId, state: image.state } },
    );
  }
}

export function notFound(imageId: string): VolsnapError {
  return new VolsnapError('image.notFound', `No image ${imageId} in this account and region.`, {
    details: { imageId },
  });
}
