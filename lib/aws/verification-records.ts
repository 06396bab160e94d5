import { DynamoVerificationRepository } from '../adapters/dynamodb/verifications.ts';
import type { PortSet } from '../root.ts';
import { documentsOf, tableOf } from './dynamodb.ts';

/** Verifications' records, over the region's table. */
export const verificationPorts: PortSet = {
  verifications: (context) => new DynamoVerificationRepository(documentsOf(context), tableOf(context)),
};
