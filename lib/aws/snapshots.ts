import type { PortSet } from '../root.ts';
import { accountPorts } from './account-records.ts';
import { identityPorts } from './dynamodb.ts';
import { codecPorts } from './node.ts';
import { objectPorts } from './s3.ts';
import { queuePorts } from './sqs.ts';
import { volumePorts } from './volume-records.ts';

/**
 * What the snapshot service (lib/wiring/snapshots.ts) and every writer of snapshots built on it
 * (copies, imports, image snapshots) run over: records, the bucket, the codec, the work queue.
 */
export const snapshotPorts: readonly PortSet[] = [
  identityPorts,
  accountPorts,
  volumePorts,
  objectPorts,
  codecPorts,
  queuePorts,
];
