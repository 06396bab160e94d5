import { accountRequests } from './api/accounts.ts';
import { imageRequests } from './api/images.ts';
import { instanceRequests } from './api/instances.ts';
import { policyRequests } from './api/policies.ts';
import { sharingRequests } from './api/sharing.ts';
import { snapshotDataRequests } from './api/snapshot-data.ts';
import { snapshotRequests } from './api/snapshots.ts';
import { transferRequests } from './api/transfers.ts';
import { ApiTransport } from './api/transport.ts';
import { volumeRequests } from './api/volumes.ts';

export { GATEWAY_FAILURE, isRetryable } from './api/retry.ts';
export type { SnapshotListFilter } from './api/snapshots.ts';
export { type ApiClientOptions, ApiError, DEFAULT_RETRY_FOR_MS, isTransient } from './api/transport.ts';
export type * from './api/types.ts';
export type { HealthResponse, VolumeListFilter } from './api/volumes.ts';

// Each resource's methods on the one before: the order is of no meaning, none calls another's.
const WithVolumes = volumeRequests(ApiTransport);
const WithSnapshots = snapshotRequests(WithVolumes);
const WithSnapshotData = snapshotDataRequests(WithSnapshots);
const WithSharing = sharingRequests(WithSnapshotData);
const WithTransfers = transferRequests(WithSharing);
const WithPolicies = policyRequests(WithTransfers);
const WithInstances = instanceRequests(WithPolicies);
const WithImages = imageRequests(WithInstances);

/**
 * The typed client of the volsnap HTTP API, used by the CLI and the tests: one request core
 * (lib/client/api/transport.ts) with every resource's methods on it, a file a resource
 * (lib/client/api/). Every non-2xx answer becomes an {@link ApiError} carrying the API's code; an
 * unreachable endpoint becomes `client.unreachable` with what to check.
 */
export class ApiClient extends accountRequests(WithImages) {}
