import { accountPorts } from '../../lib/aws/account-records.ts';
import { identityPorts } from '../../lib/aws/dynamodb.ts';
import { secretsPorts } from '../../lib/aws/secrets.ts';
import { ROLES, requireAdmin } from '../../lib/core/identity/identity.ts';
import type { AuditLog } from '../../lib/core/ports/audit.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { pageLimit } from '../../lib/http/params.ts';
import { httpHandler, httpRouter } from '../../lib/http/stack.ts';
import { runtime, servicesOver } from '../../lib/root.ts';
import { accountService } from '../../lib/wiring/identity.ts';
import type { Factory } from '../../lib/wiring/region.ts';

/** The services of this function's routes, over the ports they use (and nothing else in its bundle). */
const service = servicesOver(identityPorts, accountPorts, secretsPorts);
/** The region's audit trail (a port, not a service). */
const auditTrail: Factory<AuditLog> = (region) => region.ports.audit;

const UserPath = z.object({ userName: z.string() });
const KeyPath = z.object({ keyId: z.string() });

/** `GET /v1/account`: the caller's account, user, role and permissions. */
export const show = httpHandler({}, async ({ caller }) => ({
  body: await service(accountService).whoami(caller),
}));

/** `PATCH /v1/account {blockPublicSharing}`: account-wide settings (admins). */
export const update = httpHandler(
  {
    audit: 'account.update',
    body: z.strictObject({
      blockPublicSharing: z.optional(z.boolean()),
      recycleBinDays: z.optional(z.number()),
    }),
  },
  async ({ body, caller }) => ({ body: await service(accountService).updateSettings(caller, body) }),
);

/** `GET /v1/account/usage`: snapshots and stored bytes in this region, beside their quotas. */
export const usage = httpHandler({}, async ({ caller }) => ({
  body: await service(accountService).usage(caller),
}));

/** `GET /v1/account/audit?limit&nextToken`: who changed what, when, with which key (admins). */
export const audit = httpHandler(
  { query: z.object({ limit: z.optional(z.string()), nextToken: z.optional(z.string()) }) },
  async ({ query, caller }) => {
    requireAdmin(caller);
    const page = await service(auditTrail).list(caller.accountId, {
      limit: pageLimit(query.limit),
      nextToken: query.nextToken,
    });
    return { body: { events: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) } };
  },
);

/** `POST /v1/account/users {userName, role, permissions}` (admins). */
export const createUser = httpHandler(
  {
    audit: 'user.create',
    body: z.strictObject({
      userName: z.string(),
      role: z.optional(z.enum(ROLES)),
      permissions: z.optional(z.array(z.string())),
    }),
  },
  async ({ body, caller }) => ({ status: 201, body: await service(accountService).createUser(caller, body) }),
);

/** `GET /v1/account/users` (admins). */
export const listUsers = httpHandler({}, async ({ caller }) => ({
  body: { users: await service(accountService).listUsers(caller) },
}));

/** `PATCH /v1/account/users/{userName} {role, permissions}` (admins; owners for owners and admins). */
export const updateUser = httpHandler(
  {
    audit: 'user.update',
    path: UserPath,
    body: z.strictObject({ role: z.optional(z.enum(ROLES)), permissions: z.optional(z.array(z.string())) }),
  },
  async ({ path, body, caller }) => ({
    body: await service(accountService).updateUser(caller, path.userName, body),
  }),
);

/** `DELETE /v1/account/users/{userName}`: the user and its keys (admins). */
export const deleteUser = httpHandler({ audit: 'user.delete', path: UserPath }, async ({ path, caller }) => {
  await service(accountService).deleteUser(caller, path.userName);
  return { status: 204 };
});

/**
 * `POST /v1/account/keys {userName, expiresInSeconds, description, sigv4}`: a new key, its token
 * shown once (admins). With `sigv4: true` a SigV4 access key pair for the AWS-protocol APIs, its
 * secret access key shown once (stored sealed), and the region that issued it.
 */
export const createKey = httpHandler(
  {
    audit: 'key.create',
    body: z.strictObject({
      userName: z.optional(z.string()),
      expiresInSeconds: z.optional(z.number()),
      description: z.optional(z.string()),
      sigv4: z.optional(z.boolean()),
    }),
  },
  async ({ body: { sigv4, ...input }, caller }) => ({
    status: 201,
    body: sigv4
      ? {
          ...(await service(accountService).createSigV4Key(caller, input)),
          region: runtime().config.region.name,
        }
      : await service(accountService).createKey(caller, input),
  }),
);

/** `GET /v1/account/keys?userName`: the account's keys, never their secrets (admins). */
export const listKeys = httpHandler(
  { query: z.object({ userName: z.optional(z.string()) }) },
  async ({ query, caller }) => ({
    body: { keys: await service(accountService).listKeys(caller, query.userName) },
  }),
);

/** `DELETE /v1/account/keys/{keyId}`: revokes a key (admins; anyone its own). */
export const revokeKey = httpHandler({ audit: 'key.revoke', path: KeyPath }, async ({ path, caller }) => ({
  body: await service(accountService).revokeKey(caller, path.keyId),
}));

/** The account function's routes (the account, its users and their keys), each declared under `account` in serverless.yml. */
export const handler = httpRouter({
  'GET /v1/account': show,
  'PATCH /v1/account': update,
  'GET /v1/account/usage': usage,
  'GET /v1/account/audit': audit,
  'POST /v1/account/users': createUser,
  'GET /v1/account/users': listUsers,
  'PATCH /v1/account/users/{userName}': updateUser,
  'DELETE /v1/account/users/{userName}': deleteUser,
  'POST /v1/account/keys': createKey,
  'GET /v1/account/keys': listKeys,
  'DELETE /v1/account/keys/{keyId}': revokeKey,
});
