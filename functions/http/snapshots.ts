import { DISK_FORMATS } from '../../lib/core/format/disk-format.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { pageLimit, tagFilter } from '../../lib/http/params.ts';
import { httpHandler } from '../../lib/http/stack.ts';
import { snapshotView } from '../../lib/http/views.ts';
import { runtime } from '../../lib/root.ts';

const SnapshotPath = z.object({ snapshotId: z.string() });
const Tags = z.record(z.string(), z.string());
const States = z.enum(['queued', 'pending', 'completed', 'error', 'recycled', 'deleting']);

/** `POST /v1/snapshots`: starts a snapshot of a volume (pending until its blocks are written). */
export const create = httpHandler(
  {
    audit: 'snapshot.create',
    body: z.strictObject({
      volumeId: z.string(),
      name: z.optional(z.string()),
      description: z.optional(z.string()),
      tags: z.optional(Tags),
      clientToken: z.optional(z.string()),
      queued: z.optional(z.boolean()),
    }),
  },
  async ({ body, caller }) => ({
    status: 201,
    body: snapshotView(caller, await runtime().snapshots.create(caller, body)),
  }),
);

/**
 * `GET /v1/snapshots?scope=own|shared|public&volumeId&state&name&tag:KEY=VALUE&limit&nextToken`: the
 * caller's snapshots (default), those other accounts shared with it, or public ones; newest first.
 */
export const list = httpHandler(
  {
    query: z.looseObject({
      scope: z.optional(z.enum(['own', 'shared', 'public'])),
      volumeId: z.optional(z.string()),
      state: z.optional(States),
      name: z.optional(z.string()),
      limit: z.optional(z.string()),
      nextToken: z.optional(z.string()),
    }),
  },
  async ({ query, caller }) => {
    const filter = {
      volumeId: query.volumeId,
      state: query.state,
      name: query.name,
      tags: tagFilter(query as Record<string, string>),
    };
    const page = await runtime().snapshots.list(
      caller,
      filter,
      { limit: pageLimit(query.limit), nextToken: query.nextToken },
      query.scope,
    );
    return {
      body: {
        snapshots: page.items.map((s) => snapshotView(caller, s)),
        ...(page.nextToken ? { nextToken: page.nextToken } : {}),
      },
    };
  },
);

/** `GET /v1/snapshots/{snapshotId}`. */
export const show = httpHandler({ path: SnapshotPath }, async ({ path, caller }) => ({
  body: snapshotView(caller, await runtime().snapshots.get(caller, path.snapshotId)),
}));

/** `PATCH /v1/snapshots/{snapshotId}`: name, description, tags. */
export const update = httpHandler(
  {
    audit: 'snapshot.update',
    path: SnapshotPath,
    body: z.strictObject({
      name: z.optional(z.string()),
      description: z.optional(z.string()),
      tags: z.optional(Tags),
    }),
  },
  async ({ path, body, caller }) => ({
    body: snapshotView(caller, await runtime().snapshots.update(caller, path.snapshotId, body)),
  }),
);

/**
 * `DELETE /v1/snapshots/{snapshotId}`: 200 with the snapshot, now `recycled` until its `purgeAt`, when
 * the account keeps a recycle bin; 204 when it is deleted for good. Deleting one that other accounts
 * could read adds `accessLost` (who, and a sentence saying so); deleted for good, it answers 200
 * `{snapshotId, deleted: true, accessLost}` then.
 */
export const remove = httpHandler(
  { audit: 'snapshot.delete', path: SnapshotPath },
  async ({ path, caller }) => {
    const { recycled, accessLost } = await runtime().snapshots.deleteReporting(caller, path.snapshotId);
    if (recycled)
      return { body: { ...snapshotView(caller, recycled), ...(accessLost ? { accessLost } : {}) } };
    return accessLost
      ? { body: { snapshotId: path.snapshotId, deleted: true, accessLost } }
      : { status: 204 };
  },
);

/** `POST /v1/snapshots/{snapshotId}/undelete`: takes a snapshot out of the recycle bin, whole. */
export const undelete = httpHandler(
  { audit: 'snapshot.undelete', path: SnapshotPath },
  async ({ path, caller }) => ({
    body: snapshotView(caller, await runtime().snapshots.undelete(caller, path.snapshotId)),
  }),
);

/** `POST /v1/snapshots/{snapshotId}/start`: an agent takes a queued snapshot (it becomes pending). */
export const start = httpHandler(
  { audit: 'snapshot.start', path: SnapshotPath },
  async ({ path, caller }) => ({
    body: snapshotView(caller, await runtime().snapshots.start(caller, path.snapshotId)),
  }),
);

/** `POST /v1/snapshots/{snapshotId}/fail {reason}`: whoever writes it gives up; the snapshot goes to error. */
export const fail = httpHandler(
  { audit: 'snapshot.fail', path: SnapshotPath, body: z.strictObject({ reason: z.string() }) },
  async ({ path, body, caller }) => ({
    body: snapshotView(caller, await runtime().snapshots.fail(caller, path.snapshotId, body.reason)),
  }),
);

/**
 * `POST /v1/snapshots/{snapshotId}/upload-urls {segments: N, manifest?: true}`: new segment ids with
 * write-once PUT URLs and, when asked, a manifest upload id with its write-once URL.
 */
export const uploadUrls = httpHandler(
  {
    audit: 'snapshot.uploadUrls',
    path: SnapshotPath,
    body: z.strictObject({ segments: z.number(), manifest: z.optional(z.boolean()) }),
  },
  async ({ path, body, caller }) => ({
    body: await runtime().snapshots.uploadUrls(caller, path.snapshotId, body.segments, {
      manifest: body.manifest ?? false,
    }),
  }),
);

/**
 * `POST /v1/snapshots/{snapshotId}/complete {manifestUploadId}`: verifies the manifest uploaded there
 * and every new block, then completes (200); 202 with the pending snapshot while workers verify a
 * large one (poll it until `completed` or `error`).
 */
export const complete = httpHandler(
  {
    audit: 'snapshot.complete',
    path: SnapshotPath,
    body: z.optional(z.strictObject({ manifestUploadId: z.optional(z.string()) })),
  },
  async ({ path, body, caller }) => {
    const snapshot = await runtime().snapshots.complete(
      caller,
      path.snapshotId,
      body?.manifestUploadId ? { manifestUploadId: body.manifestUploadId } : {},
    );
    return { status: snapshot.state === 'pending' ? 202 : 200, body: snapshotView(caller, snapshot) };
  },
);

/** `GET /v1/snapshots/{snapshotId}/manifest-url`: a GET URL of a completed snapshot's manifest. */
export const manifestUrl = httpHandler({ path: SnapshotPath }, async ({ path, caller }) => ({
  body: await runtime().snapshots.manifestUrl(caller, path.snapshotId),
}));

/**
 * `POST /v1/snapshots/{snapshotId}/segment-urls {ranges: [{segmentId, start, end}]}`: one GET URL
 * per byte range (end exclusive), bound to it; another account gets only its blocks' ranges.
 */
export const segmentUrls = httpHandler(
  {
    path: SnapshotPath,
    body: z.strictObject({
      ranges: z.array(z.strictObject({ segmentId: z.string(), start: z.number(), end: z.number() })),
    }),
  },
  async ({ path, body, caller }) => ({
    body: await runtime().snapshots.segmentUrls(caller, path.snapshotId, body.ranges),
  }),
);

/** `GET /v1/snapshots/{snapshotId}/changed-blocks?since=snap-…`: blocks changed since an earlier snapshot. */
export const changedBlocks = httpHandler(
  { path: SnapshotPath, query: z.object({ since: z.string() }) },
  async ({ path, query, caller }) => ({
    body: await runtime().snapshots.diff(caller, query.since, path.snapshotId),
  }),
);

const SharePath = z.object({ snapshotId: z.string(), accountId: z.string() });

/** `POST /v1/snapshots/{snapshotId}/shares {accountId}`: lets another account (id or name) read it. */
export const share = httpHandler(
  { audit: 'snapshot.share', path: SnapshotPath, body: z.strictObject({ accountId: z.string() }) },
  async ({ path, body, caller }) => ({
    body: snapshotView(caller, await runtime().snapshots.share(caller, path.snapshotId, body.accountId)),
  }),
);

/** `DELETE /v1/snapshots/{snapshotId}/shares/{accountId}`: takes the share back. */
export const unshare = httpHandler(
  { audit: 'snapshot.unshare', path: SharePath },
  async ({ path, caller }) => ({
    body: snapshotView(caller, await runtime().snapshots.unshare(caller, path.snapshotId, path.accountId)),
  }),
);

/** `PUT /v1/snapshots/{snapshotId}/public`: every account may read it. */
export const publish = httpHandler(
  { audit: 'snapshot.publish', path: SnapshotPath },
  async ({ path, caller }) => ({
    body: snapshotView(caller, await runtime().snapshots.publish(caller, path.snapshotId)),
  }),
);

/** `DELETE /v1/snapshots/{snapshotId}/public`: private again. */
export const unpublish = httpHandler(
  { audit: 'snapshot.unpublish', path: SnapshotPath },
  async ({ path, caller }) => ({
    body: snapshotView(caller, await runtime().snapshots.unpublish(caller, path.snapshotId)),
  }),
);

/**
 * `POST /v1/snapshots/copy {sourceRegion, sourceSnapshotId, name, description, tags, clientToken}`:
 * called in the destination region; copies a snapshot the caller may read (its own, shared, public)
 * into this region and the caller's account. Answers the pending copy; workers write it.
 */
export const copy = httpHandler(
  {
    audit: 'snapshot.copy',
    body: z.strictObject({
      sourceRegion: z.string(),
      sourceSnapshotId: z.string(),
      name: z.optional(z.string()),
      description: z.optional(z.string()),
      tags: z.optional(Tags),
      clientToken: z.optional(z.string()),
    }),
  },
  async ({ body, caller }) => ({
    status: 202,
    body: snapshotView(caller, await runtime().copier.start(caller, body)),
  }),
);

/**
 * `POST /v1/snapshots/import {url, format, sizeBytes, name, description, tags, clientToken}`: a new
 * snapshot of the caller's, imported by workers from any URL that serves ranged GETs (202).
 */
export const importFromUrl = httpHandler(
  {
    audit: 'snapshot.import',
    body: z.strictObject({
      url: z.optional(z.string()),
      upload: z.optional(
        z.strictObject({
          ref: z.string(),
          uploadId: z.string(),
          parts: z.array(z.strictObject({ partNumber: z.number(), etag: z.string() })),
        }),
      ),
      format: z.enum(DISK_FORMATS),
      sizeBytes: z.optional(z.number()),
      name: z.optional(z.string()),
      description: z.optional(z.string()),
      tags: z.optional(Tags),
      clientToken: z.optional(z.string()),
    }),
  },
  async ({ body, caller }) => ({
    status: 202,
    body: snapshotView(caller, await runtime().importer.start(caller, body)),
  }),
);

/** `POST /v1/uploads {sizeBytes}`: presigned part URLs for uploading a file to import (then import with `upload`). */
export const createUpload = httpHandler(
  { audit: 'upload.create', body: z.strictObject({ sizeBytes: z.number() }) },
  async ({ body, caller }) => ({
    status: 201,
    body: await runtime().importer.createUpload(caller, body.sizeBytes),
  }),
);

/** `POST /v1/uploads/{ref}/part-urls {uploadId, fromPart}`: the next page of an upload's part URLs. */
export const uploadPartUrls = httpHandler(
  {
    audit: 'upload.partUrls',
    path: z.object({ ref: z.string() }),
    body: z.strictObject({ uploadId: z.string(), fromPart: z.number() }),
  },
  async ({ path, body, caller }) => ({
    body: await runtime().importer.uploadPartUrls(caller, path.ref, body.uploadId, body.fromPart),
  }),
);
