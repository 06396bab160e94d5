import { decodeManifest, type Manifest } from '../format/manifest.ts';
import { type Account, DEFAULT_QUOTA, type QuotaLimits } from '../identity/accounts.ts';
import { type Caller, type Permission, requireOwner, requirePermission } from '../identity/identity.ts';
import type { Compressor } from '../ports/codec.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import type { WorkQueue } from '../ports/queue.ts';
import type { Clock } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId } from '../shared/ids.ts';
import type { VolumeRepository } from '../volumes/volumes.ts';
import { type Rejection, retireSession } from './snapshot-verify.ts';
import type { Snapshot, SnapshotRepository } from './snapshots.ts';

/** What the snapshot service needs to know of accounts (the account service provides it). */
export interface AccountDirectory {
  /** An account by id or readable name; `account.notFound` otherwise. */
  resolveAccount(ref: string): Promise<Account>;
  /** The account's limits in this region. */
  limits(accountId: string): Promise<QuotaLimits>;
}

export interface SnapshotServiceOptions {
  snapshots: SnapshotRepository;
  /** Quotas, and the accounts snapshots are shared with. */
  accounts?: AccountDirectory;
  volumes: VolumeRepository;
  objects: ObjectStore;
  /** Decodes blocks when completion verifies an upload. */
  compressor: Compressor;
  clock: Clock;
  region: string;
  /** Where server-side work is announced (snapshots of image-backed volumes, verification parts). */
  queue?: WorkQueue;
  /** How long a pending snapshot may take before the reaper fails it. */
  uploadTimeoutMs?: number;
  /** Lifetime of presigned segment and manifest URLs. */
  urlTtlSeconds?: number;
  /**
   * How long server-side work may go without a worker starting or finishing a part before the
   * reaper dispatches it again (see {@link DEFAULT_LEASE_MS}).
   */
  leaseMs?: number;
  /**
   * Completion verifies an upload's new segments in the request when they hold at most this many
   * bytes (a 29 s API route), else in worker parts of {@link verifySegmentsPerPart} segments.
   */
  inlineVerifyBytes?: number;
  verifySegmentsPerPart?: number;
}

export const MAX_URLS_PER_REQUEST = 100;
/** The key id of callers the service makes for its own work (workers, policies). */
export const SYSTEM_KEY_ID = 'system';
export const DEFAULT_UPLOAD_TIMEOUT_MS = 6 * 3600 * 1000;
/**
 * The workers' lease. Every part a worker starts or checkpoints extends it, and so do long parts
 * every 16 segments they write: it measures the time since a worker last touched the work. The
 * reaper runs every minute at best (EventBridge's fastest rate), so 3 minutes is the shortest lease
 * that a live worker never lets lapse between two reaper runs with room to spare, and a dead one is
 * replaced within about 4 minutes: about twice a full 8 GiB copy part's normal time (110 s at the
 * local cloud's 74 MB/s, bench/results.md); a 16 MiB export, copy or import takes 2–3 s, and one
 * whose worker died completed 199–217 s after (README "Recovery").
 * Work the reaper sends again {@link DEFAULT_MAX_DISPATCHES} times without a part finished fails:
 * 5 × 3 minutes outlasts a worker invocation (15 minutes), so a slow part that is alive never fails.
 */
export const DEFAULT_LEASE_MS = 3 * 60 * 1000;
/** How many times the reaper sends lapsed work again without a part finished before failing it. */
export const DEFAULT_MAX_DISPATCHES = 5;
/** How long a queued snapshot waits for an agent unless its policy says otherwise. */
export const DEFAULT_AGENT_TIMEOUT_MS = 3600 * 1000;
/** New stored bytes completion verifies in the request (measured: docs/formats.md, "Completion"). */
export const DEFAULT_INLINE_VERIFY_BYTES = 256 * 1024 * 1024;
/** Segments per verification part: about 1 GiB, well inside one worker invocation. */
export const DEFAULT_VERIFY_SEGMENTS_PER_PART = 64;
const DEFAULT_URL_TTL_SECONDS = 15 * 60;

/**
 * What every snapshot use case shares (internal to lib/core/snapshots): the options with their
 * defaults, and the checks of who may read or change a snapshot. Holds no state of its own beyond
 * the options, so one instance serves every piece of {@link SnapshotService}.
 */
export class SnapshotAccess {
  readonly options: Required<SnapshotServiceOptions>;

  constructor(options: SnapshotServiceOptions) {
    this.options = {
      uploadTimeoutMs: DEFAULT_UPLOAD_TIMEOUT_MS,
      urlTtlSeconds: DEFAULT_URL_TTL_SECONDS,
      leaseMs: DEFAULT_LEASE_MS,
      inlineVerifyBytes: DEFAULT_INLINE_VERIFY_BYTES,
      verifySegmentsPerPart: DEFAULT_VERIFY_SEGMENTS_PER_PART,
      ...options,
      queue: options.queue ?? noQueue,
      accounts: options.accounts ?? noDirectory,
    };
  }

  /** Whether a work queue was configured (without one, server-side work cannot be announced). */
  get hasQueue(): boolean {
    return this.options.queue !== noQueue;
  }

  /** A snapshot the caller may read, else `snapshot.notFound`. */
  async visible(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = isId('snapshot', snapshotId) ? await this.options.snapshots.get(snapshotId) : undefined;
    if (!snapshot || snapshot.state === 'deleting' || !(await this.mayRead(caller, snapshot)))
      throw notFound(snapshotId);
    return snapshot;
  }

  /** `owners` remembers owner accounts across the snapshots of one listing. */
  async mayRead(
    caller: Caller,
    snapshot: Snapshot,
    owners = new Map<string, Promise<Account | undefined>>(),
  ): Promise<boolean> {
    if (snapshot.accountId === caller.accountId) return true;
    // In the recycle bin, a snapshot is its owner's alone until undeleted.
    if (snapshot.state === 'recycled') return false;
    if ((snapshot.sharedWith ?? []).includes(caller.accountId)) return true;
    if (!snapshot.public) return false;
    // The owner's block applies at once, also to what it published before.
    let owner = owners.get(snapshot.accountId);
    if (!owner) {
      owner = this.options.accounts.resolveAccount(snapshot.accountId).catch(() => undefined);
      owners.set(snapshot.accountId, owner);
    }
    const account = await owner;
    return account !== undefined && !account.blockPublicSharing;
  }

  /**
   * A snapshot the caller may change: it must hold `permission`, and the snapshot must be its
   * account's. One it can only read (shared, public) is a 403; one it cannot see is a 404.
   */
  async owned(caller: Caller, snapshotId: string, permission: Permission, verb: string): Promise<Snapshot> {
    requirePermission(caller, permission);
    const snapshot = await this.visible(caller, snapshotId);
    requireOwner(caller, snapshot, { kind: 'Snapshot', id: snapshotId, verb, details: { snapshotId } });
    return snapshot;
  }

  async pending(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.owned(caller, snapshotId, 'snapshot:create', 'write');
    requirePending(snapshot);
    return snapshot;
  }

  async completed(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.visible(caller, snapshotId);
    if (snapshot.state !== 'completed') {
      throw new VolsnapError(
        'snapshot.invalidState',
        snapshot.state === 'recycled'
          ? `Snapshot ${snapshotId} is in the recycle bin: \`volsnap snapshot undelete ${snapshotId}\` first.`
          : `Snapshot ${snapshotId} is ${snapshot.state}, not completed.`,
        { details: { snapshotId, state: snapshot.state } },
      );
    }
    return snapshot;
  }

  async manifest(snapshotId: string): Promise<Manifest> {
    const bytes = await this.options.objects.get(ObjectLayout.manifest(snapshotId));
    if (!bytes)
      throw new VolsnapError('internal', `The manifest of completed snapshot ${snapshotId} is missing.`);
    return decodeManifest(bytes);
  }

  /** The manifest of a parent that still keeps its blocks, else undefined. */
  async parentManifest(parentId: string): Promise<Manifest | undefined> {
    const parent = await this.options.snapshots.get(parentId);
    // A parent deleted meanwhile into the recycle bin keeps its manifest, and so its blocks.
    if (parent?.state !== 'completed' && parent?.state !== 'recycled') return undefined;
    return this.manifest(parentId);
  }

  /**
   * Fails a pending snapshot whose upload is not sound: `error` with the reason, its upload keys
   * retired; answers 400 `snapshot.manifestInvalid` (the one code for every such case).
   */
  async failUpload(snapshot: Snapshot, reason: Rejection): Promise<never> {
    const failed = await this.options.snapshots.transition(snapshot.snapshotId, ['pending'], 'error', {
      stateReason: reason,
      leaseUntil: undefined,
      verification: undefined,
    });
    if (failed) await retireSession(this.options.objects, this.options.snapshots, failed);
    throw new VolsnapError(
      'snapshot.manifestInvalid',
      `${reason} Snapshot ${snapshot.snapshotId} is now in error.`,
      {
        details: { snapshotId: snapshot.snapshotId },
      },
    );
  }
}

/** The service acting for an account's owner (its own workers). */
export function systemOf(accountId: string): Caller {
  return {
    accountId,
    userName: 'volsnap-worker',
    keyId: SYSTEM_KEY_ID,
    role: 'owner',
    permissions: [],
    operator: false,
  };
}

/** Without a directory: default limits, and no account to share with. */
const noDirectory: AccountDirectory = {
  resolveAccount: async (ref) => {
    throw new VolsnapError('account.notFound', `No account ${ref}.`);
  },
  limits: async () => DEFAULT_QUOTA,
};

/** What a caller sees of a snapshot: whom it is shared with only if it is the owner. */
export function viewFor(caller: Caller, snapshot: Snapshot): Snapshot {
  if (snapshot.accountId === caller.accountId) return snapshot;
  const { sharedWith: _hidden, ...rest } = snapshot;
  return rest;
}

const noQueue: WorkQueue = {
  send: async () => {
    throw new VolsnapError(
      'internal',
      'This deployment has no work queue: image-backed volumes cannot be snapshotted.',
    );
  },
};

export function notFound(snapshotId: string): VolsnapError {
  return new VolsnapError('snapshot.notFound', `No snapshot ${snapshotId} in this account and region.`, {
    details: { snapshotId },
  });
}

/** Refuses (`snapshot.invalidState`) a snapshot that is not pending: its blocks can no longer be written. */
export function requirePending(snapshot: Pick<Snapshot, 'snapshotId' | 'state'>): void {
  if (snapshot.state !== 'pending') {
    throw new VolsnapError(
      'snapshot.invalidState',
      `Snapshot ${snapshot.snapshotId} is ${snapshot.state}, not pending: its blocks can no longer be written.`,
      { details: { snapshotId: snapshot.snapshotId, state: snapshot.state } },
    );
  }
}
