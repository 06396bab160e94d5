import type { Image, ImageRepository, ImageState } from '../../core/instances/images.ts';
import type { Page } from '../../core/shared/pagination.ts';
import { pageOf } from './paging.ts';

const newestFirst = (a: Image, b: Image) =>
  `${b.createdAt}#${b.imageId}`.localeCompare(`${a.createdAt}#${a.imageId}`);

/** Images in memory, for unit tests: the same contract as the DynamoDB repository. */
export class MemoryImageRepository implements ImageRepository {
  readonly #images = new Map<string, Image>();

  async create(image: Image): Promise<void> {
    if (this.#images.has(image.imageId)) throw new Error(`image ${image.imageId} exists`);
    // What a reader fills in (progress, each snapshot's state) and shares are not part of a new record.
    const { sharedWith: _none, progress: _view, ...stored } = structuredClone(image);
    stored.snapshots = stored.snapshots.map(({ state: _s, progress: _p, stateReason: _r, ...ref }) => ref);
    this.#images.set(image.imageId, stored);
  }

  async get(imageId: string): Promise<Image | undefined> {
    return structuredClone(this.#images.get(imageId));
  }

  async list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Image>> {
    return pageOf(
      [...this.#images.values()].filter((i) => i.accountId === accountId).sort(newestFirst),
      page,
    );
  }

  async listShared(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Image>> {
    return pageOf(
      [...this.#images.values()].filter((i) => (i.sharedWith ?? []).includes(accountId)).sort(newestFirst),
      page,
    );
  }

  async transition(
    imageId: string,
    from: readonly ImageState[],
    to: ImageState,
    changes: Partial<Pick<Image, 'stateReason' | 'completedAt'>> = {},
  ): Promise<Image | undefined> {
    const image = this.#images.get(imageId);
    if (!image || !from.includes(image.state)) return undefined;
    const next = { ...image, ...structuredClone(changes), state: to };
    this.#images.set(imageId, next);
    return structuredClone(next);
  }

  async share(imageId: string, accountId: string): Promise<Image | undefined> {
    const image = this.#images.get(imageId);
    if (!image) return undefined;
    image.sharedWith = [...new Set([...(image.sharedWith ?? []), accountId])].sort();
    return structuredClone(image);
  }

  async unshare(imageId: string, accountId: string): Promise<Image | undefined> {
    const image = this.#images.get(imageId);
    if (!image) return undefined;
    const rest = (image.sharedWith ?? []).filter((a) => a !== accountId);
    if (rest.length > 0) image.sharedWith = rest;
    else delete image.sharedWith;
    return structuredClone(image);
  }

  async remove(image: Image): Promise<void> {
    this.#images.delete(image.imageId);
  }

  async imagesOf(snapshotId: string): Promise<string[]> {
    return [...this.#images.values()]
      .filter((i) => i.snapshots.some((s) => s.snapshotId === snapshotId))
      .map((i) => i.imageId)
      .sort();
  }
}
