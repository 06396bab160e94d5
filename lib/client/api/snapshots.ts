import { allPages, listQuery, type Requester, withQuery } from './transport.ts';
import type {
  ManifestUrl,
  Snapshot,
  SnapshotDeletion,
  SnapshotScope,
  SnapshotState,
  UploadUrls,
  Verification,
} from './types.ts';

/**
 * A created snapshot, with what its writer needs next when it asked (`upload`): its first upload URLs
 * and manifest key, and its parent's manifest URL. Either is absent when not given (a snapshot not to
 * be written now, a parent gone meanwhile): ask `upload-urls` and `manifest-url` then.
 */
export type CreatedSnapshot = Snapshot & { upload?: UploadUrls; parentManifest?: ManifestUrl };

export interface SnapshotListFilter {
  /** Own snapshots (default), those shared with the caller's account, or public ones. */
  scope?: SnapshotScope;
  volumeId?: string;
  state?: SnapshotState;
  name?: string;
  tags?: Record<string, string>;
  limit?: number;
  nextToken?: string;
}

/** `/v1/snapshots/{id}` and what is below it. */
export const snapshotPath = (snapshotId: string, below = '') =>
  `/v1/snapshots/${encodeURIComponent(snapshotId)}${below}`;

/** Snapshots: making, listing, changing, deleting and copying them. */
export function snapshotRequests<Base extends Requester>(base: Base) {
  return class SnapshotRequests extends base {
    createSnapshot(input: {
      volumeId: string;
      name?: string;
      description?: string;
      tags?: Record<string, string>;
      clientToken?: string;
      /** Queue it for `volsnap agent` on the volume's host instead of writing it now. */
      queued?: boolean;
      /** Answer the first `segments` upload URLs and the parent's manifest URL with it. */
      upload?: { segments: number };
    }): Promise<CreatedSnapshot> {
      return this.request<CreatedSnapshot>('POST', '/v1/snapshots', input);
    }

    listSnapshots(filter: SnapshotListFilter = {}): Promise<{ snapshots: Snapshot[]; nextToken?: string }> {
      const { tags, ...plain } = filter;
      return this.request('GET', withQuery('/v1/snapshots', listQuery(plain, tags)));
    }

    /** Every snapshot matching `filter`, page after page. */
    allSnapshots(filter: Omit<SnapshotListFilter, 'nextToken'> = {}): AsyncGenerator<Snapshot> {
      return allPages('snapshots', (page) => this.listSnapshots({ ...filter, ...page }));
    }

    getSnapshot(snapshotId: string): Promise<Snapshot> {
      return this.request<Snapshot>('GET', snapshotPath(snapshotId));
    }

    /** Starts a server-side re-read of every block of a completed snapshot (poll `getVerification`). */
    verifySnapshot(snapshotId: string): Promise<Verification> {
      return this.request<Verification>('POST', snapshotPath(snapshotId, '/verify'), {});
    }

    getVerification(verificationId: string): Promise<Verification> {
      return this.request<Verification>('GET', `/v1/verifications/${encodeURIComponent(verificationId)}`);
    }

    updateSnapshot(
      snapshotId: string,
      changes: { name?: string; description?: string; tags?: Record<string, string> },
    ): Promise<Snapshot> {
      return this.request<Snapshot>('PATCH', snapshotPath(snapshotId), changes);
    }

    /**
     * Deletes a snapshot: `recycled` when it went to the recycle bin (absent when it is gone for good),
     * and `accessLost` when other accounts could read it.
     */
    async deleteSnapshot(snapshotId: string): Promise<SnapshotDeletion> {
      const answer = await this.request<
        (Snapshot & Pick<SnapshotDeletion, 'accessLost'>) | { deleted: true; accessLost: unknown } | undefined
      >('DELETE', snapshotPath(snapshotId));
      if (!answer) return {};
      const { accessLost, ...rest } = answer as Snapshot & Pick<SnapshotDeletion, 'accessLost'>;
      return {
        ...('deleted' in answer ? {} : { recycled: rest as Snapshot }),
        ...(accessLost ? { accessLost } : {}),
      };
    }

    undeleteSnapshot(snapshotId: string): Promise<Snapshot> {
      return this.request<Snapshot>('POST', snapshotPath(snapshotId, '/undelete'));
    }

    /** Starts a copy into this client's region; workers write it (poll {@link getSnapshot}). */
    copySnapshot(input: {
      sourceRegion: string;
      sourceSnapshotId: string;
      name?: string;
      description?: string;
      tags?: Record<string, string>;
      clientToken?: string;
    }): Promise<Snapshot> {
      return this.request<Snapshot>('POST', '/v1/snapshots/copy', input);
    }
  };
}
