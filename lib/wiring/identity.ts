import { AccountService, keyAuthenticator } from '../core/identity/accounts.ts';
import type { Caller } from '../core/identity/identity.ts';
import { RequestLimiter } from '../core/identity/request-rate.ts';
import type { Factory } from './region.ts';

/** Accounts, users, keys and quotas, with this region's usage of them. */
export const accountService: Factory<AccountService> = (region) => {
  const { identity, identityLookups, clock, snapshots, uploads, settings } = region.ports;
  return new AccountService({
    identity,
    ...(identityLookups ? { lookups: identityLookups } : {}),
    clock,
    region: region.name,
    usage: async (accountId) => ({
      ...(await snapshots.usage(accountId)),
      openUploads: await uploads.count(accountId, clock.now()),
    }),
    ...(settings.defaultQuota ? { defaults: settings.defaultQuota } : {}),
    requestsInWindow: (accountId) => region.get(requestLimiter).inWindow(accountId),
    // Made on first use: only SigV4 key creation seals, and only the account function provides it.
    sealer: () => region.ports.secrets,
  });
};

/** Each account's request rate in this region (the HTTP stack counts every authenticated request). */
export const requestLimiter: Factory<RequestLimiter> = (region) =>
  new RequestLimiter({
    counter: region.ports.requests,
    clock: region.ports.clock,
    limits: (accountId) => region.get(accountService).limits(accountId),
    region: region.name,
  });

/** Resolves an Authorization header to the caller, or undefined for any bad or missing key. */
export const authenticator: Factory<(authorization: string | undefined) => Promise<Caller | undefined>> = (
  region,
) => keyAuthenticator(region.ports.identityLookups ?? region.ports.identity, region.ports.clock);
