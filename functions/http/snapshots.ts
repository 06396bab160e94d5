import { snapshotPorts } from '../../lib/aws/snapshots.ts';
import { verificationPorts } from '../../lib/aws/verification-records.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { pageLimit, tagFilter } from '../../lib/http/params.ts';
import { httpHandler, httpRouter } from '../../lib/http/stack.ts';
import { snapshotView, verificationView } from '../../lib/http/views.ts';
import { servicesOver } from '../../lib/root.ts';
import { snapshotService } from '../../lib/wiring/snapshots.ts';
import { verificationService } from '../../lib/wiring/verifications.ts';

/** The services of this function's routes, over the ports they use (and nothing else in its bundle). */
const service = servicesOver(...snapshotPorts, verificationPorts);

const SnapshotPath = z.object({ snapshotId: z.string() });
const Tags = z.record(z.string(), z.string());
const States = z.enum(['queued', 'pending', 'completed', 'error', 'recycled', 'deleting']);

/**
 * `POST /v1/snapshots`: starts a snapshot of a volume (pending until its blocks are written). With
 * `upload: {segments: N}`, a snapshot to be written now also answers `upload` (N segment URLs and a
 * manifest key, as `upload-urls` with `manifest: true` gives them) and, when it has a parent,
 * `parentManifest` (as `manifest-url` gives it): the writer's next two requests, saved.
 */
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
      upload: z.optional(z.strictObject({ segments: z.number() })),
    }),
  },
  async ({ body: { upload, ...input }, caller }) => {
    if (!upload)
      return {
        status: 201,
        body: snapshotView(caller, await service(snapshotService).create(caller, input)),
      };
    const created = await service(snapshotService).createForUpload(caller, input, upload);
    return {
      status: 201,
      body: {
        ...snapshotView(caller, created.snapshot),
        ...(created.upload ? { upload: created.upload } : {}),
        ...(created.parentManifest ? { parentManifest: created.parentManifest } : {}),
      },
    };
  },
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
    const page = await service(snapshotService).list(
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
  body: snapshotView(caller, await service(snapshotService).get(caller, path.snapshotId)),
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
    body: snapshotView(caller, await service(snapshotService).update(caller, path.snapshotId, body)),
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
    const { recycled, accessLost } = await service(snapshotService).deleteReporting(caller, path.snapshotId);
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
    body: snapshotView(caller, await service(snapshotService).undelete(caller, path.snapshotId)),
  }),
);

/** `POST /v1/snapshots/{snapshotId}/start`: an agent takes a queued snapshot (it becomes pending). */
export const start = httpHandler(
  { audit: 'snapshot.start', path: SnapshotPath },
  async ({ path, caller }) => ({
    body: snapshotView(caller, await service(snapshotService).start(caller, path.snapshotId)),
  }),
);

/** `POST /v1/snapshots/{snapshotId}/fail {reason}`: whoever writes it gives up; the snapshot goes to error. */
export const fail = httpHandler(
  { audit: 'snapshot.fail', path: SnapshotPath, body: z.strictObject({ reason: z.string() }) },
  async ({ path, body, caller }) => ({
    body: snapshotView(caller, await service(snapshotService).fail(caller, path.snapshotId, body.reason)),
  }),
);

/**
 * `POST /v1/snapshots/{snapshotId}/upload-urls {segments: N, manifest?: true, landed?: [segmentId],
 * stored?: [{segmentId, sha256, size}], listStored?: true}`: new segment ids with write-once PUT URLs
 * and, when asked, a manifest upload id with its write-once URL. `landed` reports segments stored,
 * which the service checks while the rest uploads; `stored` reports them with their SHA-256 and size
 * (checked as landed too, and remembered), and `listStored` answers every one reported so far (what
 * a rerun with the same client token skips).
 */
export const uploadUrls = httpHandler(
  {
    audit: 'snapshot.uploadUrls',
    path: SnapshotPath,
    body: z.strictObject({
      segments: z.number(),
      manifest: z.optional(z.boolean()),
      landed: z.optional(z.array(z.string())),
      stored: z.optional(
        z.array(z.strictObject({ segmentId: z.string(), sha256: z.string(), size: z.number() })),
      ),
      listStored: z.optional(z.boolean()),
    }),
  },
  async ({ path, body, caller }) => ({
    body: await service(snapshotService).uploadUrls(caller, path.snapshotId, body.segments, {
      manifest: body.manifest ?? false,
      ...(body.landed ? { landed: body.landed } : {}),
      ...(body.stored ? { stored: body.stored } : {}),
      listStored: body.listStored ?? false,
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
    const snapshot = await service(snapshotService).complete(
      caller,
      path.snapshotId,
      body?.manifestUploadId ? { manifestUploadId: body.manifestUploadId } : {},
    );
    return { status: snapshot.state === 'pending' ? 202 : 200, body: snapshotView(caller, snapshot) };
  },
);

/** `GET /v1/snapshots/{snapshotId}/manifest-url`: a GET URL of a completed snapshot's manifest. */
export const manifestUrl = httpHandler({ path: SnapshotPath }, async ({ path, caller }) => ({
  body: await service(snapshotService).manifestUrl(caller, path.snapshotId),
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
    body: await service(snapshotService).segmentUrls(caller, path.snapshotId, body.ranges),
  }),
);

/** `GET /v1/snapshots/{snapshotId}/changed-blocks?since=snap-…`: blocks changed since an earlier snapshot. */
export const changedBlocks = httpHandler(
  { path: SnapshotPath, query: z.object({ since: z.string() }) },
  async ({ path, query, caller }) => ({
    body: await service(snapshotService).diff(caller, query.since, path.snapshotId),
  }),
);

/** The snapshots function's routes (lifecycle, and the URLs their data moves through), each declared under `snapshots` in serverless.yml. */
/**
 * `POST /v1/snapshots/{snapshotId}/verify`: 202 with a verification: workers re-read every block of
 * the completed snapshot (its owner's); poll `GET /v1/verifications/{id}` for progress and the report.
 */
export const verify = httpHandler(
  { audit: 'snapshot.verify', path: SnapshotPath },
  async ({ path, caller }) => ({
    status: 202,
    body: verificationView(await service(verificationService).start(caller, path.snapshotId)),
  }),
);

/** `GET /v1/verifications/{verificationId}`: its state, progress and, once completed, the report. */
export const showVerification = httpHandler(
  { path: z.object({ verificationId: z.string() }) },
  async ({ path, caller }) => ({
    body: verificationView(await service(verificationService).get(caller, path.verificationId)),
  }),
);

export const handler = httpRouter({
  'POST /v1/snapshots': create,
  'GET /v1/snapshots': list,
  'GET /v1/snapshots/{snapshotId}': show,
  'PATCH /v1/snapshots/{snapshotId}': update,
  'DELETE /v1/snapshots/{snapshotId}': remove,
  'POST /v1/snapshots/{snapshotId}/undelete': undelete,
  'POST /v1/snapshots/{snapshotId}/start': start,
  'POST /v1/snapshots/{snapshotId}/fail': fail,
  'POST /v1/snapshots/{snapshotId}/upload-urls': uploadUrls,
  'POST /v1/snapshots/{snapshotId}/complete': complete,
  'GET /v1/snapshots/{snapshotId}/manifest-url': manifestUrl,
  'POST /v1/snapshots/{snapshotId}/segment-urls': segmentUrls,
  'GET /v1/snapshots/{snapshotId}/changed-blocks': changedBlocks,
  'POST /v1/snapshots/{snapshotId}/verify': verify,
  'GET /v1/verifications/{verificationId}': showVerification,
});
