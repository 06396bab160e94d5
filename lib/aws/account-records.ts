import { DynamoAuditLog } from '../adapters/dynamodb/audit.ts';
import { DynamoRequestCounter } from '../adapters/dynamodb/request-counter.ts';
import { DynamoSnapshotRepository } from '../adapters/dynamodb/snapshots.ts';
import { DynamoUploadSlots } from '../adapters/dynamodb/uploads.ts';
import type { PortSet } from '../root.ts';
import { documentsOf, nowSeconds, tableOf } from './dynamodb.ts';

/**
 * What every authenticated request touches besides identity: its count (the request limiter), its
 * audit, and the usage its account's quotas are checked against (snapshots, open uploads).
 */
export const accountPorts: PortSet = {
  requests: (context) => new DynamoRequestCounter(documentsOf(context), tableOf(context)),
  audit: (context) => new DynamoAuditLog(documentsOf(context), tableOf(context), nowSeconds(context)),
  snapshots: (context) =>
    new DynamoSnapshotRepository(documentsOf(context), tableOf(context), nowSeconds(context)),
  uploads: (context) => new DynamoUploadSlots(documentsOf(context), tableOf(context)),
};
