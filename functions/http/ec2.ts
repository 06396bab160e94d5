// The one EC2 call coldsnap waits with: DescribeSnapshots (Query protocol, XML), at `<region API>/ec2`.

import { httpRouter } from '../../lib/http/stack.ts';

/** `POST /ec2`: the Query protocol's `Action=DescribeSnapshots`. */
export const handler = httpRouter({});
