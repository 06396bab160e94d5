import type { DiskFormat } from '../format/disk-format.ts';
import type { Caller } from '../identity/identity.ts';
import type { Page } from '../shared/pagination.ts';
import type { ImageServiceOptions } from './image-context.ts';
import { ImageDeletions } from './image-deletion.ts';
import { type CopyImageInput, type CreateImageInput, ImageMaking } from './image-making.ts';
import { ImageReader, mayRead, viewFor } from './image-reader.ts';
import type { Image, ImageDeletion, Launch } from './image-records.ts';
import { ImageSharing } from './image-sharing.ts';
import { type ImageExports, ImageUse } from './image-use.ts';

export type { ImageServiceOptions } from './image-context.ts';
export type { CopyImageInput, CreateImageInput } from './image-making.ts';
export { ImageReader } from './image-reader.ts';
export {
  IMAGE_TRANSITIONS,
  type Image,
  type ImageDeletion,
  type ImageRepository,
  type ImageSnapshot,
  type ImageState,
  type Launch,
  NETWORK_NOTE,
} from './image-records.ts';
export type { ImageExports } from './image-use.ts';

/**
 * Image use cases: create (an instance snapshot), list, show, delete, launch, share, copy, export.
 * A façade: each use case lives in its own module of lib/core/instances (making, sharing, deletion,
 * use), all reading through one {@link ImageReader}; the contracts are documented there.
 */
export class ImageService {
  readonly #o: ImageServiceOptions;
  readonly reader: ImageReader;
  readonly #making: ImageMaking;
  readonly #sharing: ImageSharing;
  readonly #deletions: ImageDeletions;
  readonly #use: ImageUse;

  constructor(options: ImageServiceOptions) {
    this.#o = options;
    this.reader = new ImageReader(options.images, options.snapshotRecords, options.clock);
    const context = { options, reader: this.reader };
    this.#making = new ImageMaking(context);
    this.#sharing = new ImageSharing(context);
    this.#deletions = new ImageDeletions(context);
    this.#use = new ImageUse(context);
  }

  /** {@link ImageMaking.create} */
  create(caller: Caller, input: CreateImageInput): Promise<Image> {
    return this.#making.create(caller, input);
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

  /** {@link ImageDeletions.delete} */
  delete(caller: Caller, imageId: string): Promise<ImageDeletion> {
    return this.#deletions.delete(caller, imageId);
  }

  /** {@link ImageUse.launch} */
  launch(caller: Caller, imageId: string, input: { name: string }): Promise<Launch> {
    return this.#use.launch(caller, imageId, input);
  }

  /** {@link ImageSharing.share} */
  share(caller: Caller, imageId: string, accountRef: string): Promise<Image> {
    return this.#sharing.share(caller, imageId, accountRef);
  }

  /** {@link ImageSharing.unshare} */
  unshare(caller: Caller, imageId: string, accountRef: string): Promise<Image> {
    return this.#sharing.unshare(caller, imageId, accountRef);
  }

  /** {@link ImageMaking.copy} */
  copy(caller: Caller, input: CopyImageInput): Promise<Image> {
    return this.#making.copy(caller, input);
  }

  /** {@link ImageUse.export} */
  export(caller: Caller, imageId: string, format: DiskFormat): Promise<ImageExports> {
    return this.#use.export(caller, imageId, format);
  }
}
