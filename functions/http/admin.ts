import { exportPorts } from '../../lib/aws/export-records.ts';
import { policyPorts } from '../../lib/aws/policy-records.ts';
import { snapshotPorts } from '../../lib/aws/snapshots.ts';
import { verificationPorts } from '../../lib/aws/verification-records.ts';
import { DEFAULT_QUOTA, type QuotaLimits } from '../../lib/core/identity/accounts.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { pageLimit } from '../../lib/http/params.ts';
import { httpHandler, httpRouter } from '../../lib/http/stack.ts';
import { servicesOver } from '../../lib/root.ts';
import { accountService } from '../../lib/wiring/identity.ts';
import { maintenanceJobs, regionCheck } from '../../lib/wiring/maintenance.ts';

/** The services of this function's routes, over the ports they use (and nothing else in its bundle). */
const service = servicesOver(...snapshotPorts, exportPorts, policyPorts, verificationPorts);

/** `POST /v1/admin/accounts {name, ownerName}`: a new account, its owner and the owner's first key (operator). */
export const createAccount = httpHandler(
  {
    audit: 'account.create',
    body: z.strictObject({ name: z.string(), ownerName: z.optional(z.string()) }),
  },
  async ({ body, caller }) => ({
    status: 201,
    body: await service(accountService).createAccount(caller, body),
  }),
);

/** `GET /v1/admin/accounts?limit&nextToken` (operator). */
export const listAccounts = httpHandler(
  { query: z.object({ limit: z.optional(z.string()), nextToken: z.optional(z.string()) }) },
  async ({ query, caller }) => {
    const page = await service(accountService).listAccounts(caller, {
      limit: pageLimit(query.limit),
      nextToken: query.nextToken,
    });
    return { body: { accounts: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) } };
  },
);

/**
 * `PUT /v1/admin/accounts/{accountId}/quota {maxSnapshots?, maxStoredBytes?, maxPendingSnapshots?, …}`:
 * sets the limits given (the others keep their override); `{}` resets them all to the defaults (operator).
 */
export const setQuota = httpHandler(
  {
    audit: 'account.setQuota',
    path: z.object({ accountId: z.string() }),
    body: z.strictObject(
      Object.fromEntries(
        Object.keys(DEFAULT_QUOTA).map((limit) => [limit, z.optional(z.number())]),
      ) as Record<keyof QuotaLimits, z.ZodMiniOptional<z.ZodMiniNumber>>,
    ),
  },
  async ({ path, body, caller }) => {
    const given = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
    const override = Object.keys(given).length === 0 ? null : (given as Partial<QuotaLimits>);
    return { body: await service(accountService).setQuota(caller, path.accountId, override) };
  },
);

/**
 * `POST /v1/admin/run/{job} {graceSeconds?, force?, policyId?}`: runs a scheduled job now and answers
 * its report (operator). `gc` takes a shorter grace period; `policies` runs due ones, every enabled
 * one with `force`, or one by id.
 */
export const runJob = httpHandler(
  {
    audit: 'admin.run',
    path: z.object({ job: z.string() }),
    body: z.strictObject({
      graceSeconds: z.optional(z.number()),
      force: z.optional(z.boolean()),
      policyId: z.optional(z.string()),
    }),
  },
  async ({ path, body, caller }) => ({
    body: await service(maintenanceJobs).run(caller, path.job, {
      ...(body.graceSeconds !== undefined ? { graceMs: body.graceSeconds * 1000 } : {}),
      ...(body.force !== undefined ? { force: body.force } : {}),
      ...(body.policyId !== undefined ? { policyId: body.policyId } : {}),
    }),
  }),
);

/**
 * `POST /v1/admin/check {nextToken?, graceSeconds?}`: one page of the region's check (operator):
 * per account, live manifests' segments missing or not at their size, orphans older than the grace
 * period, counts and bytes; `nextToken` while accounts remain (each page answers within seconds).
 */
export const checkRegion = httpHandler(
  {
    body: z.strictObject({ nextToken: z.optional(z.string()), graceSeconds: z.optional(z.number()) }),
  },
  async ({ body, caller }) => ({
    body: await service(regionCheck).check(caller, {
      ...(body.nextToken !== undefined ? { nextToken: body.nextToken } : {}),
      ...(body.graceSeconds !== undefined ? { graceMs: body.graceSeconds * 1000 } : {}),
    }),
  }),
);

/** The admin function's routes (the operator's), each declared under `admin` in serverless.yml. */
export const handler = httpRouter({
  'POST /v1/admin/accounts': createAccount,
  'GET /v1/admin/accounts': listAccounts,
  'PUT /v1/admin/accounts/{accountId}/quota': setQuota,
  'POST /v1/admin/run/{job}': runJob,
  'POST /v1/admin/check': checkRegion,
});
