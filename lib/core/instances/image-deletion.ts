import type { Caller } from '../identity/identity.ts';
import { isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isHeld } from '../snapshots/snapshots.ts';
import { ImageUseCase } from './image-context.ts';
import type { ImageDeletion } from './image-records.ts';
import { revokeShare } from './image-sharing.ts';

/** Deleting images, and with them the snapshots nothing else needs. */
export class ImageDeletions extends ImageUseCase {
  /**
   * Deletes an image. Its shares go first (with the grants they made on its snapshots); then each
   * snapshot is deleted as `snapshot delete` does (into the recycle bin if the account keeps one)
   * unless another image holds it, it is still shared or public, or a copy or export reads it: those
   * are kept, and the answer says why.
   */
  async delete(caller: Caller, imageId: string): Promise<ImageDeletion> {
    const image = await this.reader.owned(caller, imageId, 'snapshot:delete', 'delete');
    for (const grantee of image.sharedWith ?? []) await revokeShare(this.o, image, grantee);
    const report: ImageDeletion = { imageId, deleted: [], recycled: [], kept: [], gone: [] };
    const nowIso = isoTime(this.o.clock.now());
    for (const full of image.snapshots) {
      const { state: _s, progress: _p, stateReason: _r, ...ref } = full;
      const snapshot = await this.o.snapshotRecords.get(ref.snapshotId);
      if (!snapshot || snapshot.state === 'deleting' || snapshot.accountId !== caller.accountId) {
        report.gone.push(ref);
        continue;
      }
      if (snapshot.state === 'recycled') {
        report.recycled.push({ ...ref, ...(snapshot.purgeAt ? { purgeAt: snapshot.purgeAt } : {}) });
        continue;
      }
      const reasons: string[] = [];
      const others = (await this.o.images.imagesOf(ref.snapshotId)).filter((id) => id !== imageId);
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
        const recycled = await this.o.snapshots.delete(caller, ref.snapshotId);
        if (recycled)
          report.recycled.push({ ...ref, ...(recycled.purgeAt ? { purgeAt: recycled.purgeAt } : {}) });
        else report.deleted.push(ref);
      } catch (error) {
        if (!(error instanceof VolsnapError && error.code === 'snapshot.notFound')) throw error;
        report.gone.push(ref);
      }
    }
    await this.o.images.remove(image);
    return report;
  }
}
