// ListSnapshotBlocks, GetSnapshotBlock and ListChangedBlocks of the EBS direct API.

import type { HttpLambda } from '../../../lib/http/stack.ts';

/** `GET /ebs/snapshots/{snapshotId}/blocks`, `…/blocks/{blockIndex}`, `GET /ebs/snapshots/{secondSnapshotId}/changedblocks`. */
export const readRoutes: Record<string, HttpLambda> = {};
