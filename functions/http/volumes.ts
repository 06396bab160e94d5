import { snapshotPorts } from '../../lib/aws/snapshots.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { pageLimit, tagFilter } from '../../lib/http/params.ts';
import { httpHandler, httpRouter } from '../../lib/http/stack.ts';
import { servicesOver } from '../../lib/root.ts';
import { snapshotService, volumeService } from '../../lib/wiring/snapshots.ts';

/** The services of this function's routes, over the ports they use (and nothing else in its bundle). */
const service = servicesOver(...snapshotPorts);

const VolumePath = z.object({ volumeId: z.string() });

/** `POST /v1/volumes`: registers a volume (its bytes stay where they are), empty or from a snapshot. */
export const create = httpHandler(
  {
    audit: 'volume.create',
    body: z.strictObject({
      name: z.string(),
      sizeBytes: z.optional(z.number()),
      tags: z.optional(z.record(z.string(), z.string())),
      imageUri: z.optional(z.string()),
      sourceSnapshotId: z.optional(z.string()),
    }),
  },
  async ({ body, caller }) => {
    const { sourceSnapshotId, ...rest } = body;
    const source = sourceSnapshotId
      ? await service(snapshotService).sourceForVolume(caller, sourceSnapshotId)
      : undefined;
    return { status: 201, body: await service(volumeService).register(caller, { ...rest, source }) };
  },
);

/** `GET /v1/volumes?name=PREFIX&tag:KEY=VALUE&limit=N&nextToken=T`: the caller's volumes, newest first. */
export const list = httpHandler(
  {
    query: z.looseObject({
      name: z.optional(z.string()),
      limit: z.optional(z.string()),
      nextToken: z.optional(z.string()),
    }),
  },
  async ({ query, caller }) => {
    const filter = { name: query.name, tags: tagFilter(query as Record<string, string>) };
    const page = await service(volumeService).list(caller, filter, {
      limit: pageLimit(query.limit),
      nextToken: query.nextToken,
    });
    return { body: { volumes: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) } };
  },
);

/** `GET /v1/volumes/{volumeId}`. */
export const show = httpHandler({ path: VolumePath }, async ({ path, caller }) => ({
  body: await service(volumeService).get(caller, path.volumeId),
}));

/**
 * `DELETE /v1/volumes/{volumeId}`: refused with 409 while the volume has snapshots outside the
 * recycle bin; 204, or 200 `{volumeId, deleted: true, recycledSnapshots}` naming those in the bin,
 * which outlive it there.
 */
export const remove = httpHandler({ audit: 'volume.delete', path: VolumePath }, async ({ path, caller }) => {
  const { recycled } = await service(volumeService).delete(caller, path.volumeId);
  return recycled.length > 0
    ? { body: { volumeId: path.volumeId, deleted: true, recycledSnapshots: recycled } }
    : { status: 204 };
});

/** The volumes function's routes, each declared under `volumes` in serverless.yml. */
export const handler = httpRouter({
  'POST /v1/volumes': create,
  'GET /v1/volumes': list,
  'GET /v1/volumes/{volumeId}': show,
  'DELETE /v1/volumes/{volumeId}': remove,
});
