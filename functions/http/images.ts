import { exportPorts } from '../../lib/aws/export-records.ts';
import { instancePorts } from '../../lib/aws/instance-records.ts';
import { snapshotPorts } from '../../lib/aws/snapshots.ts';
import { DISK_FORMATS } from '../../lib/core/format/disk-format.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { pageLimit } from '../../lib/http/params.ts';
import { httpHandler } from '../../lib/http/stack.ts';
import { servicesOver } from '../../lib/root.ts';
import { imageService } from '../../lib/wiring/images.ts';

/** The services of this function's routes, over the ports they use (and nothing else in its bundle). */
const service = servicesOver(...snapshotPorts, exportPorts, instancePorts);

const ImagePath = z.object({ imageId: z.string() });

/**
 * `POST /v1/images {instanceId, name, description, requireStopped}`: an instance snapshot, one
 * snapshot per attached volume at one moment (201, pending until every snapshot is written).
 */
export const create = httpHandler(
  {
    audit: 'image.create',
    body: z.strictObject({
      instanceId: z.string(),
      name: z.string(),
      description: z.optional(z.string()),
      requireStopped: z.optional(z.boolean()),
    }),
  },
  async ({ body, caller }) => ({ status: 201, body: await service(imageService).create(caller, body) }),
);

/** `GET /v1/images?scope=own|shared&limit&nextToken`: the caller's images, or those shared with it. */
export const list = httpHandler(
  {
    query: z.object({
      scope: z.optional(z.enum(['own', 'shared'])),
      limit: z.optional(z.string()),
      nextToken: z.optional(z.string()),
    }),
  },
  async ({ query, caller }) => {
    const page = await service(imageService).list(
      caller,
      { limit: pageLimit(query.limit), nextToken: query.nextToken },
      query.scope,
    );
    return { body: { images: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) } };
  },
);

/** `GET /v1/images/{imageId}`: with its state derived from its snapshots. */
export const show = httpHandler({ path: ImagePath }, async ({ path, caller }) => ({
  body: await service(imageService).get(caller, path.imageId),
}));

/** `DELETE /v1/images/{imageId}`: answers which snapshots it deleted, recycled and kept (and why). */
export const remove = httpHandler({ audit: 'image.delete', path: ImagePath }, async ({ path, caller }) => ({
  body: await service(imageService).delete(caller, path.imageId),
}));

/** `POST /v1/images/{imageId}/launch {name}`: a new instance with one new volume per snapshot (201). */
export const launch = httpHandler(
  { audit: 'image.launch', path: ImagePath, body: z.strictObject({ name: z.string() }) },
  async ({ path, body, caller }) => ({
    status: 201,
    body: await service(imageService).launch(caller, path.imageId, body),
  }),
);

/** `POST /v1/images/{imageId}/shares {accountId}`: the image and its snapshots, readable by another account. */
export const share = httpHandler(
  { audit: 'image.share', path: ImagePath, body: z.strictObject({ accountId: z.string() }) },
  async ({ path, body, caller }) => ({
    body: await service(imageService).share(caller, path.imageId, body.accountId),
  }),
);

/** `DELETE /v1/images/{imageId}/shares/{accountId}`: takes the share back. */
export const unshare = httpHandler(
  { audit: 'image.unshare', path: z.object({ imageId: z.string(), accountId: z.string() }) },
  async ({ path, caller }) => ({
    body: await service(imageService).unshare(caller, path.imageId, path.accountId),
  }),
);

/** `POST /v1/images/copy {sourceRegion, sourceImageId, name, description}`: in the destination region (202). */
export const copy = httpHandler(
  {
    audit: 'image.copy',
    body: z.strictObject({
      sourceRegion: z.string(),
      sourceImageId: z.string(),
      name: z.optional(z.string()),
      description: z.optional(z.string()),
    }),
  },
  async ({ body, caller }) => ({ status: 202, body: await service(imageService).copy(caller, body) }),
);

/** `POST /v1/images/{imageId}/export {format}`: exports every snapshot of the image (202, with the export ids). */
export const exportImage = httpHandler(
  {
    audit: 'image.export',
    path: ImagePath,
    body: z.strictObject({ format: z.optional(z.enum(DISK_FORMATS)) }),
  },
  async ({ path, body, caller }) => ({
    status: 202,
    body: await service(imageService).export(caller, path.imageId, body.format ?? 'vsnap'),
  }),
);

/** The routes of images, served by the instances function (functions/http/instances.ts). */
export const imageRoutes = {
  'POST /v1/images': create,
  'GET /v1/images': list,
  'GET /v1/images/{imageId}': show,
  'DELETE /v1/images/{imageId}': remove,
  'POST /v1/images/{imageId}/launch': launch,
  'POST /v1/images/{imageId}/shares': share,
  'DELETE /v1/images/{imageId}/shares/{accountId}': unshare,
  'POST /v1/images/copy': copy,
  'POST /v1/images/{imageId}/export': exportImage,
};
