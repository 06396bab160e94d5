import { DynamoVolumeRepository } from '../adapters/dynamodb/volumes.ts';
import type { PortSet } from '../root.ts';
import { documentsOf, tableOf } from './dynamodb.ts';

/** Volumes' records, over the region's table. */
export const volumePorts: PortSet = {
  volumes: (context) => new DynamoVolumeRepository(documentsOf(context), tableOf(context)),
};
