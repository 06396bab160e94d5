import { allPages, listQuery, type Requester, withQuery } from './transport.ts';
import type { DiskFormat, Image, ImageDeletion, ImageSnapshot, Launch } from './types.ts';

const imagePath = (imageId: string, below = '') => `/v1/images/${encodeURIComponent(imageId)}${below}`;

/** Images: snapshots of whole instances, launched, shared, copied and exported. */
export function imageRequests<Base extends Requester>(base: Base) {
  return class ImageRequests extends base {
    /** An instance snapshot: one snapshot per attached volume, all of one moment (pending until written). */
    createImage(input: {
      instanceId: string;
      name: string;
      description?: string;
      requireStopped?: boolean;
    }): Promise<Image> {
      return this.request('POST', '/v1/images', input);
    }

    listImages(
      filter: { scope?: 'own' | 'shared'; limit?: number; nextToken?: string } = {},
    ): Promise<{ images: Image[]; nextToken?: string }> {
      return this.request('GET', withQuery('/v1/images', listQuery(filter)));
    }

    /** Every image (own, or shared with the account), following pages. */
    allImages(scope?: 'own' | 'shared'): AsyncGenerator<Image> {
      return allPages('images', (page) => this.listImages({ scope, ...page }));
    }

    getImage(imageId: string): Promise<Image> {
      return this.request('GET', imagePath(imageId));
    }

    deleteImage(imageId: string): Promise<ImageDeletion> {
      return this.request('DELETE', imagePath(imageId));
    }

    launchImage(imageId: string, input: { name: string }): Promise<Launch> {
      return this.request('POST', imagePath(imageId, '/launch'), input);
    }

    shareImage(imageId: string, accountId: string): Promise<Image> {
      return this.request('POST', imagePath(imageId, '/shares'), { accountId });
    }

    unshareImage(imageId: string, accountId: string): Promise<Image> {
      return this.request('DELETE', imagePath(imageId, `/shares/${encodeURIComponent(accountId)}`));
    }

    /** Starts a copy of an image into this client's region; workers copy its snapshots (poll `getImage`). */
    copyImage(input: {
      sourceRegion: string;
      sourceImageId: string;
      name?: string;
      description?: string;
    }): Promise<Image> {
      return this.request('POST', '/v1/images/copy', input);
    }

    exportImage(
      imageId: string,
      format?: DiskFormat,
    ): Promise<{
      imageId: string;
      exports: (Omit<ImageSnapshot, 'state' | 'progress' | 'stateReason'> & { exportId: string })[];
    }> {
      return this.request('POST', imagePath(imageId, '/export'), { format });
    }
  };
}
