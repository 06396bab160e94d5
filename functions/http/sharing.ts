// The sharing function: who else may read a snapshot (other accounts, or every account).

import { snapshotPorts } from '../../lib/aws/snapshots.ts';
import * as z from '../../lib/core/shared/schema.ts';
import { httpHandler, httpRouter } from '../../lib/http/stack.ts';
import { snapshotView } from '../../lib/http/views.ts';
import { servicesOver } from '../../lib/root.ts';
import { snapshotService } from '../../lib/wiring/snapshots.ts';

/** The services of this function's routes, over the ports they use (and nothing else in its bundle). */
const service = servicesOver(...snapshotPorts);

const SnapshotPath = z.object({ snapshotId: z.string() });
const SharePath = z.object({ snapshotId: z.string(), accountId: z.string() });

/** `POST /v1/snapshots/{snapshotId}/shares {accountId}`: lets another account (id or name) read it. */
export const share = httpHandler(
  { audit: 'snapshot.share', path: SnapshotPath, body: z.strictObject({ accountId: z.string() }) },
  async ({ path, body, caller }) => ({
    body: snapshotView(caller, await service(snapshotService).share(caller, path.snapshotId, body.accountId)),
  }),
);

/** `DELETE /v1/snapshots/{snapshotId}/shares/{accountId}`: takes the share back. */
export const unshare = httpHandler(
  { audit: 'snapshot.unshare', path: SharePath },
  async ({ path, caller }) => ({
    body: snapshotView(
      caller,
      await service(snapshotService).unshare(caller, path.snapshotId, path.accountId),
    ),
  }),
);

/** `PUT /v1/snapshots/{snapshotId}/public`: every account may read it. */
export const publish = httpHandler(
  { audit: 'snapshot.publish', path: SnapshotPath },
  async ({ path, caller }) => ({
    body: snapshotView(caller, await service(snapshotService).publish(caller, path.snapshotId)),
  }),
);

/** `DELETE /v1/snapshots/{snapshotId}/public`: private again. */
export const unpublish = httpHandler(
  { audit: 'snapshot.unpublish', path: SnapshotPath },
  async ({ path, caller }) => ({
    body: snapshotView(caller, await service(snapshotService).unpublish(caller, path.snapshotId)),
  }),
);

/** The sharing function's routes, each declared under `sharing` in serverless.yml. */
export const handler = httpRouter({
  'POST /v1/snapshots/{snapshotId}/shares': share,
  'DELETE /v1/snapshots/{snapshotId}/shares/{accountId}': unshare,
  'PUT /v1/snapshots/{snapshotId}/public': publish,
  'DELETE /v1/snapshots/{snapshotId}/public': unpublish,
});
