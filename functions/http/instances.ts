import { accountPorts } from '../../lib/aws/account-records.ts';
import { identityPorts } from '../../lib/aws/dynamodb.ts';
import { instancePorts } from '../../lib/aws/instance-records.ts';
import { volumePorts } from '../../lib/aws/volume-records.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { pageLimit } from '../../lib/http/params.ts';
import { httpHandler, httpRouter } from '../../lib/http/stack.ts';
import { servicesOver } from '../../lib/root.ts';
import { instanceService } from '../../lib/wiring/instances.ts';
import { imageRoutes } from './images.ts';

/** The services of this function's routes, over the ports they use (and nothing else in its bundle). */
const service = servicesOver(identityPorts, accountPorts, volumePorts, instancePorts);

const InstancePath = z.object({ instanceId: z.string() });
const AttachmentPath = z.object({ instanceId: z.string(), volumeId: z.string() });
const Properties = z.record(z.string(), z.string());
const State = z.enum(['running', 'stopped']);

/** `POST /v1/instances {name, volumes: [{volumeId, device, bootIndex}], properties, state}`: registers an instance. */
export const create = httpHandler(
  {
    audit: 'instance.create',
    body: z.strictObject({
      name: z.string(),
      volumes: z.optional(
        z.array(
          z.strictObject({ volumeId: z.string(), device: z.string(), bootIndex: z.optional(z.number()) }),
        ),
      ),
      properties: z.optional(Properties),
      state: z.optional(State),
    }),
  },
  async ({ body, caller }) => ({ status: 201, body: await service(instanceService).register(caller, body) }),
);

/** `GET /v1/instances?limit&nextToken`: the caller's instances in this region, newest first. */
export const list = httpHandler(
  { query: z.object({ limit: z.optional(z.string()), nextToken: z.optional(z.string()) }) },
  async ({ query, caller }) => {
    const page = await service(instanceService).list(caller, {
      limit: pageLimit(query.limit),
      nextToken: query.nextToken,
    });
    return { body: { instances: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) } };
  },
);

/** `GET /v1/instances/{instanceId}`. */
export const show = httpHandler({ path: InstancePath }, async ({ path, caller }) => ({
  body: await service(instanceService).get(caller, path.instanceId),
}));

/** `PATCH /v1/instances/{instanceId} {state, name, properties}`: mark it running or stopped, rename it, replace its properties. */
export const update = httpHandler(
  {
    audit: 'instance.update',
    path: InstancePath,
    body: z.strictObject({
      name: z.optional(z.string()),
      state: z.optional(State),
      properties: z.optional(Properties),
    }),
  },
  async ({ path, body, caller }) => ({
    body: await service(instanceService).update(caller, path.instanceId, body),
  }),
);

/** `DELETE /v1/instances/{instanceId}`: its volumes are detached and stay; so do its images. */
export const remove = httpHandler(
  { audit: 'instance.delete', path: InstancePath },
  async ({ path, caller }) => {
    await service(instanceService).delete(caller, path.instanceId);
    return { status: 204 };
  },
);

/** `PUT /v1/instances/{instanceId}/volumes/{volumeId} {device, bootIndex}`: attaches a volume (idempotent). */
export const attach = httpHandler(
  {
    audit: 'instance.attach',
    path: AttachmentPath,
    body: z.strictObject({ device: z.string(), bootIndex: z.optional(z.number()) }),
  },
  async ({ path, body, caller }) => ({
    body: await service(instanceService).attach(caller, path.instanceId, {
      volumeId: path.volumeId,
      ...body,
    }),
  }),
);

/** `DELETE /v1/instances/{instanceId}/volumes/{volumeId}`: detaches it (the volume stays). */
export const detach = httpHandler(
  { audit: 'instance.detach', path: AttachmentPath },
  async ({ path, caller }) => ({
    body: await service(instanceService).detach(caller, path.instanceId, path.volumeId),
  }),
);

/** The instances function's routes, and those of their images, each declared under `instances` in serverless.yml. */
export const handler = httpRouter({
  'POST /v1/instances': create,
  'GET /v1/instances': list,
  'GET /v1/instances/{instanceId}': show,
  'PATCH /v1/instances/{instanceId}': update,
  'DELETE /v1/instances/{instanceId}': remove,
  'PUT /v1/instances/{instanceId}/volumes/{volumeId}': attach,
  'DELETE /v1/instances/{instanceId}/volumes/{volumeId}': detach,
  ...imageRoutes,
});
