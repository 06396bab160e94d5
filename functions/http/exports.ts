import { DISK_FORMATS } from '../../lib/core/format/disk-format.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { pageLimit } from '../../lib/http/params.ts';
import { httpHandler } from '../../lib/http/stack.ts';
import { runtime } from '../../lib/root.ts';

const ExportPath = z.object({ exportId: z.string() });

/** `POST /v1/snapshots/{snapshotId}/export {format}`: starts writing the snapshot as one object (202). */
export const create = httpHandler(
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
    body: await runtime().exports.start(caller, path.snapshotId, body.format, {
      bucket: body.bucket,
      prefix: body.prefix,
      ...(body.keepForSeconds !== undefined ? { keepForMs: body.keepForSeconds * 1000 } : {}),
    }),
  }),
);

/** `GET /v1/exports?limit&nextToken`: the caller's exports, newest first. */
export const list = httpHandler(
  { query: z.object({ limit: z.optional(z.string()), nextToken: z.optional(z.string()) }) },
  async ({ query, caller }) => {
    const page = await runtime().exports.list(caller, {
      limit: pageLimit(query.limit),
      nextToken: query.nextToken,
    });
    return { body: { exports: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) } };
  },
);

/** `GET /v1/exports/{exportId}`. */
export const show = httpHandler({ path: ExportPath }, async ({ path, caller }) => ({
  body: await runtime().exports.get(caller, path.exportId),
}));

/** `DELETE /v1/exports/{exportId}`: the export and its object; URLs handed out stop working. */
export const remove = httpHandler({ audit: 'export.delete', path: ExportPath }, async ({ path, caller }) => {
  await runtime().exports.delete(caller, path.exportId);
  return { status: 204 };
});

/** `POST /v1/exports/{exportId}/url {expiresInSeconds}`: a presigned GET URL (1 hour by default, 7 days at most). */
export const url = httpHandler(
  {
    audit: 'export.url',
    path: ExportPath,
    body: z.optional(z.strictObject({ expiresInSeconds: z.optional(z.number()) })),
  },
  async ({ path, body, caller }) => ({
    body: await runtime().exports.url(caller, path.exportId, body?.expiresInSeconds),
  }),
);
