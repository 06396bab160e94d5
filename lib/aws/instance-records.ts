import { DynamoImageRepository } from '../adapters/dynamodb/images.ts';
import { DynamoInstanceRepository } from '../adapters/dynamodb/instances.ts';
import type { PortSet } from '../root.ts';
import { documentsOf, tableOf } from './dynamodb.ts';

/** Instances and images, over the region's table. */
export const instancePorts: PortSet = {
  instances: (context) => new DynamoInstanceRepository(documentsOf(context), tableOf(context)),
  images: (context) => new DynamoImageRepository(documentsOf(context), tableOf(context)),
};
