import { createHash } from 'node:crypto';
import { BLOCK_SIZE } from '../format/blocks.ts';
import { decodeManifest, type Manifest, type ManifestEntry } from '../format/manifest.ts';
import { BlockExtents, type SegmentRange } from '../format/restore-plan.ts';
import { type Account, DEFAULT_QUOTA, type QuotaLimits, recycleBinDaysOf } from '../identity/accounts.ts';
import { type Caller, type Permission, requirePermission } from '../identity/identity.ts';
import type { Compressor } from '../ports/codec.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import type { WorkMessage, WorkQueue } from '../ports/queue.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import type { Page } from '../shared/pagination.ts';
import { isReservedTag, type Tags, validateTags, withoutReserved } from '../shared/tags.ts';
import { requirePrintable } from '../shared/text.ts';
import type { Volume, VolumeRepository } from '../volumes/volumes.ts';
import {
  checkInherited,
  MAX_MANIFEST_UPLOADS,
  maxSegmentUrls,
  type Rejection,
  retireKeys,
  retireSession,
  verifySegment,
} from './snapshot-verify.ts';
import {
  assertTransition,
  type Grantee,
  LIVE_MANIFEST_STATES,
  MAX_SHARES,
  type Snapshot,
  type SnapshotFilter,
  type SnapshotRepository,
  type SnapshotScope,
  type SnapshotStats,
} from './snapshots.ts';

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
   * How long server-side work may go without finishing a part before the reaper dispatches it again
   * (a worker invocation lasts at most 15 minutes on Lambda).
   */
  leaseMs?: number;
  /**
   * Completion verifies an upload's new segments in the request when they hold at most this many
   * bytes (a 29 s API route), else in worker parts of {@link verifySegmentsPerPart} segments.
   */
  inlineVerifyBytes?: number;
  verifySegmentsPerPart?: number;
}

/** What {@link SnapshotService.uploadUrls} issues. */
export interface UploadUrls {
  segments: SegmentUrl[];
  /** When asked for: the write-once key the manifest goes to, named again when completing. */
  manifestUploadId?: string;
  manifestUrl?: string;
  expiresInSeconds: number;
}

export interface CreateSnapshotInput {
  volumeId: string;
  /** For a volume on a host: queue it for `volsnap agent` there (see {@link SnapshotService.createScheduled}). */
  queued?: boolean;
  name?: string;
  description?: string;
  tags?: Tags;
  clientToken?: string;
  /** For a snapshot of an instance's volume: its image, its group, and the group's one point in time. */
  group?: Pick<Snapshot, 'imageId' | 'groupId' | 'takenAt'>;
}

/** A presigned URL for one segment. */
export interface SegmentUrl {
  segmentId: string;
  url: string;
}

/** A presigned GET URL bound to bytes [start, end) of one segment. */
export interface SegmentRangeUrl extends SegmentRange {
  url: string;
}

/** Changed blocks between two snapshots, as runs of block indices. */
export interface SnapshotDiff {
  blockSize: number;
  volumeSize: number;
  changedBlocks: number;
  ranges: { start: number; count: number }[];
}

export const MAX_URLS_PER_REQUEST = 100;
/** The key id of callers the service makes for its own work (workers, policies). */
export const SYSTEM_KEY_ID = 'system';
export const DEFAULT_UPLOAD_TIMEOUT_MS = 6 * 3600 * 1000;
export const DEFAULT_LEASE_MS = 20 * 60 * 1000;
/** How long a queued snapshot waits for an agent unless its policy says otherwise. */
export const DEFAULT_AGENT_TIMEOUT_MS = 3600 * 1000;
/** New stored bytes completion verifies in the request (measured: docs/formats.md, "Completion"). */
export const DEFAULT_INLINE_VERIFY_BYTES = 256 * 1024 * 1024;
/** Segments per verification part: about 1 GiB, well inside one worker invocation. */
export const DEFAULT_VERIFY_SEGMENTS_PER_PART = 64;
const DAY_MS = 24 * 3600 * 1000;
const DEFAULT_URL_TTL_SECONDS = 15 * 60;

/**
 * Snapshot use cases. The CLI (or a worker) writes blocks into segments through presigned URLs;
 * this service names the segments, hands out the URLs, and completes a snapshot only when its
 * manifest is sound and every segment it names is stored and the account's: uploaded in this
 * snapshot's session, or already referenced by its parent.
 */
export class SnapshotService {
  readonly #o: Required<SnapshotServiceOptions>;

  constructor(options: SnapshotServiceOptions) {
    this.#o = {
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

  /**
   * Starts a snapshot of a volume: `pending`, written against its parent (the volume's newest
   * completed snapshot, else the snapshot the volume was made from). Idempotent with a client token:
   * the same token and parameters return the same snapshot; other parameters are a 409.
   */
  async create(caller: Caller, input: CreateSnapshotInput): Promise<Snapshot> {
    requirePermission(caller, 'snapshot:create');
    const volume = isId('volume', input.volumeId)
      ? await this.#o.volumes.get(caller.accountId, input.volumeId)
      : undefined;
    if (!volume)
      throw new VolsnapError('volume.notFound', `No volume ${input.volumeId} in this account and region.`, {
        details: { volumeId: input.volumeId },
      });
    if (input.queued) return this.createScheduled(caller, volume, input, DEFAULT_AGENT_TIMEOUT_MS);
    return this.#create(caller, volume, input);
  }

  /**
   * Starts a copy: a `pending` snapshot of the caller's copy-target volume, written against that
   * volume's newest completed snapshot (the previous copy), by workers, one queue message per part.
   * Idempotent with a client token, like {@link create}. The caller's right to copy is checked by
   * the copier, which knows the source.
   */
  createCopy(
    caller: Caller,
    volume: Volume,
    input: Omit<CreateSnapshotInput, 'volumeId'>,
    copy: { from: NonNullable<Snapshot['copiedFrom']>; parts: number },
  ): Promise<Snapshot> {
    return this.#create(
      caller,
      volume,
      { ...input, volumeId: volume.volumeId },
      { fields: { copiedFrom: copy.from }, parts: copy.parts, kind: 'snapshot.copyPart' },
    );
  }

  /** Starts an import: like {@link createCopy}, with import parts for the workers. */
  createImport(
    caller: Caller,
    volume: Volume,
    input: Omit<CreateSnapshotInput, 'volumeId'>,
    from: { importedFrom: NonNullable<Snapshot['importedFrom']>; parts: number },
  ): Promise<Snapshot> {
    return this.#create(
      caller,
      volume,
      { ...input, volumeId: volume.volumeId },
      { fields: { importedFrom: from.importedFrom }, parts: from.parts, kind: 'snapshot.importPart' },
    );
  }

  /**
   * Starts a snapshot that waits for whoever reads the volume's bytes: for an image-backed volume a
   * worker (as {@link create}); for a volume on a host, a `queued` snapshot that `volsnap agent` on
   * that host takes with {@link start} before `agentTimeoutMs` passes (the reaper fails it after).
   */
  async createScheduled(
    caller: Caller,
    volume: Volume,
    input: Omit<CreateSnapshotInput, 'volumeId'>,
    agentTimeoutMs: number,
  ): Promise<Snapshot> {
    if (volume.imageUri) return this.#create(caller, volume, { ...input, volumeId: volume.volumeId });
    return this.#create(caller, volume, { ...input, volumeId: volume.volumeId }, undefined, agentTimeoutMs);
  }

  /**
   * An agent takes a queued snapshot: it becomes `pending` with a fresh upload deadline, and its
   * blocks are written like any other. Taking one already taken is a 409 (another agent won).
   */
  async start(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.#owned(caller, snapshotId, 'snapshot:create', 'write');
    const started =
      snapshot.state === 'queued'
        ? await this.#o.snapshots.transition(snapshotId, ['queued'], 'pending', {
            deadline: isoTime(this.#o.clock.now() + this.#o.uploadTimeoutMs),
          })
        : undefined;
    if (!started) {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is ${snapshot.state === 'queued' ? 'no longer queued' : snapshot.state}: only a queued snapshot can be started (another agent may have taken it).`,
        { details: { snapshotId, state: snapshot.state } },
      );
    }
    return started;
  }

  /** Whoever writes a queued or pending snapshot gives up on it: `error`, with its reason. */
  async fail(caller: Caller, snapshotId: string, reason: string): Promise<Snapshot> {
    const snapshot = await this.#owned(caller, snapshotId, 'snapshot:create', 'write');
    const text = reason.trim().slice(0, 1000) || 'No reason given.';
    const failed = await this.#o.snapshots.transition(snapshotId, ['queued', 'pending'], 'error', {
      stateReason: `The agent reported: ${text}`,
    });
    if (failed) await retireSession(this.#o.objects, this.#o.snapshots, failed);
    if (!failed) {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is ${snapshot.state}; only a queued or pending snapshot can be failed.`,
        { details: { snapshotId, state: snapshot.state } },
      );
    }
    return failed;
  }

  async #create(
    caller: Caller,
    volume: Volume,
    input: CreateSnapshotInput,
    serverSide?: {
      fields: Pick<Snapshot, 'copiedFrom' | 'importedFrom'>;
      parts: number;
      kind: 'snapshot.copyPart' | 'snapshot.importPart';
    },
    /** Queued for an agent, which must take it within this many ms. */
    queuedForMs?: number,
  ): Promise<Snapshot> {
    // `volsnap:` tags are the service's own (a policy marks its snapshots): only its workers set them.
    const tags =
      caller.keyId === SYSTEM_KEY_ID
        ? { ...validateTags(withoutReserved(input.tags ?? {})), ...(input.tags ?? {}) }
        : validateTags(input.tags ?? {});
    const name = input.name ?? '';
    const description = input.description ?? '';
    requirePrintable('The snapshot name', name);
    requirePrintable('The snapshot description', description);
    if (name.length > 255 || description.length > 1024) {
      throw new VolsnapError(
        'request.invalid',
        'A snapshot name is at most 255 characters and a description at most 1024.',
      );
    }
    if (input.clientToken !== undefined && !/^[\x21-\x7e]{1,64}$/.test(input.clientToken)) {
      throw new VolsnapError(
        'request.invalid',
        'A client token is 1–64 printable ASCII characters without spaces.',
      );
    }
    // A volume made from another account's snapshot starts with a full snapshot: segments are never
    // shared across accounts, so its data is copied into the caller's own segments once.
    const source = volume.sourceSnapshotId ? await this.#o.snapshots.get(volume.sourceSnapshotId) : undefined;
    const parent =
      (await this.#o.snapshots.latestCompleted(volume.volumeId))?.snapshotId ??
      (source?.accountId === caller.accountId && source.state === 'completed'
        ? source.snapshotId
        : undefined);
    const now = this.#o.clock.now();
    const snapshot: Snapshot = {
      snapshotId: newId('snapshot'),
      accountId: caller.accountId,
      volumeId: volume.volumeId,
      volumeSize: volume.sizeBytes,
      blockSize: BLOCK_SIZE,
      name,
      description,
      tags,
      state: queuedForMs === undefined ? 'pending' : 'queued',
      progress: 0,
      region: this.#o.region,
      createdAt: isoTime(now),
      deadline: isoTime(now + (queuedForMs ?? this.#o.uploadTimeoutMs)),
      // Work for workers carries a lease: the reaper dispatches it again if no part finishes in time.
      ...(serverSide || volume.imageUri ? { leaseUntil: isoTime(now + this.#o.leaseMs), leaseParts: 0 } : {}),
      ...(parent ? { parentSnapshotId: parent } : {}),
      ...(serverSide ? { ...serverSide.fields, parts: serverSide.parts } : {}),
      ...(input.group ? { ...input.group } : {}),
    };
    const requestHash = createHash('sha256')
      .update(
        JSON.stringify([serverSide ? sourceOf(serverSide.fields) : volume.volumeId, name, description, tags]),
      )
      .digest('hex');
    const known = await this.#o.snapshots.create(
      snapshot,
      input.clientToken ? { token: input.clientToken, requestHash } : undefined,
      await this.#o.accounts.limits(caller.accountId),
    );
    if (!known) {
      // A copy and an image-backed volume are written by workers; a volume on a host by its CLI or agent.
      const work: WorkMessage[] = serverSide
        ? Array.from({ length: serverSide.parts }, (_, part) => ({
            kind: serverSide.kind,
            snapshotId: snapshot.snapshotId,
            part,
          }))
        : volume.imageUri
          ? [{ kind: 'snapshot.fromImage', snapshotId: snapshot.snapshotId }]
          : [];
      if (work.length > 0) {
        try {
          for (const message of work) await this.#o.queue.send(message);
        } catch (error) {
          await this.#o.snapshots.transition(snapshot.snapshotId, ['pending'], 'error', {
            stateReason: 'The snapshot could not be queued for a worker.',
          });
          throw error;
        }
      }
      return snapshot;
    }
    if (known.requestHash !== requestHash) {
      throw new VolsnapError(
        'idempotency.conflict',
        `Client token '${input.clientToken}' was used for a different request (snapshot ${known.snapshotId}). Use a new token.`,
        {
          details: { snapshotId: known.snapshotId },
        },
      );
    }
    const earlier = await this.#o.snapshots.get(known.snapshotId);
    if (!earlier)
      throw new VolsnapError(
        'snapshot.notFound',
        `Snapshot ${known.snapshotId}, created with this client token, no longer exists.`,
      );
    return earlier;
  }

  /**
   * A snapshot the caller may read: its own, one shared with its account, or a public one. Any other
   * answers `snapshot.notFound`, exactly as a missing one does. Whom it is shared with is shown to its
   * owner only.
   */
  async get(caller: Caller, snapshotId: string): Promise<Snapshot> {
    return viewFor(caller, await this.#visible(caller, snapshotId));
  }

  /** The caller's own snapshots, those shared with its account, or public ones (of any account). */
  async list(
    caller: Caller,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
    scope: SnapshotScope = 'own',
  ): Promise<Page<Snapshot>> {
    // Filtering by the service's own tags (`volsnap:policy=…`) is fine; setting them is not.
    if (filter.tags) validateTags(withoutReserved(filter.tags));
    if (scope === 'own') {
      // The recycle bin is listed on its own (`state: recycled`), as EC2 lists it apart.
      const own = await this.#o.snapshots.list(caller.accountId, filter, page);
      return filter.state ? own : { ...own, items: own.items.filter((s) => s.state !== 'recycled') };
    }
    const listed = await this.#o.snapshots.listShared(
      scope === 'public' ? 'public' : { accountId: caller.accountId },
      filter,
      page,
    );
    // The same rule as reading one: a public snapshot of an account that blocks public sharing is not.
    const owners = new Map<string, Promise<Account | undefined>>();
    const readable = await Promise.all(listed.items.map((s) => this.#mayRead(caller, s, owners)));
    const items = listed.items.filter((_, i) => readable[i]).map((s) => viewFor(caller, s));
    return { ...listed, items };
  }

  async update(
    caller: Caller,
    snapshotId: string,
    changes: { name?: string; description?: string; tags?: Tags },
  ): Promise<Snapshot> {
    const current = await this.#owned(caller, snapshotId, 'snapshot:update', 'change');
    if (changes.tags) {
      validateTags(changes.tags);
      // The service's own tags (a policy's mark) stay whatever the user sets.
      const reserved = Object.entries(current.tags).filter(([key]) => isReservedTag(key));
      changes = { ...changes, tags: { ...changes.tags, ...Object.fromEntries(reserved) } };
    }
    if (changes.name !== undefined) requirePrintable('The snapshot name', changes.name);
    if (changes.description !== undefined) requirePrintable('The snapshot description', changes.description);
    if ((changes.name?.length ?? 0) > 255 || (changes.description?.length ?? 0) > 1024) {
      throw new VolsnapError(
        'request.invalid',
        'A snapshot name is at most 255 characters and a description at most 1024.',
      );
    }
    const updated = await this.#o.snapshots.updateMetadata(snapshotId, changes);
    if (!updated) throw notFound(snapshotId);
    return updated;
  }

  /**
   * Deletes a snapshot. A completed one goes to the recycle bin for the account's retention (returned,
   * `recycled`, with when it will be purged): unreadable by anyone, recoverable whole with
   * {@link undelete}. Otherwise (retention 0, or not completed) its record and manifest go at once
   * and undefined is returned. Its segments stay while other snapshots use them (deleting an older
   * snapshot never harms a newer one); garbage collection reclaims the rest.
   */
  async delete(caller: Caller, snapshotId: string): Promise<Snapshot | undefined> {
    return (await this.deleteReporting(caller, snapshotId)).recycled;
  }

  /** {@link delete}, also saying who could read the snapshot and no longer can (the API's answer). */
  async deleteReporting(caller: Caller, snapshotId: string): Promise<SnapshotDeletion> {
    const snapshot = await this.#owned(caller, snapshotId, 'snapshot:delete', 'delete');
    if (snapshot.state === 'recycled') {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is already in the recycle bin until ${snapshot.purgeAt}; \`volsnap snapshot undelete ${snapshotId}\` recovers it.`,
        { details: { snapshotId, state: snapshot.state, purgeAt: snapshot.purgeAt } },
      );
    }
    const days =
      snapshot.state === 'completed'
        ? recycleBinDaysOf(await this.#o.accounts.resolveAccount(caller.accountId).catch(() => undefined))
        : 0;
    if (days > 0) {
      const now = this.#o.clock.now();
      const recycled = await this.#o.snapshots.transition(snapshotId, ['completed'], 'recycled', {
        deletedAt: isoTime(now),
        purgeAt: isoTime(now + days * DAY_MS),
      });
      if (!recycled)
        throw new VolsnapError(
          'snapshot.invalidState',
          `Snapshot ${snapshotId} changed state meanwhile; retry.`,
        );
      return { recycled, ...accessLost(recycled) };
    }
    return accessLost(await this.#destroy(snapshot));
  }

  /** Takes a snapshot out of the recycle bin: `completed` again, as it was, shares included. */
  async undelete(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.#owned(caller, snapshotId, 'snapshot:delete', 'undelete');
    if (snapshot.state !== 'recycled') {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is ${snapshot.state}, not in the recycle bin: there is nothing to undelete.`,
        { details: { snapshotId, state: snapshot.state } },
      );
    }
    const restored = await this.#o.snapshots.transition(snapshotId, ['recycled'], 'completed', {
      deletedAt: undefined,
      purgeAt: undefined,
    });
    if (!restored)
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} changed state meanwhile; retry.`,
      );
    return restored;
  }

  /**
   * Deletes a snapshot for good, whatever its state (the reaper and expiry: a purged recycle-bin
   * entry, a failed snapshot). Idempotent: one already gone is fine.
   */
  async purge(snapshot: Snapshot): Promise<void> {
    if (snapshot.state === 'deleting') {
      // A deletion interrupted half-way: finish it.
      await this.#o.objects.delete(ObjectLayout.manifest(snapshot.snapshotId));
      await this.#o.objects.delete(ObjectLayout.manifestUpload(snapshot.snapshotId));
      await this.#o.snapshots.remove(snapshot).catch(() => undefined);
      return;
    }
    await this.#destroy(snapshot).catch((error) => {
      if (!(error instanceof VolsnapError && error.code === 'snapshot.invalidState')) throw error;
    });
  }

  /** Deletes a snapshot's record and manifest for good; returns the record as it was last. */
  async #destroy(snapshot: Snapshot): Promise<Snapshot> {
    assertTransition(snapshot, 'deleting');
    const deleting = await this.#o.snapshots.transition(snapshot.snapshotId, [snapshot.state], 'deleting', {
      deletedAt: isoTime(this.#o.clock.now()),
    });
    if (!deleting)
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshot.snapshotId} changed state meanwhile; retry.`,
      );
    // Deleted while being written: its upload URLs die with it (before its session records go).
    if (snapshot.state === 'pending' || snapshot.state === 'queued')
      await retireSession(this.#o.objects, this.#o.snapshots, snapshot);
    await this.#o.objects.delete(ObjectLayout.manifest(snapshot.snapshotId));
    await this.#o.objects.delete(ObjectLayout.manifestUpload(snapshot.snapshotId));
    await this.#o.snapshots.remove(deleting);
    return deleting;
  }

  /**
   * Work reading a completed snapshot (a copy, an export) holds it until `until` or its release, so
   * retention leaves it alone meanwhile. Holding one that is not completed is a 409.
   */
  async hold(snapshotId: string, holder: string, until: string): Promise<void> {
    if (!(await this.#o.snapshots.hold(snapshotId, holder, until))) {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is no longer completed; it cannot be read.`,
        { details: { snapshotId } },
      );
    }
  }

  /** Releases a hold (idempotent). */
  release(snapshotId: string, holder: string): Promise<void> {
    return this.#o.snapshots.release(snapshotId, holder);
  }

  /**
   * New segment ids with write-once presigned PUT URLs for a pending snapshot and, with `manifest`,
   * a fresh write-once key and URL for its manifest (one per upload attempt: a rerun uploads to a
   * new one and completes naming it). A snapshot is issued at most {@link maxSegmentUrls} segment
   * URLs and {@link MAX_MANIFEST_UPLOADS} manifest URLs in all; past that, 409 `snapshot.uploadLimit`.
   * Every URL stops working once the snapshot leaves `pending` (see retireSession).
   */
  async uploadUrls(
    caller: Caller,
    snapshotId: string,
    count: number,
    options: { manifest?: boolean } = {},
  ): Promise<UploadUrls> {
    const snapshot = await this.#pending(caller, snapshotId);
    if (!Number.isInteger(count) || count < 0 || count > MAX_URLS_PER_REQUEST) {
      throw new VolsnapError(
        'request.invalid',
        `Ask for 0 to ${MAX_URLS_PER_REQUEST} segment URLs at a time; ${count} were asked for.`,
      );
    }
    const ids = Array.from({ length: count }, () => newId('segment'));
    const manifestUploadId = options.manifest ? newId('manifestUpload') : undefined;
    const limits = { segments: maxSegmentUrls(snapshot.volumeSize), manifests: MAX_MANIFEST_UPLOADS };
    const issued = await this.#o.snapshots.issueSessionUploads(
      snapshot.snapshotId,
      { segmentIds: ids, manifestUploadIds: manifestUploadId ? [manifestUploadId] : [] },
      limits,
    );
    if (!issued) {
      throw new VolsnapError(
        'snapshot.uploadLimit',
        `Snapshot ${snapshotId} was issued its ${limits.segments} segment URLs and ${limits.manifests} manifest URLs, the most a ${snapshot.volumeSize}-byte volume can need. Complete it with what was uploaded, or delete it and take a new snapshot.`,
        { details: { snapshotId, maxSegmentUrls: limits.segments, maxManifestUrls: limits.manifests } },
      );
    }
    // Left pending meanwhile? Then its retirement may have missed these keys: retire them here.
    const now = await this.#o.snapshots.get(snapshotId);
    if (now?.state !== 'pending') {
      await retireKeys(this.#o.objects, [
        ...ids.map((id) => ObjectLayout.segment(snapshot.accountId, id)),
        ...(manifestUploadId ? [ObjectLayout.manifestStaging(snapshotId, manifestUploadId)] : []),
      ]);
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is ${now?.state ?? 'gone'}, not pending: its blocks can no longer be written.`,
        { details: { snapshotId, state: now?.state } },
      );
    }
    const ttl = this.#o.urlTtlSeconds;
    const writeOnce = { ifNoneMatch: true };
    const segments = await Promise.all(
      ids.map(async (segmentId) => ({
        segmentId,
        url: await this.#o.objects.presignPut(
          ObjectLayout.segment(snapshot.accountId, segmentId),
          ttl,
          writeOnce,
        ),
      })),
    );
    return {
      segments,
      ...(manifestUploadId
        ? {
            manifestUploadId,
            manifestUrl: await this.#o.objects.presignPut(
              ObjectLayout.manifestStaging(snapshotId, manifestUploadId),
              ttl,
              writeOnce,
            ),
          }
        : {}),
      expiresInSeconds: ttl,
    };
  }

  /** A completed snapshot the caller may read, as the source of a new volume. */
  async sourceForVolume(
    caller: Caller,
    snapshotId: string,
  ): Promise<{ snapshotId: string; volumeSize: number }> {
    const snapshot = await this.#completed(caller, snapshotId);
    return { snapshotId: snapshot.snapshotId, volumeSize: snapshot.volumeSize };
  }

  /** A presigned GET URL of a completed snapshot's manifest (for writing a child, or restoring). */
  async manifestUrl(caller: Caller, snapshotId: string): Promise<{ url: string; expiresInSeconds: number }> {
    const snapshot = await this.#completed(caller, snapshotId);
    return {
      url: await this.#o.objects.presignGet(
        ObjectLayout.manifest(snapshot.snapshotId),
        this.#o.urlTtlSeconds,
      ),
      expiresInSeconds: this.#o.urlTtlSeconds,
    };
  }

  /**
   * Presigned GET URLs of a completed snapshot's segments (for restoring it), one per byte range
   * asked, each bound to its range (the store refuses any other range through it). The owner may
   * read any range of its own segments (a restore reads through small gaps of replaced blocks).
   * Anyone else (a grantee, the public, an image's grantee) gets only ranges that are exactly runs
   * of this snapshot's blocks: a segment it reuses also holds blocks of other snapshots, and an
   * index with the SHA-256 of each of them, none of which was shared. Anything else is refused
   * (`snapshot.rangeNotShared`), and no URL is issued. At most {@link MAX_URLS_PER_REQUEST} ranges.
   */
  async segmentUrls(
    caller: Caller,
    snapshotId: string,
    ranges: readonly SegmentRange[],
  ): Promise<{ ranges: SegmentRangeUrl[]; expiresInSeconds: number }> {
    const snapshot = await this.#completed(caller, snapshotId);
    const malformed = ranges.find(
      (r) =>
        !isId('segment', r.segmentId) ||
        !Number.isSafeInteger(r.start) ||
        !Number.isSafeInteger(r.end) ||
        r.start < 0 ||
        r.end <= r.start,
    );
    if (ranges.length > MAX_URLS_PER_REQUEST || malformed) {
      throw new VolsnapError(
        'request.invalid',
        `Ask for up to ${MAX_URLS_PER_REQUEST} byte ranges at a time, each {segmentId: "seg-…", start, end} with 0 ≤ start < end (end exclusive).`,
        malformed ? { details: { range: malformed } } : undefined,
      );
    }
    if (snapshot.accountId !== caller.accountId) {
      const extents = new BlockExtents(
        await this.#manifest(snapshot.snapshotId),
        new Set(ranges.map((r) => r.segmentId)),
      );
      const refused = ranges.find((r) => !extents.covers(r));
      if (refused) {
        throw new VolsnapError(
          'snapshot.rangeNotShared',
          `Bytes ${refused.start}-${refused.end} of segment ${refused.segmentId} are not a run of snapshot ${snapshotId}'s blocks: ask only for ranges its manifest's entries cover exactly ([offset, offset + storedLength), neighbours merged).`,
          { details: { snapshotId, range: refused } },
        );
      }
    }
    const ttl = this.#o.urlTtlSeconds;
    const urls = await Promise.all(
      ranges.map(async ({ segmentId, start, end }) => ({
        segmentId,
        start,
        end,
        url: await this.#o.objects.presignGet(ObjectLayout.segment(snapshot.accountId, segmentId), ttl, {
          start,
          end,
        }),
      })),
    );
    return { ranges: urls, expiresInSeconds: ttl };
  }

  /**
   * Completes a pending snapshot from the manifest uploaded to `manifestUploadId` (a key issued by
   * {@link uploadUrls}; the service's own workers stage theirs without one). One rule:
   * - the manifest or a segment it names in this upload is not stored yet (or shorter than it
   *   says): 409, the snapshot stays `pending`; upload it and complete again;
   * - anything else wrong (a manifest that does not decode, does not describe this volume, names
   *   segments that are neither this upload's nor its parent's, blocks that are not the parent's
   *   at the place it names, or blocks whose segment index, encoding or SHA-256 disagree with it):
   *   400 `snapshot.manifestInvalid`, the snapshot goes to `error` with the reason, naming the
   *   block and segment; it never becomes a parent.
   * Every new block is read, decoded and hashed before `completed` (not for the service's own
   * workers, which hashed what they wrote). Up to `inlineVerifyBytes` of new segments that happens
   * in the request; beyond, the snapshot stays `pending` while workers verify it in parts and the
   * last one completes it (returned pending: the route answers 202). Idempotent: completing a
   * completed snapshot, or one being verified, returns it.
   */
  async complete(
    caller: Caller,
    snapshotId: string,
    options: { manifestUploadId?: string } = {},
  ): Promise<Snapshot> {
    const current = await this.#owned(caller, snapshotId, 'snapshot:create', 'write');
    if (current.state === 'completed') return current;
    const trusted = caller.keyId === SYSTEM_KEY_ID;
    // Verification by workers under way (or server-side work that completes by itself).
    if (current.state === 'pending' && current.leaseUntil && !trusted) return current;
    const snapshot = await this.#pending(caller, snapshotId);
    const { manifestUploadId } = options;
    if (manifestUploadId !== undefined) {
      if (
        !isId('manifestUpload', manifestUploadId) ||
        !(await this.#o.snapshots.sessionManifestUploads(snapshotId)).has(manifestUploadId)
      ) {
        throw new VolsnapError(
          'request.invalid',
          `No manifest upload ${manifestUploadId} was issued for snapshot ${snapshotId}: ask \`upload-urls\` with \`manifest: true\` for one.`,
          { details: { snapshotId, manifestUploadId } },
        );
      }
    }
    const staged = await this.#loadStaged(snapshot, manifestUploadId, true);
    if (typeof staged === 'string') return this.#fail(snapshot, staged);
    const { manifest, session, fresh, parent } = staged;
    const missing = await this.#missingSegments(snapshot.accountId, fresh);
    if (missing.short.length > 0) {
      throw new VolsnapError(
        'snapshot.segmentsMissing',
        `${missing.short.length} segment(s) of the manifest are not stored (or not whole): ${missing.short.slice(0, 5).join(', ')}${missing.short.length > 5 ? ', …' : ''}. Upload them, then complete again.`,
        { details: { segmentIds: missing.short } },
      );
    }
    if (missing.long[0])
      return this.#fail(
        snapshot,
        `Segment ${missing.long[0]} is stored larger than the ${manifest.segments.get(missing.long[0])} bytes the manifest declares.`,
      );
    const inheritedWrong = parent && checkInherited(manifest, parent, session);
    if (inheritedWrong) return this.#fail(snapshot, inheritedWrong);
    if (trusted) return this.#finish(caller, snapshot, manifestUploadId, manifest, session);
    // One completion verifies at a time: the one that claims it (another gets the pending snapshot).
    const claimed = await this.#claimVerification(snapshot, manifestUploadId, fresh.length);
    if (!claimed) return this.#visible(caller, snapshotId);
    const bytes = fresh.reduce((sum, [, size]) => sum + size, 0);
    if (bytes > this.#o.inlineVerifyBytes && this.#o.queue !== noQueue) {
      // A message lost here is sent again by the reaper when the lease lapses.
      for (let part = 0; part < (claimed.parts ?? 1); part++)
        await this.#o.queue.send({ kind: 'snapshot.verifyPart', snapshotId, part });
      return claimed;
    }
    try {
      const rejected = await this.#verifySegments(snapshot, manifest, fresh);
      if (rejected) return await this.#fail(snapshot, rejected);
      return await this.#finish(caller, snapshot, manifestUploadId, manifest, session);
    } catch (error) {
      // Storage failed us, not the upload: give the claim back so that completing again works
      // (a no-op once the snapshot left pending).
      await this.#o.snapshots.transition(snapshotId, ['pending'], 'pending', {
        leaseUntil: undefined,
        verification: undefined,
        parts: undefined,
      });
      throw error;
    }
  }

  /**
   * Verifies part `part` of a snapshot handed to workers by {@link complete} (a queue message);
   * the worker finishing the last part completes it. A failure puts the snapshot in `error`.
   * Idempotent: a part done twice counts once; a snapshot no longer pending is skipped. Memory:
   * the staged manifest and one segment run (16 MiB).
   */
  async verifyPart(snapshotId: string, part: number): Promise<'part' | 'completed' | 'error' | 'skipped'> {
    const snapshot = await this.#o.snapshots.get(snapshotId);
    const verification = snapshot?.verification;
    if (snapshot?.state !== 'pending' || !verification) return 'skipped';
    const parts = snapshot.parts ?? 1;
    if (!Number.isInteger(part) || part < 0 || part >= parts) return 'skipped';
    // The staged manifest is write-once and was checked against the parent by complete().
    const staged = await this.#loadStaged(snapshot, verification.manifestUploadId, false);
    if (typeof staged === 'string') {
      await this.#fail(snapshot, staged).catch(ignoreInvalid);
      return 'error';
    }
    const { manifest, session, fresh } = staged;
    if (!snapshot.partsDone?.includes(part)) {
      const mine = fresh.slice(
        part * verification.segmentsPerPart,
        (part + 1) * verification.segmentsPerPart,
      );
      const rejected = await this.#verifySegments(snapshot, manifest, mine);
      if (rejected) {
        await this.#fail(snapshot, `${rejected} (found by verification part ${part + 1} of ${parts})`).catch(
          ignoreInvalid,
        );
        return 'error';
      }
    }
    const done = await this.#o.snapshots.completePart(snapshotId, part);
    if (done === undefined) return 'skipped';
    if (done < parts) {
      await this.#o.snapshots.transition(snapshotId, ['pending'], 'pending', {
        progress: Math.floor((95 * done) / parts),
      });
      return 'part';
    }
    try {
      await this.#finish(
        systemOf(snapshot.accountId),
        snapshot,
        verification.manifestUploadId,
        manifest,
        session,
      );
    } catch (error) {
      // The parent went meanwhile: #finish failed the snapshot with the reason.
      ignoreInvalid(error);
      return 'error';
    }
    return 'completed';
  }

  /**
   * The staged manifest, decoded and checked against the snapshot: its volume and, `againstParent`,
   * segments that are this session's or the parent's (whose manifest is returned). A string is why
   * it is invalid; not stored yet is a 409.
   */
  async #loadStaged(
    snapshot: Snapshot,
    manifestUploadId: string | undefined,
    againstParent: boolean,
  ): Promise<
    { manifest: Manifest; session: Set<string>; fresh: [string, number][]; parent?: Manifest } | Rejection
  > {
    const key = manifestUploadId
      ? ObjectLayout.manifestStaging(snapshot.snapshotId, manifestUploadId)
      : ObjectLayout.manifestUpload(snapshot.snapshotId);
    const uploaded = await this.#o.objects.get(key);
    if (!uploaded || uploaded.length === 0) {
      throw new VolsnapError(
        'snapshot.manifestMissing',
        `Snapshot ${snapshot.snapshotId} has no uploaded manifest${manifestUploadId ? ` at ${manifestUploadId}` : ''}: PUT it to the manifest URL, then complete again.`,
      );
    }
    let manifest: Manifest;
    try {
      manifest = decodeManifest(uploaded);
    } catch (error) {
      // Pure decoding: whatever it throws, the bytes are not a sound manifest.
      return `The manifest is not valid: ${(error as Error).message}`;
    }
    if (manifest.volumeSize !== snapshot.volumeSize)
      return `The manifest describes a volume of ${manifest.volumeSize} bytes; this snapshot's volume has ${snapshot.volumeSize}.`;
    const session = await this.#o.snapshots.sessionSegments(snapshot.snapshotId);
    const fresh = [...manifest.segments].filter(([id]) => session.has(id));
    if (!againstParent) return { manifest, session, fresh };
    const parent = snapshot.parentSnapshotId
      ? await this.#parentManifest(snapshot.parentSnapshotId)
      : undefined;
    const foreign = [...manifest.segments.keys()].filter(
      (id) => !session.has(id) && !parent?.segments.has(id),
    );
    if (foreign.length > 0)
      return `The manifest names ${foreign.length} segment(s) that neither this snapshot's upload nor its parent holds: ${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''}.`;
    return { manifest, session, fresh, ...(parent ? { parent } : {}) };
  }

  /** Verifies the manifest's blocks in `segments` (of this session), one segment at a time. */
  async #verifySegments(
    snapshot: Snapshot,
    manifest: Manifest,
    segments: readonly [string, number][],
  ): Promise<Rejection | undefined> {
    const wanted = new Set(segments.map(([id]) => id));
    const entries = new Map<string, ManifestEntry[]>();
    for (const entry of manifest.entries) {
      if (!wanted.has(entry.segmentId)) continue;
      const list = entries.get(entry.segmentId);
      if (list) list.push(entry);
      else entries.set(entry.segmentId, [entry]);
    }
    for (const [segmentId, size] of segments) {
      const rejected = await verifySegment(
        this.#o.objects,
        this.#o.compressor,
        { accountId: snapshot.accountId, segmentId, size },
        entries.get(segmentId) ?? [],
      );
      if (rejected) return rejected;
    }
    return undefined;
  }

  /**
   * Claims the verification of an upload for one completion: the lease, the staged manifest and its
   * parts, in one conditional write. A completion that loses (another one is verifying) gets
   * undefined. A claim whose request is lost is finished by workers: the reaper sends its parts.
   */
  async #claimVerification(
    snapshot: Snapshot,
    manifestUploadId: string | undefined,
    segments: number,
  ): Promise<Snapshot | undefined> {
    const now = this.#o.clock.now();
    const segmentsPerPart = this.#o.verifySegmentsPerPart;
    const claimed = await this.#o.snapshots.renewLease(
      snapshot.snapshotId,
      undefined,
      { leaseUntil: isoTime(now + this.#o.leaseMs), leaseParts: 0, dispatches: 0 },
      {
        verification: { ...(manifestUploadId ? { manifestUploadId } : {}), segmentsPerPart },
        parts: Math.max(1, Math.ceil(segments / segmentsPerPart)),
        // Verifying gets its own time: the upload's deadline may be near.
        deadline: isoTime(now + this.#o.uploadTimeoutMs),
      },
    );
    return claimed ? this.#o.snapshots.get(snapshot.snapshotId) : undefined;
  }

  /** The completing transition (with the parent check), then the session's unused keys retired. */
  async #finish(
    caller: Caller,
    snapshot: Snapshot,
    manifestUploadId: string | undefined,
    manifest: Manifest,
    session: Set<string>,
  ): Promise<Snapshot> {
    const snapshotId = snapshot.snapshotId;
    await this.#o.objects.copy(
      manifestUploadId
        ? ObjectLayout.manifestStaging(snapshotId, manifestUploadId)
        : ObjectLayout.manifestUpload(snapshotId),
      ObjectLayout.manifest(snapshotId),
    );
    // Inheriting blocks: the parent must still hold them at the instant this completes (a parent
    // being deleted meanwhile fails the child, rather than leaving it naming reclaimable blocks).
    const inheritsFromParent = [...manifest.segments.keys()].some((id) => !session.has(id));
    const completed = await this.#o.snapshots.transition(
      snapshotId,
      ['pending'],
      'completed',
      {
        progress: 100,
        completedAt: isoTime(this.#o.clock.now()),
        stats: statsOf(manifest, session),
        // What verifying it took is over (a server-side snapshot keeps its parts' record).
        ...(snapshot.verification || caller.keyId !== SYSTEM_KEY_ID
          ? {
              leaseUntil: undefined,
              leaseParts: undefined,
              dispatches: undefined,
              parts: undefined,
              partsDone: undefined,
              verification: undefined,
            }
          : { leaseUntil: undefined }),
      },
      inheritsFromParent && snapshot.parentSnapshotId
        ? { snapshotId: snapshot.parentSnapshotId, states: LIVE_MANIFEST_STATES }
        : undefined,
    );
    if (!completed) {
      const now = await this.#visible(caller, snapshotId);
      if (now.state === 'completed') return now;
      if (now.state === 'pending' && inheritsFromParent) {
        return this.#fail(
          now,
          `Its parent ${snapshot.parentSnapshotId} was deleted while it completed, and with it blocks this snapshot names.`,
        );
      }
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is ${now.state}; it cannot be completed.`,
      );
    }
    await retireSession(this.#o.objects, this.#o.snapshots, completed, new Set(manifest.segments.keys()));
    return completed;
  }

  /** Blocks that differ between two completed snapshots of the same volume. */
  async diff(caller: Caller, fromId: string, toId: string): Promise<SnapshotDiff> {
    const [from, to] = await Promise.all([this.#completed(caller, fromId), this.#completed(caller, toId)]);
    if (from.volumeId !== to.volumeId) {
      throw new VolsnapError(
        'request.invalid',
        `Snapshots ${fromId} and ${toId} are of different volumes; changed blocks are defined within one volume.`,
      );
    }
    const [a, b] = await Promise.all([this.#manifest(fromId), this.#manifest(toId)]);
    const hashes = new Map(a.entries.map((e) => [e.blockIndex, e.hash]));
    const changed = new Set<number>();
    for (const entry of b.entries) {
      const before = hashes.get(entry.blockIndex);
      if (!before?.equals(entry.hash)) changed.add(entry.blockIndex);
      hashes.delete(entry.blockIndex);
    }
    for (const zeroedNow of hashes.keys()) changed.add(zeroedNow);
    const ranges: SnapshotDiff['ranges'] = [];
    for (const index of [...changed].sort((x, y) => x - y)) {
      const last = ranges.at(-1);
      if (last && last.start + last.count === index) last.count++;
      else ranges.push({ start: index, count: 1 });
    }
    return {
      blockSize: BLOCK_SIZE,
      volumeSize: Math.max(from.volumeSize, to.volumeSize),
      changedBlocks: changed.size,
      ranges,
    };
  }

  /**
   * Lets another account (by id or name) read a completed snapshot: list it under `--shared`,
   * restore it, make volumes from it. It stays the owner's: the grantee cannot change, share or
   * delete it. Idempotent.
   */
  async share(caller: Caller, snapshotId: string, accountRef: string): Promise<Snapshot> {
    const snapshot = await this.#owned(caller, snapshotId, 'snapshot:share', 'share');
    const grantee = await this.#o.accounts.resolveAccount(accountRef);
    if (grantee.accountId === caller.accountId) {
      throw new VolsnapError(
        'request.invalid',
        'A snapshot is always readable by its own account: share it with another.',
      );
    }
    if (
      !(snapshot.sharedWith ?? []).includes(grantee.accountId) &&
      (snapshot.sharedWith?.length ?? 0) >= MAX_SHARES
    ) {
      throw new VolsnapError(
        'request.invalid',
        `Snapshot ${snapshotId} is shared with ${MAX_SHARES} accounts already, the most there can be; publish it instead.`,
      );
    }
    return this.#grant(caller, snapshot, { accountId: grantee.accountId });
  }

  /** Takes a share back: the account's next request for the snapshot is a 404. Idempotent. */
  async unshare(caller: Caller, snapshotId: string, accountRef: string): Promise<Snapshot> {
    await this.#owned(caller, snapshotId, 'snapshot:share', 'share');
    const grantee = await this.#o.accounts.resolveAccount(accountRef);
    const updated = await this.#o.snapshots.unshare(snapshotId, { accountId: grantee.accountId });
    if (!updated) throw notFound(snapshotId);
    return updated;
  }

  /** Makes a completed snapshot readable by every account, unless its account blocks public sharing. */
  async publish(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.#owned(caller, snapshotId, 'snapshot:share', 'publish');
    const account = await this.#o.accounts.resolveAccount(caller.accountId);
    if (account.blockPublicSharing) {
      throw new VolsnapError(
        'snapshot.publicSharingBlocked',
        'This account blocks public sharing; an admin can lift it with `volsnap account settings --allow-public-sharing`.',
      );
    }
    return this.#grant(caller, snapshot, 'public');
  }

  /** Makes a public snapshot private again (shares with named accounts stay). Idempotent. */
  async unpublish(caller: Caller, snapshotId: string): Promise<Snapshot> {
    await this.#owned(caller, snapshotId, 'snapshot:share', 'unpublish');
    const updated = await this.#o.snapshots.unshare(snapshotId, 'public');
    if (!updated) throw notFound(snapshotId);
    return updated;
  }

  async #grant(caller: Caller, snapshot: Snapshot, grantee: Grantee): Promise<Snapshot> {
    if (snapshot.state !== 'completed') {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshot.snapshotId} is ${snapshot.state}; only completed snapshots can be shared.`,
        { details: { snapshotId: snapshot.snapshotId, state: snapshot.state } },
      );
    }
    const updated = await this.#o.snapshots.share(snapshot.snapshotId, grantee);
    if (!updated) return this.#owned(caller, snapshot.snapshotId, 'snapshot:share', 'share');
    return updated;
  }

  /** A snapshot the caller may read, else `snapshot.notFound`. */
  async #visible(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = isId('snapshot', snapshotId) ? await this.#o.snapshots.get(snapshotId) : undefined;
    if (!snapshot || snapshot.state === 'deleting' || !(await this.#mayRead(caller, snapshot)))
      throw notFound(snapshotId);
    return snapshot;
  }

  /** `owners` remembers owner accounts across the snapshots of one listing. */
  async #mayRead(
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
      owner = this.#o.accounts.resolveAccount(snapshot.accountId).catch(() => undefined);
      owners.set(snapshot.accountId, owner);
    }
    const account = await owner;
    return account !== undefined && !account.blockPublicSharing;
  }

  /**
   * A snapshot the caller may change: it must hold `permission`, and the snapshot must be its
   * account's. One it can only read (shared, public) is a 403; one it cannot see is a 404.
   */
  async #owned(caller: Caller, snapshotId: string, permission: Permission, verb: string): Promise<Snapshot> {
    requirePermission(caller, permission);
    const snapshot = await this.#visible(caller, snapshotId);
    if (snapshot.accountId !== caller.accountId) {
      throw new VolsnapError(
        'auth.forbidden',
        `Snapshot ${snapshotId} belongs to another account: only its owner can ${verb} it.`,
        { details: { snapshotId } },
      );
    }
    return snapshot;
  }

  async #pending(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.#owned(caller, snapshotId, 'snapshot:create', 'write');
    if (snapshot.state !== 'pending') {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is ${snapshot.state}, not pending: its blocks can no longer be written.`,
        {
          details: { snapshotId, state: snapshot.state },
        },
      );
    }
    return snapshot;
  }

  async #completed(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.#visible(caller, snapshotId);
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

  async #manifest(snapshotId: string): Promise<Manifest> {
    const bytes = await this.#o.objects.get(ObjectLayout.manifest(snapshotId));
    if (!bytes)
      throw new VolsnapError('internal', `The manifest of completed snapshot ${snapshotId} is missing.`);
    return decodeManifest(bytes);
  }

  /** The manifest of a parent that still keeps its blocks, else undefined. */
  async #parentManifest(parentId: string): Promise<Manifest | undefined> {
    const parent = await this.#o.snapshots.get(parentId);
    // A parent deleted meanwhile into the recycle bin keeps its manifest, and so its blocks.
    if (parent?.state !== 'completed' && parent?.state !== 'recycled') return undefined;
    return this.#manifest(parentId);
  }

  /**
   * Segments not stored or stored shorter than the manifest records (not uploaded yet, or torn:
   * `short`), and segments stored longer than it records (`long`: the manifest is wrong).
   */
  async #missingSegments(
    accountId: string,
    segments: [string, number][],
  ): Promise<{ short: string[]; long: string[] }> {
    const short: string[] = [];
    const long: string[] = [];
    for (let i = 0; i < segments.length; i += 32) {
      const batch = segments.slice(i, i + 32);
      const heads = await Promise.all(
        batch.map(([id]) => this.#o.objects.head(ObjectLayout.segment(accountId, id))),
      );
      batch.forEach(([id, size], j) => {
        const stored = heads[j]?.size;
        if (stored === undefined || stored < size) short.push(id);
        else if (stored > size) long.push(id);
      });
    }
    return { short, long };
  }

  /**
   * Fails a pending snapshot whose upload is not sound: `error` with the reason, its upload keys
   * retired; answers 400 `snapshot.manifestInvalid` (the one code for every such case).
   */
  async #fail(snapshot: Snapshot, reason: Rejection): Promise<never> {
    const failed = await this.#o.snapshots.transition(snapshot.snapshotId, ['pending'], 'error', {
      stateReason: reason,
      leaseUntil: undefined,
      verification: undefined,
    });
    if (failed) await retireSession(this.#o.objects, this.#o.snapshots, failed);
    throw new VolsnapError(
      'snapshot.manifestInvalid',
      `${reason} Snapshot ${snapshot.snapshotId} is now in error.`,
      {
        details: { snapshotId: snapshot.snapshotId },
      },
    );
  }
}

/** What deleting a snapshot did: into the recycle bin (`recycled`) or gone; who lost access to it. */
export interface SnapshotDeletion {
  recycled?: Snapshot;
  /** Set when other accounts could read it: they cannot from now on (undelete gives their access back). */
  accessLost?: { accountIds: string[]; public: boolean; message: string };
}

function accessLost(snapshot: Snapshot): Pick<SnapshotDeletion, 'accessLost'> {
  const accountIds = [...(snapshot.sharedWith ?? [])].sort();
  const isPublic = snapshot.public === true;
  if (accountIds.length === 0 && !isPublic) return {};
  const readers = [
    ...(accountIds.length > 0
      ? [`shared with ${accountIds.length} account(s) (${accountIds.join(', ')})`]
      : []),
    ...(isPublic ? ['public'] : []),
  ].join(' and ');
  const back =
    snapshot.state === 'recycled'
      ? `; \`volsnap snapshot undelete ${snapshot.snapshotId}\` before ${snapshot.purgeAt} gives it back to them`
      : '';
  return {
    accessLost: {
      accountIds,
      public: isPublic,
      message: `${snapshot.snapshotId} is ${readers}: they lose access now${back}.`,
    },
  };
}

/** What a copy or import is of, for client-token comparison (not where it happens to be written). */
function sourceOf(fields: Pick<Snapshot, 'copiedFrom' | 'importedFrom'>): unknown {
  if (fields.copiedFrom) return { copy: fields.copiedFrom };
  return { import: { source: fields.importedFrom?.source, format: fields.importedFrom?.format } };
}

/** A snapshot failed by #fail is what the caller wanted; anything else goes on (and is retried). */
function ignoreInvalid(error: unknown): void {
  if (!(error instanceof VolsnapError && error.code === 'snapshot.manifestInvalid')) throw error;
}

/** The service acting for an account's owner (its own workers). */
function systemOf(accountId: string): Caller {
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
function viewFor(caller: Caller, snapshot: Snapshot): Snapshot {
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

function notFound(snapshotId: string): VolsnapError {
  return new VolsnapError('snapshot.notFound', `No snapshot ${snapshotId} in this account and region.`, {
    details: { snapshotId },
  });
}

function statsOf(manifest: Manifest, session: Set<string>): SnapshotStats {
  const locations = new Map<string, { bytes: number; fresh: boolean }>();
  let newBlocks = 0;
  for (const entry of manifest.entries) {
    const fresh = session.has(entry.segmentId);
    if (fresh) newBlocks++;
    locations.set(`${entry.segmentId}@${entry.offset}`, { bytes: entry.storedLength, fresh });
  }
  const unique = [...locations.values()];
  return {
    blockCount: manifest.entries.length,
    storedBytes: unique.reduce((sum, l) => sum + l.bytes, 0),
    newBlocks,
    newBytes: unique.filter((l) => l.fresh).reduce((sum, l) => sum + l.bytes, 0),
    reusedBlocks: manifest.entries.length - newBlocks,
    zeroBlocks: manifest.volumeSize / manifest.blockSize - manifest.entries.length,
  };
}
