import { escapeUnprintable } from '../../core/shared/text.ts';
import { snapshotPath } from './snapshots.ts';
import type { Requester } from './transport.ts';
import type {
  ChangedBlocks,
  SegmentRange,
  SegmentRangeUrl,
  SegmentUrl,
  Snapshot,
  StoredSegment,
} from './types.ts';

/**
 * A snapshot's blocks: the URLs its segments and manifest are written to and read from, completing
 * or failing it (the CLI and agents write snapshots), and the blocks changed since another.
 */
export function snapshotDataRequests<Base extends Requester>(base: Base) {
  return class SnapshotDataRequests extends base {
    /** An agent takes a queued snapshot (it becomes pending, and its blocks are written as usual). */
    startSnapshot(snapshotId: string): Promise<Snapshot> {
      return this.request<Snapshot>('POST', snapshotPath(snapshotId, '/start'));
    }

    /** Fails a snapshot; the reason (often an error message, possibly multi-line) is sent as printable text. */
    failSnapshot(snapshotId: string, reason: string): Promise<Snapshot> {
      return this.request<Snapshot>('POST', snapshotPath(snapshotId, '/fail'), {
        reason: escapeUnprintable(reason),
      });
    }

    /**
     * Segment ids with write-once PUT URLs; with `manifest`, also a manifest upload id and its URL.
     * `landed` reports segments stored (the service checks them while the rest uploads); `stored`
     * reports them with what their bytes were (checked as landed too); `listStored` answers every
     * segment reported for the snapshot so far, from any host (what a rerun skips).
     */
    uploadUrls(
      snapshotId: string,
      segments: number,
      options: {
        manifest?: boolean;
        landed?: readonly string[];
        stored?: StoredSegment[];
        listStored?: boolean;
      } = {},
    ): Promise<{
      segments: SegmentUrl[];
      manifestUploadId?: string;
      manifestUrl?: string;
      expiresInSeconds: number;
      stored?: StoredSegment[];
    }> {
      // Presigns fresh keys and records reports: sent again, it hands out other keys (unused ones
      // are never written) and records the same reports again.
      return this.request(
        'POST',
        snapshotPath(snapshotId, '/upload-urls'),
        {
          segments,
          ...(options.manifest ? { manifest: true } : {}),
          ...(options.landed?.length ? { landed: options.landed } : {}),
          ...(options.stored?.length ? { stored: options.stored } : {}),
          ...(options.listStored ? { listStored: true } : {}),
        },
        { idempotent: true },
      );
    }

    /** Completes from the manifest uploaded to `manifestUploadId`; pending (202) while workers verify it. */
    completeSnapshot(snapshotId: string, manifestUploadId?: string): Promise<Snapshot> {
      return this.request<Snapshot>(
        'POST',
        snapshotPath(snapshotId, '/complete'),
        manifestUploadId ? { manifestUploadId } : undefined,
        // Completing a completed (or pending) snapshot again answers it as it is.
        { idempotent: true },
      );
    }

    manifestUrl(snapshotId: string): Promise<{ url: string; expiresInSeconds: number }> {
      return this.request('GET', snapshotPath(snapshotId, '/manifest-url'));
    }

    /**
     * GET URLs of a completed snapshot's segments, one per byte range (end exclusive), in the order
     * asked; each works only with exactly its range's `Range` header. Another account's snapshot
     * answers only ranges that are runs of its blocks (`snapshot.rangeNotShared` otherwise).
     */
    segmentUrls(
      snapshotId: string,
      ranges: SegmentRange[],
    ): Promise<{ ranges: SegmentRangeUrl[]; expiresInSeconds: number }> {
      return this.request(
        'POST',
        snapshotPath(snapshotId, '/segment-urls'),
        { ranges },
        { idempotent: true },
      );
    }

    changedBlocks(snapshotId: string, since: string): Promise<ChangedBlocks> {
      return this.request(
        'GET',
        snapshotPath(snapshotId, `/changed-blocks?since=${encodeURIComponent(since)}`),
      );
    }
  };
}
