import { createDocumentClient } from '../adapters/aws-clients.ts';
import { DynamoIdentityRepository } from '../adapters/dynamodb/accounts.ts';
import { replicaFirst } from '../core/identity/replica-identity.ts';
import type { PortContext, PortSet } from '../root.ts';

// A region's repositories over its DynamoDB table: identity's here, every other one in
// a module of its own (lib/aws/*-records.ts), so that a bundle carries only the repositories (and
// their lib/core helpers) its services read.

/** A region's document client, one per region and container. */
export function documentsOf(context: PortContext, region = context.name) {
  return context.shared(`dynamodb:${region}`, () => createDocumentClient(context.config.registry.get(region)))
    .documents;
}

export const tableOf = (context: PortContext) => context.config.registry.get(context.name).table;
export const nowSeconds = (context: PortContext) => () => Math.floor(context.clock.now() / 1000);

/**
 * Identity: accounts, users, keys, written in the identity region's table; each request reads this
 * region's replica first, where it has one. All the authorizer reads.
 */
export const identityPorts: PortSet = {
  identity: (context) => {
    const { config } = context;
    const home = config.registry.get(config.identityRegion);
    return new DynamoIdentityRepository(documentsOf(context, home.name), config.identityTable ?? home.table);
  },
  // This function's own region's replica, also when it works on another region's resources (a copy
  // rule's destination): identity is the same everywhere, and the role reads its own replica only.
  identityLookups: (context) => {
    const { config } = context;
    const here = config.region.name;
    return config.identityTable && config.identityRegion !== here
      ? replicaFirst(
          new DynamoIdentityRepository(documentsOf(context, here), config.identityTable),
          context.ports.identity,
        )
      : context.ports.identity;
  },
};
