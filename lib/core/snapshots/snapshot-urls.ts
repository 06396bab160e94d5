import type { SegmentRange } from '../format/restore-plan.ts';
import { BlockExtents } from '../format/restore-plan.ts';
import { segmentCapacity } from '../format/segment.ts';
import type { Caller } from '../identity/identity.ts';
import { ObjectLayout } from '../ports/objects.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import { SegmentChecks } from './segment-checks.ts';
import { MAX_URLS_PER_REQUEST, type SnapshotAccess } from './snapshot-access.ts';
import { MAX_MANIFEST_UPLOADS, maxSegmentUrls, retireKeys } from './snapshot-verify.ts';
import type { StoredSegment } from './snapshots.ts';

/** What {@link SnapshotUrls.uploadUrls} issues. */
export interface UploadUrls {
  segments: SegmentUrl[];
  /** When asked for: the write-once key the manifest goes to, named again when completing. */
  manifestUploadId?: string;
  manifestUrl?: string;
  expiresInSeconds: number;
  /** When asked for (`listStored`): the segments reported stored for this snapshot so far. */
  stored?: StoredSegment[];
}

/** A presigned GET URL of a completed snapshot's manifest. */
export interface ManifestUrl {
  url: string;
  expiresInSeconds: number;
}

/** The most stored segments a listing answers (about 100 bytes each): past it, a rerun uploads the rest again. */
export const MAX_STORED_LISTED = 20_000;

/** A presigned URL for one segment. */
export interface SegmentUrl {
  segmentId: string;
  url: string;
}

/** A presigned GET URL bound to bytes [start, end) of one segment. */
export interface SegmentRangeUrl extends SegmentRange {
  url: string;
}

/** Presigned URLs: to write a pending snapshot's segments and manifest, and to read a completed one. */
export class SnapshotUrls {
  readonly #a: SnapshotAccess;
  readonly #checks: SegmentChecks;

  constructor(access: SnapshotAccess) {
    this.#a = access;
    this.#checks = new SegmentChecks(access);
  }

  /**
   * New segment ids with write-once presigned PUT URLs for a pending snapshot and, with `manifest`,
   * a fresh write-once key and URL for its manifest (one per upload attempt: a rerun uploads to a
   * new one and completes naming it). A snapshot is issued at most {@link maxSegmentUrls} segment
   * URLs and {@link MAX_MANIFEST_UPLOADS} manifest URLs in all; past that, 409 `snapshot.uploadLimit`.
   * Every URL stops working once the snapshot leaves `pending` (see retireSession). `landed` names
   * segments of this upload the client has stored: workers check them while the rest uploads
   * ({@link SegmentChecks.landed}), so that completing reads little more than the last ones.
   *
   * `stored` reports segments the client stored since it last said (their SHA-256 and size; each
   * is checked as landed too), and `listStored` answers every segment reported so far: a rerun with
   * the same client token, from any host, uploads only the segments whose bytes are not stored yet.
   * Reports are recorded before any URL is issued; both are idempotent.
   */
  async uploadUrls(
    caller: Caller,
    snapshotId: string,
    count: number,
    options: {
      manifest?: boolean;
      landed?: readonly string[];
      stored?: readonly StoredSegment[];
      listStored?: boolean;
    } = {},
  ): Promise<UploadUrls> {
    const snapshot = await this.#a.pending(caller, snapshotId);
    await this.#checks.landed(snapshot, options.landed ?? []);
    if (!Number.isInteger(count) || count < 0 || count > MAX_URLS_PER_REQUEST) {
      throw new VolsnapError(
        'request.invalid',
        `Ask for 0 to ${MAX_URLS_PER_REQUEST} segment URLs at a time; ${count} were asked for.`,
      );
    }
    if (options.stored?.length) {
      await this.#recordStored(snapshotId, options.stored);
      // A segment reported stored has landed: one report, both uses (ids not issued are ignored
      // here as the record ignores them).
      const ids = options.stored.map((segment) => segment.segmentId);
      await this.#checks.landed(snapshot, ids, { foreign: 'ignore' });
    }
    const stored = options.listStored
      ? { stored: await this.#a.options.snapshots.storedSegments(snapshotId, MAX_STORED_LISTED) }
      : {};
    if (count === 0 && !options.manifest) return { segments: [], expiresInSeconds: 0, ...stored };
    const ids = Array.from({ length: count }, () => newId('segment'));
    const manifestUploadId = options.manifest ? newId('manifestUpload') : undefined;
    const limits = { segments: maxSegmentUrls(snapshot.volumeSize), manifests: MAX_MANIFEST_UPLOADS };
    const issued = await this.#a.options.snapshots.issueSessionUploads(
      snapshot.snapshotId,
      { segmentIds: ids, manifestUploadIds: manifestUploadId ? [manifestUploadId] : [] },
      limits,
    );
    if (!issued) {
      throw new VolsnapError(
        'snapshot.uploadLimit',
        `Snapshot ${snapshotId} was issued its ${limits.segments} segment URLs and ${limits.manifests} manifest URLs, the most a ${snapshot.volumeSize}-byte volume can need. Complete it with what was uploaded, or delete it and take a new snapshot.`,
        { details: { snapshotId, maxSegmentUrls: limits.segments, maxManifestUrls: limits.manifests } },
      );
    }
    // Left pending meanwhile? Then its retirement may have missed these keys: retire them here.
    const now = await this.#a.options.snapshots.get(snapshotId);
    if (now?.state !== 'pending') {
      await retireKeys(this.#a.options.objects, [
        ...ids.map((id) => ObjectLayout.segment(snapshot.accountId, id)),
        ...(manifestUploadId ? [ObjectLayout.manifestStaging(snapshotId, manifestUploadId)] : []),
      ]);
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is ${now?.state ?? 'gone'}, not pending: its blocks can no longer be written.`,
        { details: { snapshotId, state: now?.state } },
      );
    }
    const ttl = this.#a.options.urlTtlSeconds;
    const writeOnce = { ifNoneMatch: true };
    const segments = await Promise.all(
      ids.map(async (segmentId) => ({
        segmentId,
        url: await this.#a.options.objects.presignPut(
          ObjectLayout.segment(snapshot.accountId, segmentId),
          ttl,
          writeOnce,
        ),
      })),
    );
    return {
      segments,
      ...(manifestUploadId
        ? {
            manifestUploadId,
            manifestUrl: await this.#a.options.objects.presignPut(
              ObjectLayout.manifestStaging(snapshotId, manifestUploadId),
              ttl,
              writeOnce,
            ),
          }
        : {}),
      expiresInSeconds: ttl,
      ...stored,
    };
  }

  /** Records segments a client reports stored, once each report is known well formed. */
  async #recordStored(snapshotId: string, stored: readonly StoredSegment[]): Promise<void> {
    const wellFormed = (s: StoredSegment) =>
      isId('segment', s.segmentId) &&
      /^[0-9a-f]{64}$/.test(s.sha256) &&
      Number.isInteger(s.size) &&
      s.size > 0 &&
      s.size <= segmentCapacity();
    if (stored.length > MAX_URLS_PER_REQUEST || !stored.every(wellFormed)) {
      throw new VolsnapError(
        'request.invalid',
        `Report at most ${MAX_URLS_PER_REQUEST} stored segments at a time, each a segment id, the SHA-256 of its bytes (64 hex digits) and its size (1 to ${segmentCapacity()} bytes).`,
      );
    }
    await this.#a.options.snapshots.recordStoredSegments(snapshotId, stored);
  }

  /** A completed snapshot the caller may read, as the source of a new volume. */
  async sourceForVolume(
    caller: Caller,
    snapshotId: string,
  ): Promise<{ snapshotId: string; volumeSize: number }> {
    const snapshot = await this.#a.completed(caller, snapshotId);
    return { snapshotId: snapshot.snapshotId, volumeSize: snapshot.volumeSize };
  }

  /** A presigned GET URL of a completed snapshot's manifest (for writing a child, or restoring). */
  async manifestUrl(caller: Caller, snapshotId: string): Promise<ManifestUrl> {
    const snapshot = await this.#a.completed(caller, snapshotId);
    return {
      url: await this.#a.options.objects.presignGet(
        ObjectLayout.manifest(snapshot.snapshotId),
        this.#a.options.urlTtlSeconds,
      ),
      expiresInSeconds: this.#a.options.urlTtlSeconds,
    };
  }

  /**
   * Presigned GET URLs of a completed snapshot's segments (for restoring it), one per byte range
   * asked, each bound to its range (the store refuses any other range through it). The owner may
   * read any range of its own segments (a restore reads through small gaps of replaced blocks).
   * Anyone else (a grantee, the public, an image's grantee) gets only ranges that are exactly runs
   * of this snapshot's blocks: a segment it reuses also holds blocks of other snapshots, and an
   * index with the SHA-256 of each of them, none of which was shared. Anything else is refused
   * (`snapshot.rangeNotShared`), and no URL is issued. At most {@link MAX_URLS_PER_REQUEST} ranges.
   */
  async segmentUrls(
    caller: Caller,
    snapshotId: string,
    ranges: readonly SegmentRange[],
  ): Promise<{ ranges: SegmentRangeUrl[]; expiresInSeconds: number }> {
    const snapshot = await this.#a.completed(caller, snapshotId);
    const malformed = ranges.find(
      (r) =>
        !isId('segment', r.segmentId) ||
        !Number.isSafeInteger(r.start) ||
        !Number.isSafeInteger(r.end) ||
        r.start < 0 ||
        r.end <= r.start,
    );
    if (ranges.length > MAX_URLS_PER_REQUEST || malformed) {
      throw new VolsnapError(
        'request.invalid',
        `Ask for up to ${MAX_URLS_PER_REQUEST} byte ranges at a time, each {segmentId: "seg-…", start, end} with 0 ≤ start < end (end exclusive).`,
        malformed ? { details: { range: malformed } } : undefined,
      );
    }
    if (snapshot.accountId !== caller.accountId) {
      const extents = new BlockExtents(
        await this.#a.manifest(snapshot.snapshotId),
        new Set(ranges.map((r) => r.segmentId)),
      );
      const refused = ranges.find((r) => !extents.covers(r));
      if (refused) {
        throw new VolsnapError(
          'snapshot.rangeNotShared',
          `Bytes ${refused.start}-${refused.end} of segment ${refused.segmentId} are not a run of snapshot ${snapshotId}'s blocks: ask only for ranges its manifest's entries cover exactly ([offset, offset + storedLength), neighbours merged).`,
          { details: { snapshotId, range: refused } },
        );
      }
    }
    const ttl = this.#a.options.urlTtlSeconds;
    const urls = await Promise.all(
      ranges.map(async ({ segmentId, start, end }) => ({
        segmentId,
        start,
        end,
        url: await this.#a.options.objects.presignGet(
          ObjectLayout.segment(snapshot.accountId, segmentId),
          ttl,
          {
            start,
            end,
          },
        ),
      })),
    );
    return { ranges: urls, expiresInSeconds: ttl };
  }
}
