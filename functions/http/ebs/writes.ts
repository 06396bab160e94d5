// StartSnapshot, PutSnapshotBlock and CompleteSnapshot of the EBS direct API.

import type { HttpLambda } from '../../../lib/http/stack.ts';

/** `POST /ebs/snapshots`, `PUT /ebs/snapshots/{snapshotId}/blocks/{blockIndex}`, `POST /ebs/snapshots/completion/{snapshotId}`. */
export const writeRoutes: Record<string, HttpLambda> = {};
