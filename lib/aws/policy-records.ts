import { DynamoPolicyRepository } from '../adapters/dynamodb/policies.ts';
import type { PortSet } from '../root.ts';
import { documentsOf, tableOf } from './dynamodb.ts';

/** Snapshot policies, over the region's table. */
export const policyPorts: PortSet = {
  policies: (context) => new DynamoPolicyRepository(documentsOf(context), tableOf(context)),
};
