import { DynamoExportRepository } from '../adapters/dynamodb/exports.ts';
import type { PortSet } from '../root.ts';
import { documentsOf, tableOf } from './dynamodb.ts';

/** Exports' records, over the region's table. */
export const exportPorts: PortSet = {
  exports: (context) => new DynamoExportRepository(documentsOf(context), tableOf(context)),
};
