// The EBS direct API function: the six operations unmodified AWS clients (the SDKs' client-ebs, the
// AWS CLI's `aws ebs`, coldsnap) call, at `<region API>/ebs`, SigV4-signed for service `ebs`.

import { httpRouter } from '../../lib/http/stack.ts';
import { readRoutes } from './ebs/reads.ts';
import { writeRoutes } from './ebs/writes.ts';

/** The routes of the `ebs` function in serverless.yml: writes (start, put, complete) and reads. */
export const handler = httpRouter({ ...writeRoutes, ...readRoutes });
