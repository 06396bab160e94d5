import type { Caller } from '../identity/identity.ts';
import { VolsnapError } from '../shared/errors.ts';
import { type ImageServiceOptions, ImageUseCase } from './image-context.ts';
import { viewFor } from './image-reader.ts';
import { type Image, notFound, requireCompleted } from './image-records.ts';

/**
 * Takes a grant back from the image and its snapshots. The caller's right was checked by what it
 * does (`snapshot:share` to unshare, `snapshot:delete` to delete the image), so the grants go
 * through the repository: deleting an image needs no right to share.
 */
export async function revokeShare(
  o: Pick<ImageServiceOptions, 'images' | 'snapshotRecords'>,
  image: Image,
  granteeId: string,
): Promise<Image> {
  const updated = await o.images.unshare(image.imageId, granteeId);
  if (!updated) throw notFound(image.imageId);
  for (const ref of image.snapshots)
    await o.snapshotRecords.unshare(ref.snapshotId, { accountId: granteeId });
  return updated;
}

/** Sharing images with other accounts, and taking shares back. */
export class ImageSharing extends ImageUseCase {
  /**
   * Lets another account read a completed image: it sees the image, and its snapshots are shared
   * with it (so it can launch, restore and copy them). It stays the owner's. Idempotent.
   */
  async share(caller: Caller, imageId: string, accountRef: string): Promise<Image> {
    const image = await this.reader.owned(caller, imageId, 'snapshot:share', 'share');
    const grantee = await this.o.accounts.resolveAccount(accountRef);
    if (grantee.accountId === caller.accountId) {
      throw new VolsnapError(
        'request.invalid',
        'An image is always readable by its own account: share it with another.',
      );
    }
    requireCompleted(image, 'shared');
    for (const ref of image.snapshots)
      await this.o.snapshots.share(caller, ref.snapshotId, grantee.accountId);
    const updated = await this.o.images.share(imageId, grantee.accountId);
    if (!updated) throw notFound(imageId);
    return viewFor(caller, await this.reader.refresh(updated));
  }

  /** Takes a share back, from the image and its snapshots: the account's next request is a 404. */
  async unshare(caller: Caller, imageId: string, accountRef: string): Promise<Image> {
    const image = await this.reader.owned(caller, imageId, 'snapshot:share', 'unshare');
    const grantee = await this.o.accounts.resolveAccount(accountRef);
    const updated = await revokeShare(this.o, image, grantee.accountId);
    return viewFor(caller, await this.reader.refresh(updated));
  }
}
