import { accountPorts } from '../../lib/aws/account-records.ts';
import { identityPorts } from '../../lib/aws/dynamodb.ts';
import { policyPorts } from '../../lib/aws/policy-records.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { pageLimit } from '../../lib/http/params.ts';
import { httpHandler, httpRouter } from '../../lib/http/stack.ts';
import { servicesOver } from '../../lib/root.ts';
import { policyService } from '../../lib/wiring/policies.ts';

/** The services of this function's routes, over the ports they use (and nothing else in its bundle). */
const service = servicesOver(identityPorts, accountPorts, policyPorts);

const PolicyPath = z.object({ policyId: z.string() });
// Exactly one of each pair: the service says so in words when both or neither are given.
const Schedule = z.strictObject({ everyMs: z.optional(z.number()), cron: z.optional(z.string()) });
const Retention = z.strictObject({ keep: z.optional(z.number()), keepForMs: z.optional(z.number()) });
const CopyRules = z.array(z.strictObject({ region: z.string(), retention: Retention }));
const Tags = z.record(z.string(), z.string());

/** `POST /v1/policies`: a snapshot policy (schedule, target tags, retention, copy rules). */
export const create = httpHandler(
  {
    audit: 'policy.create',
    body: z.strictObject({
      name: z.string(),
      description: z.optional(z.string()),
      targetTags: Tags,
      schedule: Schedule,
      retention: Retention,
      copyRules: z.optional(CopyRules),
      agentTimeoutMs: z.optional(z.number()),
      enabled: z.optional(z.boolean()),
    }),
  },
  async ({ body, caller }) => ({ status: 201, body: await service(policyService).create(caller, body) }),
);

/** `GET /v1/policies?limit&nextToken`: the caller's policies in this region, newest first. */
export const list = httpHandler(
  { query: z.object({ limit: z.optional(z.string()), nextToken: z.optional(z.string()) }) },
  async ({ query, caller }) => {
    const page = await service(policyService).list(caller, {
      limit: pageLimit(query.limit),
      nextToken: query.nextToken,
    });
    return { body: { policies: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) } };
  },
);

/** `GET /v1/policies/{policyId}`. */
export const show = httpHandler({ path: PolicyPath }, async ({ path, caller }) => ({
  body: await service(policyService).get(caller, path.policyId),
}));

/** `PATCH /v1/policies/{policyId}`: the fields given; `enabled` turns it off and on. */
export const update = httpHandler(
  {
    audit: 'policy.update',
    path: PolicyPath,
    body: z.strictObject({
      name: z.optional(z.string()),
      description: z.optional(z.string()),
      targetTags: z.optional(Tags),
      schedule: z.optional(Schedule),
      retention: z.optional(Retention),
      copyRules: z.optional(CopyRules),
      agentTimeoutMs: z.optional(z.number()),
      enabled: z.optional(z.boolean()),
    }),
  },
  async ({ path, body, caller }) => ({
    body: await service(policyService).update(caller, path.policyId, body),
  }),
);

/** `DELETE /v1/policies/{policyId}`: the snapshots it made stay (with their `volsnap:policy` tag). */
export const remove = httpHandler({ audit: 'policy.delete', path: PolicyPath }, async ({ path, caller }) => {
  await service(policyService).delete(caller, path.policyId);
  return { status: 204 };
});

/** The policies function's routes, each declared under `policies` in serverless.yml. */
export const handler = httpRouter({
  'POST /v1/policies': create,
  'GET /v1/policies': list,
  'GET /v1/policies/{policyId}': show,
  'PATCH /v1/policies/{policyId}': update,
  'DELETE /v1/policies/{policyId}': remove,
});
