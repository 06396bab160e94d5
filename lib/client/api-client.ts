import type { DiskFormat } from '../core/format/disk-format.ts';
import type { SegmentRange } from '../core/format/restore-plan.ts';
import type {
  Account,
  AccountUsage,
  ApiKeyInfo,
  IssuedKey,
  QuotaLimits,
  User,
} from '../core/identity/accounts.ts';
import type { Permission, Role } from '../core/identity/identity.ts';
import type { Image, ImageDeletion, ImageSnapshot, Launch } from '../core/instances/images.ts';
import type { AttachedVolume, Instance, InstanceState } from '../core/instances/instances.ts';
import type {
  CopyRule,
  CreatePolicyInput,
  Policy,
  PolicyChanges,
  PolicyRetention,
  PolicyRunReport,
  PolicySchedule,
} from '../core/maintenance/policies.ts';
import type { AuditEntry } from '../core/ports/audit.ts';
import type {
  SnapshotDiff as ChangedBlocks,
  SegmentRangeUrl,
  SegmentUrl,
} from '../core/snapshots/snapshot-service.ts';
import type { Snapshot, SnapshotScope, SnapshotState } from '../core/snapshots/snapshots.ts';
import type { Export } from '../core/tasks/exports.ts';
import type { UploadStart } from '../core/tasks/imports.ts';
import type { Volume, VolumeDeletion } from '../core/volumes/volumes.ts';

type SnapshotDeletion = import('../core/snapshots/snapshot-service.ts').SnapshotDeletion;

import { escapeUnprintable } from '../core/shared/text.ts';

// The API's resources have the shapes of the core's (type-only imports: nothing of core runs here).
export type {
  Account,
  AccountUsage,
  ApiKeyInfo,
  AttachedVolume,
  AuditEntry,
  ChangedBlocks,
  CopyRule,
  CreatePolicyInput,
  DiskFormat,
  Export,
  Image,
  ImageDeletion,
  ImageSnapshot,
  Instance,
  InstanceState,
  IssuedKey,
  Launch,
  Permission,
  Policy,
  PolicyChanges,
  PolicyRetention,
  PolicyRunReport,
  PolicySchedule,
  QuotaLimits,
  Role,
  SegmentRange,
  SegmentRangeUrl,
  SegmentUrl,
  Snapshot,
  SnapshotDeletion,
  SnapshotState,
  User,
  Volume,
};

/** An error the API answered with (`{error, message, requestId}`), or a failure to reach it. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface HealthResponse {
  region: string;
  version: string;
  status: string;
  /** The Node version of the function that answered (absent from deployments before it was added). */
  runtime?: { node: string };
}

export interface VolumeListFilter {
  name?: string;
  tags?: Record<string, string>;
  limit?: number;
  nextToken?: string;
}

export interface SnapshotListFilter {
  /** Own snapshots (default), those shared with the caller's account, or public ones. */
  scope?: SnapshotScope;
  volumeId?: string;
  state?: SnapshotState;
  name?: string;
  tags?: Record<string, string>;
  limit?: number;
  nextToken?: string;
}

export interface ApiClientOptions {
  endpoint: string;
  apiKey?: string;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** Injected for tests; how the client waits out a `Retry-After`. */
  sleep?: (ms: number) => Promise<void>;
}

/** A throttled (429) or busy (503 with Retry-After) GET is tried again this many times, waiting what `Retry-After` says (at most 30 s each). */
const THROTTLE_RETRIES = 3;
const MAX_RETRY_AFTER_MS = 30_000;

/**
 * The typed client of the volsnap HTTP API, used by the CLI and the tests. Every non-2xx answer
 * becomes an {@link ApiError} carrying the API's code; an unreachable endpoint becomes
 * `client.unreachable` with what to check.
 */
export class ApiClient {
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  constructor(private readonly options: ApiClientOptions) {
    this.#fetch = options.fetch ?? fetch;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  health(): Promise<HealthResponse> {
    return this.request<HealthResponse>('GET', '/v1/health');
  }

  createVolume(input: {
    name: string;
    sizeBytes?: number;
    tags?: Record<string, string>;
    imageUri?: string;
    sourceSnapshotId?: string;
  }): Promise<Volume> {
    return this.request<Volume>('POST', '/v1/volumes', input);
  }

  listVolumes(filter: VolumeListFilter = {}): Promise<{ volumes: Volume[]; nextToken?: string }> {
    const qs = listQuery(
      { name: filter.name, limit: filter.limit, nextToken: filter.nextToken },
      filter.tags,
    );
    return this.request('GET', `/v1/volumes${qs ? `?${qs}` : ''}`);
  }

  /** Every volume matching `filter`, page after page. */
  allVolumes(filter: Omit<VolumeListFilter, 'nextToken'> = {}): AsyncGenerator<Volume> {
    return everyPage(async (nextToken) => {
      const page = await this.listVolumes({ ...filter, nextToken });
      return { items: page.volumes, nextToken: page.nextToken };
    });
  }

  getVolume(volumeId: string): Promise<Volume> {
    return this.request<Volume>('GET', `/v1/volumes/${encodeURIComponent(volumeId)}`);
  }

  /** Deletes a volume; answers its snapshots in the recycle bin, which stay there after it. */
  async deleteVolume(volumeId: string): Promise<{ recycledSnapshots: VolumeDeletion['recycled'] }> {
    const answer = await this.request<{ recycledSnapshots?: VolumeDeletion['recycled'] } | undefined>(
      'DELETE',
      `/v1/volumes/${encodeURIComponent(volumeId)}`,
    );
    return { recycledSnapshots: answer?.recycledSnapshots ?? [] };
  }

  createSnapshot(input: {
    volumeId: string;
    name?: string;
    description?: string;
    tags?: Record<string, string>;
    clientToken?: string;
    /** Queue it for `volsnap agent` on the volume's host instead of writing it now. */
    queued?: boolean;
  }): Promise<Snapshot> {
    return this.request<Snapshot>('POST', '/v1/snapshots', input);
  }

  listSnapshots(filter: SnapshotListFilter = {}): Promise<{ snapshots: Snapshot[]; nextToken?: string }> {
    const { tags, ...plain } = filter;
    const qs = listQuery(plain, tags);
    return this.request('GET', `/v1/snapshots${qs ? `?${qs}` : ''}`);
  }

  /** Every snapshot matching `filter`, page after page. */
  allSnapshots(filter: Omit<SnapshotListFilter, 'nextToken'> = {}): AsyncGenerator<Snapshot> {
    return everyPage(async (nextToken) => {
      const page = await this.listSnapshots({ ...filter, nextToken });
      return { items: page.snapshots, nextToken: page.nextToken };
    });
  }

  getSnapshot(snapshotId: string): Promise<Snapshot> {
    return this.request<Snapshot>('GET', `/v1/snapshots/${encodeURIComponent(snapshotId)}`);
  }

  updateSnapshot(
    snapshotId: string,
    changes: { name?: string; description?: string; tags?: Record<string, string> },
  ): Promise<Snapshot> {
    return this.request<Snapshot>('PATCH', `/v1/snapshots/${encodeURIComponent(snapshotId)}`, changes);
  }

  /**
   * Deletes a snapshot: `recycled` when it went to the recycle bin (absent when it is gone for good),
   * and `accessLost` when other accounts could read it.
   */
  async deleteSnapshot(snapshotId: string): Promise<SnapshotDeletion> {
    const answer = await this.request<
      (Snapshot & Pick<SnapshotDeletion, 'accessLost'>) | { deleted: true; accessLost: unknown } | undefined
    >('DELETE', `/v1/snapshots/${encodeURIComponent(snapshotId)}`);
    if (!answer) return {};
    const { accessLost, ...rest } = answer as Snapshot & Pick<SnapshotDeletion, 'accessLost'>;
    return {
      ...('deleted' in answer ? {} : { recycled: rest as Snapshot }),
      ...(accessLost ? { accessLost } : {}),
    };
  }

  /** Runs a scheduled job now (operator): gc, reaper, expiry or policies; returns its report. */
  runJob(
    job: string,
    options: { graceSeconds?: number; force?: boolean; policyId?: string } = {},
  ): Promise<Record<string, unknown>> {
    return this.request('POST', `/v1/admin/run/${encodeURIComponent(job)}`, options);
  }

  undeleteSnapshot(snapshotId: string): Promise<Snapshot> {
    return this.request<Snapshot>('POST', `/v1/snapshots/${encodeURIComponent(snapshotId)}/undelete`);
  }

  /** An agent takes a queued snapshot (it becomes pending, and its blocks are written as usual). */
  startSnapshot(snapshotId: string): Promise<Snapshot> {
    return this.request<Snapshot>('POST', `/v1/snapshots/${encodeURIComponent(snapshotId)}/start`);
  }

  /** Fails a snapshot; the reason (often an error message, possibly multi-line) is sent as printable text. */
  failSnapshot(snapshotId: string, reason: string): Promise<Snapshot> {
    return this.request<Snapshot>('POST', `/v1/snapshots/${encodeURIComponent(snapshotId)}/fail`, {
      reason: escapeUnprintable(reason),
    });
  }

  /** Segment ids with write-once PUT URLs; with `manifest`, also a manifest upload id and its URL. */
  uploadUrls(
    snapshotId: string,
    segments: number,
    options: { manifest?: boolean } = {},
  ): Promise<{
    segments: SegmentUrl[];
    manifestUploadId?: string;
    manifestUrl?: string;
    expiresInSeconds: number;
  }> {
    return this.request('POST', `/v1/snapshots/${encodeURIComponent(snapshotId)}/upload-urls`, {
      segments,
      ...(options.manifest ? { manifest: true } : {}),
    });
  }

  /** Completes from the manifest uploaded to `manifestUploadId`; pending (202) while workers verify it. */
  completeSnapshot(snapshotId: string, manifestUploadId?: string): Promise<Snapshot> {
    return this.request<Snapshot>(
      'POST',
      `/v1/snapshots/${encodeURIComponent(snapshotId)}/complete`,
      manifestUploadId ? { manifestUploadId } : undefined,
    );
  }

  manifestUrl(snapshotId: string): Promise<{ url: string; expiresInSeconds: number }> {
    return this.request('GET', `/v1/snapshots/${encodeURIComponent(snapshotId)}/manifest-url`);
  }

  /**
   * GET URLs of a completed snapshot's segments, one per byte range (end exclusive), in the order
   * asked; each works only with exactly its range's `Range` header. Another account's snapshot
   * answers only ranges that are runs of its blocks (`snapshot.rangeNotShared` otherwise).
   */
  segmentUrls(
    snapshotId: string,
    ranges: SegmentRange[],
  ): Promise<{ ranges: SegmentRangeUrl[]; expiresInSeconds: number }> {
    return this.request('POST', `/v1/snapshots/${encodeURIComponent(snapshotId)}/segment-urls`, {
      ranges,
    });
  }

  changedBlocks(snapshotId: string, since: string): Promise<ChangedBlocks> {
    return this.request(
      'GET',
      `/v1/snapshots/${encodeURIComponent(snapshotId)}/changed-blocks?since=${encodeURIComponent(since)}`,
    );
  }

  /** Starts a copy into this client's region; workers write it (poll {@link getSnapshot}). */
  copySnapshot(input: {
    sourceRegion: string;
    sourceSnapshotId: string;
    name?: string;
    description?: string;
    tags?: Record<string, string>;
    clientToken?: string;
  }): Promise<Snapshot> {
    return this.request<Snapshot>('POST', '/v1/snapshots/copy', input);
  }

  /** Starts uploading a file of `sizeBytes` to import: its part size and count, and the first parts' URLs. */
  createUpload(sizeBytes: number): Promise<UploadStart> {
    return this.request('POST', '/v1/uploads', { sizeBytes });
  }

  /** More part URLs of an upload, from part `fromPart` (a page of them; `nextPart` when more remain). */
  uploadPartUrls(
    ref: string,
    uploadId: string,
    fromPart: number,
  ): Promise<{ parts: { partNumber: number; url: string }[]; nextPart?: number; expiresInSeconds: number }> {
    return this.request('POST', `/v1/uploads/${encodeURIComponent(ref)}/part-urls`, { uploadId, fromPart });
  }

  /** Starts an import from a URL serving ranged GETs; workers write it (poll {@link getSnapshot}). */
  importSnapshot(input: {
    url?: string;
    upload?: { ref: string; uploadId: string; parts: { partNumber: number; etag: string }[] };
    format: DiskFormat;
    sizeBytes?: number;
    name?: string;
    description?: string;
    tags?: Record<string, string>;
    clientToken?: string;
  }): Promise<Snapshot> {
    return this.request<Snapshot>('POST', '/v1/snapshots/import', input);
  }

  exportSnapshot(
    snapshotId: string,
    format: DiskFormat,
    target: { bucket?: string; prefix?: string; keepForSeconds?: number } = {},
  ): Promise<Export> {
    return this.request('POST', `/v1/snapshots/${encodeURIComponent(snapshotId)}/export`, {
      format,
      ...target,
    });
  }

  listExports(
    page: { limit?: number; nextToken?: string } = {},
  ): Promise<{ exports: Export[]; nextToken?: string }> {
    const qs = listQuery(page);
    return this.request('GET', `/v1/exports${qs ? `?${qs}` : ''}`);
  }

  getExport(exportId: string): Promise<Export> {
    return this.request('GET', `/v1/exports/${encodeURIComponent(exportId)}`);
  }

  async deleteExport(exportId: string): Promise<void> {
    await this.request<void>('DELETE', `/v1/exports/${encodeURIComponent(exportId)}`);
  }

  exportUrl(
    exportId: string,
    expiresInSeconds?: number,
  ): Promise<{ url: string; expiresInSeconds: number; size: number; format: DiskFormat }> {
    return this.request('POST', `/v1/exports/${encodeURIComponent(exportId)}/url`, { expiresInSeconds });
  }

  createPolicy(input: CreatePolicyInput): Promise<Policy> {
    return this.request('POST', '/v1/policies', input);
  }

  listPolicies(
    page: { limit?: number; nextToken?: string } = {},
  ): Promise<{ policies: Policy[]; nextToken?: string }> {
    const qs = listQuery(page);
    return this.request('GET', `/v1/policies${qs ? `?${qs}` : ''}`);
  }

  /** Every policy of the account in this region, following pages. */
  allPolicies(): AsyncGenerator<Policy> {
    return everyPage(async (nextToken) => {
      const page = await this.listPolicies({ nextToken });
      return { items: page.policies, nextToken: page.nextToken };
    });
  }

  getPolicy(policyId: string): Promise<Policy> {
    return this.request('GET', `/v1/policies/${encodeURIComponent(policyId)}`);
  }

  updatePolicy(policyId: string, changes: PolicyChanges): Promise<Policy> {
    return this.request('PATCH', `/v1/policies/${encodeURIComponent(policyId)}`, changes);
  }

  async deletePolicy(policyId: string): Promise<void> {
    await this.request<void>('DELETE', `/v1/policies/${encodeURIComponent(policyId)}`);
  }

  shareSnapshot(snapshotId: string, accountId: string): Promise<Snapshot> {
    return this.request('POST', `/v1/snapshots/${encodeURIComponent(snapshotId)}/shares`, { accountId });
  }

  unshareSnapshot(snapshotId: string, accountId: string): Promise<Snapshot> {
    return this.request(
      'DELETE',
      `/v1/snapshots/${encodeURIComponent(snapshotId)}/shares/${encodeURIComponent(accountId)}`,
    );
  }

  publishSnapshot(snapshotId: string): Promise<Snapshot> {
    return this.request('PUT', `/v1/snapshots/${encodeURIComponent(snapshotId)}/public`);
  }

  unpublishSnapshot(snapshotId: string): Promise<Snapshot> {
    return this.request('DELETE', `/v1/snapshots/${encodeURIComponent(snapshotId)}/public`);
  }

  registerInstance(input: {
    name: string;
    volumes?: { volumeId: string; device: string; bootIndex?: number }[];
    properties?: Record<string, string>;
    state?: InstanceState;
  }): Promise<Instance> {
    return this.request('POST', '/v1/instances', input);
  }

  listInstances(
    page: { limit?: number; nextToken?: string } = {},
  ): Promise<{ instances: Instance[]; nextToken?: string }> {
    const qs = listQuery(page);
    return this.request('GET', `/v1/instances${qs ? `?${qs}` : ''}`);
  }

  /** Every instance of the account in this region, following pages. */
  allInstances(): AsyncGenerator<Instance> {
    return everyPage(async (nextToken) => {
      const page = await this.listInstances({ nextToken });
      return { items: page.instances, nextToken: page.nextToken };
    });
  }

  getInstance(instanceId: string): Promise<Instance> {
    return this.request('GET', `/v1/instances/${encodeURIComponent(instanceId)}`);
  }

  updateInstance(
    instanceId: string,
    changes: { name?: string; state?: InstanceState; properties?: Record<string, string> },
  ): Promise<Instance> {
    return this.request('PATCH', `/v1/instances/${encodeURIComponent(instanceId)}`, changes);
  }

  async deleteInstance(instanceId: string): Promise<void> {
    await this.request<void>('DELETE', `/v1/instances/${encodeURIComponent(instanceId)}`);
  }

  attachVolume(
    instanceId: string,
    volumeId: string,
    attachment: { device: string; bootIndex?: number },
  ): Promise<Instance> {
    return this.request(
      'PUT',
      `/v1/instances/${encodeURIComponent(instanceId)}/volumes/${encodeURIComponent(volumeId)}`,
      attachment,
    );
  }

  detachVolume(instanceId: string, volumeId: string): Promise<Instance> {
    return this.request(
      'DELETE',
      `/v1/instances/${encodeURIComponent(instanceId)}/volumes/${encodeURIComponent(volumeId)}`,
    );
  }

  /** An instance snapshot: one snapshot per attached volume, all of one moment (pending until written). */
  createImage(input: {
    instanceId: string;
    name: string;
    description?: string;
    requireStopped?: boolean;
  }): Promise<Image> {
    return this.request('POST', '/v1/images', input);
  }

  listImages(
    filter: { scope?: 'own' | 'shared'; limit?: number; nextToken?: string } = {},
  ): Promise<{ images: Image[]; nextToken?: string }> {
    const qs = listQuery(filter);
    return this.request('GET', `/v1/images${qs ? `?${qs}` : ''}`);
  }

  /** Every image (own, or shared with the account), following pages. */
  allImages(scope?: 'own' | 'shared'): AsyncGenerator<Image> {
    return everyPage(async (nextToken) => {
      const page = await this.listImages({ scope, nextToken });
      return { items: page.images, nextToken: page.nextToken };
    });
  }

  getImage(imageId: string): Promise<Image> {
    return this.request('GET', `/v1/images/${encodeURIComponent(imageId)}`);
  }

  deleteImage(imageId: string): Promise<ImageDeletion> {
    return this.request('DELETE', `/v1/images/${encodeURIComponent(imageId)}`);
  }

  launchImage(imageId: string, input: { name: string }): Promise<Launch> {
    return this.request('POST', `/v1/images/${encodeURIComponent(imageId)}/launch`, input);
  }

  shareImage(imageId: string, accountId: string): Promise<Image> {
    return this.request('POST', `/v1/images/${encodeURIComponent(imageId)}/shares`, { accountId });
  }

  unshareImage(imageId: string, accountId: string): Promise<Image> {
    return this.request(
      'DELETE',
      `/v1/images/${encodeURIComponent(imageId)}/shares/${encodeURIComponent(accountId)}`,
    );
  }

  /** Starts a copy of an image into this client's region; workers copy its snapshots (poll {@link getImage}). */
  copyImage(input: {
    sourceRegion: string;
    sourceImageId: string;
    name?: string;
    description?: string;
  }): Promise<Image> {
    return this.request('POST', '/v1/images/copy', input);
  }

  exportImage(
    imageId: string,
    format?: DiskFormat,
  ): Promise<{
    imageId: string;
    exports: (Omit<ImageSnapshot, 'state' | 'progress' | 'stateReason'> & { exportId: string })[];
  }> {
    return this.request('POST', `/v1/images/${encodeURIComponent(imageId)}/export`, { format });
  }

  whoami(): Promise<{ account: Account; user: User; keyId: string }> {
    return this.request('GET', '/v1/account');
  }

  updateAccount(changes: { blockPublicSharing?: boolean; recycleBinDays?: number }): Promise<Account> {
    return this.request('PATCH', '/v1/account', changes);
  }

  usage(): Promise<AccountUsage> {
    return this.request('GET', '/v1/account/usage');
  }

  audit(
    page: { limit?: number; nextToken?: string } = {},
  ): Promise<{ events: AuditEntry[]; nextToken?: string }> {
    const qs = listQuery(page);
    return this.request('GET', `/v1/account/audit${qs ? `?${qs}` : ''}`);
  }

  createUser(input: { userName: string; role?: Role; permissions?: string[] }): Promise<User> {
    return this.request('POST', '/v1/account/users', input);
  }

  listUsers(): Promise<{ users: User[] }> {
    return this.request('GET', '/v1/account/users');
  }

  updateUser(userName: string, changes: { role?: Role; permissions?: string[] }): Promise<User> {
    return this.request('PATCH', `/v1/account/users/${encodeURIComponent(userName)}`, changes);
  }

  async deleteUser(userName: string): Promise<void> {
    await this.request<void>('DELETE', `/v1/account/users/${encodeURIComponent(userName)}`);
  }

  createKey(input: {
    userName?: string;
    expiresInSeconds?: number;
    description?: string;
  }): Promise<IssuedKey> {
    return this.request('POST', '/v1/account/keys', input);
  }

  listKeys(userName?: string): Promise<{ keys: ApiKeyInfo[] }> {
    const qs = listQuery({ userName });
    return this.request('GET', `/v1/account/keys${qs ? `?${qs}` : ''}`);
  }

  revokeKey(keyId: string): Promise<ApiKeyInfo> {
    return this.request('DELETE', `/v1/account/keys/${encodeURIComponent(keyId)}`);
  }

  createAccount(input: {
    name: string;
    ownerName?: string;
  }): Promise<{ account: Account; owner: User; key: IssuedKey }> {
    return this.request('POST', '/v1/admin/accounts', input);
  }

  listAccounts(
    page: { limit?: number; nextToken?: string } = {},
  ): Promise<{ accounts: Account[]; nextToken?: string }> {
    const qs = listQuery(page);
    return this.request('GET', `/v1/admin/accounts${qs ? `?${qs}` : ''}`);
  }

  setQuota(
    accountId: string,
    quota: Partial<QuotaLimits>,
  ): Promise<{ account: Account; limits: QuotaLimits }> {
    return this.request('PUT', `/v1/admin/accounts/${encodeURIComponent(accountId)}/quota`, quota);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.options.endpoint);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let response: Response | undefined;
    // A kept-alive connection the server closed at the moment it was reused fails before any answer:
    // a GET is safe to try again once on a fresh connection. A throttled GET is tried again after
    // the wait the API names; other requests are not repeated (a create may not be idempotent).
    for (let attempt = 0, throttled = 0; !response; attempt++) {
      try {
        response = await this.#fetch(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
        });
      } catch (cause) {
        const reason = (cause as { cause?: { code?: string } }).cause?.code ?? (cause as Error).message;
        if (attempt === 0 && method === 'GET' && (reason === 'ECONNRESET' || reason === 'UND_ERR_SOCKET'))
          continue;
        throw new ApiError(
          0,
          'client.unreachable',
          `Cannot reach ${url.origin} (${reason}). Is the local cloud running (npm start), or is --endpoint right?`,
        );
      }
      // 429 (the account's rate) and a 503 with Retry-After (the table throttling or unavailable,
      // `storage.throttled`/`storage.unavailable`) are both waited out.
      const waitable =
        response.status === 429 || (response.status === 503 && response.headers.has('retry-after'));
      if (waitable && method === 'GET' && throttled < THROTTLE_RETRIES) {
        const seconds = Number(response.headers.get('retry-after'));
        if (Number.isFinite(seconds) && seconds >= 0) {
          throttled++;
          await response.body?.cancel();
          response = undefined;
          await this.#sleep(Math.min(seconds * 1000, MAX_RETRY_AFTER_MS));
        }
      }
    }
    const text = await response.text();
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (!response.ok) {
      const err = (data ?? {}) as {
        error?: string;
        message?: string;
        requestId?: string;
        details?: Record<string, unknown>;
      };
      throw new ApiError(
        response.status,
        err.error ?? `http.${response.status}`,
        err.message ?? `${method} ${path} answered ${response.status} ${response.statusText}`,
        err.requestId ?? response.headers.get('x-request-id') ?? undefined,
        err.details,
      );
    }
    return data as T;
  }
}

/** The query string of a list call: plain parameters, and tag filters as `tag:KEY=VALUE`. */
function listQuery(
  params: Record<string, string | number | undefined>,
  tags: Record<string, string> = {},
): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params))
    if (value !== undefined && value !== '') query.set(key, String(value));
  for (const [key, value] of Object.entries(tags)) query.set(`tag:${key}`, value);
  return query.toString();
}

/** Yields the items of every page, following next tokens until there are none. */
async function* everyPage<T>(
  fetchPage: (nextToken?: string) => Promise<{ items: T[]; nextToken?: string }>,
): AsyncGenerator<T> {
  let nextToken: string | undefined;
  do {
    const page = await fetchPage(nextToken);
    yield* page.items;
    nextToken = page.nextToken;
  } while (nextToken);
}
