// The transfers function: snapshots leaving (exports) and arriving (imports, their uploads, copies
// from other regions), all of them server-side work in parts.

import { exportPorts } from '../../lib/aws/export-records.ts';
import { remotePorts } from '../../lib/aws/node.ts';
import { snapshotPorts } from '../../lib/aws/snapshots.ts';
import { DISK_FORMATS } from '../../lib/core/format/disk-format.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { pageLimit } from '../../lib/http/params.ts';
import { httpHandler, httpRouter } from '../../lib/http/stack.ts';
import { exportView, snapshotView } from '../../lib/http/views.ts';
import { servicesOver } from '../../lib/root.ts';
import { snapshotCopier } from '../../lib/wiring/copies.ts';
import { exportService } from '../../lib/wiring/exports.ts';
import { snapshotImporter } from '../../lib/wiring/imports.ts';

/** The services of this function's routes, over the ports they use (and nothing else in its bundle). */
const service = servicesOver(...snapshotPorts, exportPorts, remotePorts);

const ExportPath = z.object({ exportId: z.string() });
const Tags = z.record(z.string(), z.string());

/** `POST /v1/snapshots/{snapshotId}/export {format}`: starts writing the snapshot as one object (202). */
export const createExport = httpHandler(
  {
    audit: 'export.create',
    path: z.object({ snapshotId: z.string() }),
    body: z.strictObject({
      format: z.enum(DISK_FORMATS),
      bucket: z.optional(z.string()),
      prefix: z.optional(z.string()),
      keepForSeconds: z.optional(z.number()),
    }),
  },
  async ({ path, body, caller }) => ({
    status: 202,
    body: exportView(
      await service(exportService).start(caller, path.snapshotId, body.format, {
        bucket: body.bucket,
        prefix: body.prefix,
        ...(body.keepForSeconds !== undefined ? { keepForMs: body.keepForSeconds * 1000 } : {}),
      }),
    ),
  }),
);

/** `GET /v1/exports?limit&nextToken`: the caller's exports, newest first. */
export const listExports = httpHandler(
  { query: z.object({ limit: z.optional(z.string()), nextToken: z.optional(z.string()) }) },
  async ({ query, caller }) => {
    const page = await service(exportService).list(caller, {
      limit: pageLimit(query.limit),
      nextToken: query.nextToken,
    });
    return {
      body: { exports: page.items.map(exportView), ...(page.nextToken ? { nextToken: page.nextToken } : {}) },
    };
  },
);

/** `GET /v1/exports/{exportId}`. */
export const showExport = httpHandler({ path: ExportPath }, async ({ path, caller }) => ({
  body: exportView(await service(exportService).get(caller, path.exportId)),
}));

/** `DELETE /v1/exports/{exportId}`: the export and its object; URLs handed out stop working. */
export const removeExport = httpHandler(
  { audit: 'export.delete', path: ExportPath },
  async ({ path, caller }) => {
    await service(exportService).delete(caller, path.exportId);
    return { status: 204 };
  },
);

/** `POST /v1/exports/{exportId}/url {expiresInSeconds}`: a presigned GET URL (1 hour by default, 7 days at most). */
export const exportUrl = httpHandler(
  {
    audit: 'export.url',
    path: ExportPath,
    body: z.optional(z.strictObject({ expiresInSeconds: z.optional(z.number()) })),
  },
  async ({ path, body, caller }) => ({
    body: await service(exportService).url(caller, path.exportId, body?.expiresInSeconds),
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
    body: snapshotView(caller, await service(snapshotCopier).start(caller, body)),
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
    body: snapshotView(caller, await service(snapshotImporter).start(caller, body)),
  }),
);

/** `POST /v1/uploads {sizeBytes}`: presigned part URLs for uploading a file to import (then import with `upload`). */
export const createUpload = httpHandler(
  { audit: 'upload.create', body: z.strictObject({ sizeBytes: z.number() }) },
  async ({ body, caller }) => ({
    status: 201,
    body: await service(snapshotImporter).createUpload(caller, body.sizeBytes),
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
    body: await service(snapshotImporter).uploadPartUrls(caller, path.ref, body.uploadId, body.fromPart),
  }),
);

/** The transfers function's routes, each declared under `transfers` in serverless.yml. */
export const handler = httpRouter({
  'POST /v1/snapshots/{snapshotId}/export': createExport,
  'GET /v1/exports': listExports,
  'GET /v1/exports/{exportId}': showExport,
  'DELETE /v1/exports/{exportId}': removeExport,
  'POST /v1/exports/{exportId}/url': exportUrl,
  'POST /v1/snapshots/copy': copy,
  'POST /v1/snapshots/import': importFromUrl,
  'POST /v1/uploads': createUpload,
  'POST /v1/uploads/{ref}/part-urls': uploadPartUrls,
});
