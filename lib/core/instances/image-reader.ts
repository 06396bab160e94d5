import { type Caller, type Permission, requireOwner, requirePermission } from '../identity/identity.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { isId } from '../shared/ids.ts';
import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';
import {
  IMAGE_TRANSITIONS,
  type Image,
  type ImageRepository,
  type ImageSnapshot,
  type ImageState,
  notFound,
} from './image-records.ts';

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
    requireOwner(caller, image, { kind: 'Image', id: imageId, verb, details: { imageId } });
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

export function mayRead(caller: Caller, image: Image): boolean {
  return image.accountId === caller.accountId || (image.sharedWith ?? []).includes(caller.accountId);
}

/** Whom it is shared with is shown to its owner only. */
export function viewFor(caller: Caller, image: Image): Image {
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
