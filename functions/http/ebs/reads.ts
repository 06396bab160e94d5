// ListSnapshotBlocks, GetSnapshotBlock and ListChangedBlocks of the EBS direct API.

import { snapshotPorts } from '../../../lib/aws/snapshots.ts';
import { tokenKeyPorts } from '../../../lib/aws/tokens.ts';
import { readRoutesOver } from '../../../lib/http/ebs/reads.ts';
import type { HttpLambda } from '../../../lib/http/stack.ts';
import { servicesOver } from '../../../lib/root.ts';
import { directReads, prefetchSnapshot } from '../../../lib/wiring/direct.ts';

const service = servicesOver(...snapshotPorts, tokenKeyPorts);

/** `GET /ebs/snapshots/{snapshotId}/blocks`, `…/blocks/{blockIndex}`, `GET /ebs/snapshots/{secondSnapshotId}/changedblocks`. */
export const readRoutes: Record<string, HttpLambda> = readRoutesOver(
  () => service(directReads),
  {},
  (path) => service(prefetchSnapshot)(path),
);
