import * as z from '../../lib/core/schema.ts';
import { pageLimit } from '../../lib/http/params.ts';
import { httpHandler } from '../../lib/http/stack.ts';
import { runtime } from '../../lib/root.ts';

/** `POST /v1/admin/accounts {name, ownerName}`: a new account, its owner and the owner's first key (operator). */
export const createAccount = httpHandler(
  {
    audit: 'account.create',
    body: z.strictObject({ name: z.string(), ownerName: z.optional(z.string()) }),
  },
  async ({ body, caller }) => ({ status: 201, body: await runtime().accounts.createAccount(caller, body) }),
);

/** `GET /v1/admin/accounts?limit&nextToken` (operator). */
export const listAccounts = httpHandler(
  { query: z.object({ limit: z.optional(z.string()), nextToken: z.optional(z.string()) }) },
  async ({ query, caller }) => {
    const page = await runtime().accounts.listAccounts(caller, {
      limit: pageLimit(query.limit),
      nextToken: query.nextToken,
    });
    return { body: { accounts: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) } };
  },
);

/** `PUT /v1/admin/accounts/{accountId}/quota {maxSnapshots, maxStoredBytes}`; `{}` resets to the defaults (operator). */
export const setQuota = httpHandler(
  {
    audit: 'account.setQuota',
    path: z.object({ accountId: z.string() }),
    body: z.strictObject({
      maxSnapshots: z.optional(z.number()),
      maxStoredBytes: z.optional(z.number()),
    }),
  },
  async ({ path, body, caller }) => {
    const override = body.maxSnapshots === undefined && body.maxStoredBytes === undefined ? null : body;
    return { body: await runtime().accounts.setQuota(caller, path.accountId, override) };
  },
);
