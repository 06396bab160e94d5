import { createHash } from 'node:crypto';
import { BLOCK_SIZE, blockCount, blockHash } from '../format/blocks.ts';
import { encodeStagedBlock } from '../format/staged-block.ts';
import { type Caller, requirePermission } from '../identity/identity.ts';
import type { Compressor } from '../ports/codec.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import type { WorkQueue } from '../ports/queue.ts';
import { type Clock, isoTime, parseIsoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import type { Tags } from '../shared/tags.ts';
import type { SnapshotService } from '../snapshots/snapshot-service.ts';
import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';
import type { Volume, VolumeRepository } from '../volumes/volumes.ts';

const GiB = 1024 ** 3;
/** StartSnapshot's `Timeout` bounds and default, in minutes (the EBS model's). */
export const MIN_TIMEOUT_MINUTES = 10;
export const MAX_TIMEOUT_MINUTES = 4320;
export const DEFAULT_TIMEOUT_MINUTES = 60;
/** The largest volume the EBS direct API takes, in GiB (64 TiB). */
export const MAX_VOLUME_GIB = 65536;
/**
 * Blocks packed by one worker part (8 GiB, as an image snapshot's part: about two minutes of work).
 * A staged block's key names its part, so a part lists exactly its own blocks.
 */
export const BLOCKS_PER_PART = 16384;

/** StartSnapshot's parameters, as the EBS direct API names them. */
export interface StartSnapshotInput {
  volumeSizeGiB: number;
  parentSnapshotId?: string;
  description?: string;
  tags?: Tags;
  clientToken?: string;
  timeoutMinutes?: number;
  encrypted?: boolean;
  kmsKeyArn?: string;
}

/** PutSnapshotBlock's headers. */
export interface PutBlockInput {
  dataLength: number;
  /** Base64 SHA-256 of the data, as the client computed it. */
  checksum: string;
  checksumAlgorithm: string;
}

/** CompleteSnapshot's headers. */
export interface CompleteInput {
  changedBlocksCount: number;
  checksum?: string;
  checksumAlgorithm?: string;
  aggregationMethod?: string;
}

export interface DirectWritesOptions {
  snapshots: Pick<SnapshotRepository, 'get' | 'transition'>;
  volumes: VolumeRepository;
  objects: ObjectStore;
  compressor: Compressor;
  clock: Clock;
  queue: WorkQueue;
  service: Pick<SnapshotService, 'createDirect'>;
  region: string;
  /** Lease of the packing work (the reaper sends its parts again when it lapses). */
  leaseMs: number;
  /** How long packing and completion may take before the reaper fails the snapshot. */
  uploadTimeoutMs: number;
}

/**
 * The writes of the EBS direct API over volsnap's snapshots: StartSnapshot makes an ordinary
 * pending snapshot (of a volume of its own, or of its parent's volume), PutSnapshotBlock stages
 * each block as one object (compressed, its SHA-256 in its header), and CompleteSnapshot hands the
 * staged blocks to workers that pack them into segments and complete the snapshot through the usual
 * completion (lib/core/direct/packing.ts). Nothing here keeps state of its own.
 */
export class DirectWrites {
  readonly #o: DirectWritesOptions;

  constructor(options: DirectWritesOptions) {
    this.#o = options;
  }

  /**
   * StartSnapshot: a pending snapshot, of a new volume of `VolumeSize` GiB without a parent, or of
   * the parent's volume (incremental: unwritten blocks are the parent's). Idempotent with a client
   * token (the same token and parameters return the same snapshot; other parameters are
   * `idempotency.conflict`), also for the volume a retried start makes.
   */
  async start(caller: Caller, input: StartSnapshotInput): Promise<Snapshot> {
    requirePermission(caller, 'snapshot:create');
    const timeoutMinutes = input.timeoutMinutes ?? DEFAULT_TIMEOUT_MINUTES;
    validateStart(input, timeoutMinutes);
    const parent = input.parentSnapshotId ? await this.#parent(caller, input) : undefined;
    const volume = parent ? await this.#volumeOf(caller, parent) : await this.#newVolume(caller, input);
    const clientToken = input.clientToken ? tokenOf(input.clientToken) : undefined;
    return this.#o.service.createDirect(
      caller,
      volume,
      {
        description: input.description ?? '',
        tags: input.tags ?? {},
        ...(clientToken ? { clientToken } : {}),
      },
      {
        ...(parent ? { parentSnapshotId: parent.snapshotId } : {}),
        session: { timeoutMinutes },
        request: [input.volumeSizeGiB, input.parentSnapshotId ?? null, timeoutMinutes],
      },
    );
  }

  /**
   * PutSnapshotBlock: checks the data against its length and SHA-256, then stages it (a block PUT
   * again replaces the earlier one). Moves the snapshot's deadline on when half its `Timeout` is
   * gone (one write per half timeout, not one per block). Returns the checksum of what was stored.
   * Idempotent; nothing is written when any check fails.
   */
  async putBlock(
    caller: Caller,
    snapshotId: string,
    blockIndex: number,
    data: Uint8Array,
    input: PutBlockInput,
  ): Promise<{ checksum: string }> {
    requirePermission(caller, 'snapshot:create');
    if (input.checksumAlgorithm !== 'SHA256')
      throw invalid(`ChecksumAlgorithm must be SHA256, not '${input.checksumAlgorithm}'.`);
    if (input.dataLength !== BLOCK_SIZE || data.length !== BLOCK_SIZE) {
      throw invalid(
        `DataLength must be ${BLOCK_SIZE} (512 KiB) and the body that long; DataLength was ${input.dataLength}, the body ${data.length} bytes.`,
      );
    }
    const hash = blockHash(data);
    if (hash.toString('base64') !== input.checksum) {
      throw invalid(
        `The block's SHA-256 is ${hash.toString('base64')}, not the x-amz-Checksum sent (${input.checksum.slice(0, 64)}): the data was damaged in transit, or the checksum is not over it.`,
      );
    }
    const snapshot = await this.#writable(caller, snapshotId);
    const blocks = blockCount(snapshot.volumeSize);
    if (!Number.isSafeInteger(blockIndex) || blockIndex < 0 || blockIndex >= blocks) {
      throw invalid(`BlockIndex ${blockIndex} is outside the volume: its blocks are 0 to ${blocks - 1}.`);
    }
    const part = Math.floor(blockIndex / BLOCKS_PER_PART);
    await this.#o.objects.put(
      ObjectLayout.stagedBlock(snapshotId, part, blockIndex),
      encodeStagedBlock(this.#o.compressor, data, hash),
    );
    await this.#keepAlive(snapshot);
    return { checksum: hash.toString('base64') };
  }

  /**
   * CompleteSnapshot: records the block count and aggregate checksum the client sent and hands the
   * staged blocks to the packing workers (one queue message per part); the snapshot stays `pending`
   * until the last part completes it, or goes to `error` if the count or checksum is wrong. Returns
   * the status to answer. Idempotent: a snapshot already completing, completed or failed is
   * answered with its status.
   */
  async complete(caller: Caller, snapshotId: string, input: CompleteInput): Promise<Snapshot['state']> {
    requirePermission(caller, 'snapshot:create');
    validateCompletion(input);
    const snapshot = await this.#own(caller, snapshotId);
    if (snapshot.state !== 'pending' || snapshot.direct?.completion) return snapshot.state;
    const now = this.#o.clock.now();
    const parts = Math.ceil(blockCount(snapshot.volumeSize) / BLOCKS_PER_PART);
    const completing = await this.#o.snapshots.transition(snapshotId, ['pending'], 'pending', {
      direct: {
        timeoutMinutes: snapshot.direct?.timeoutMinutes ?? DEFAULT_TIMEOUT_MINUTES,
        completion: {
          changedBlocksCount: input.changedBlocksCount,
          ...(input.checksum ? { checksum: input.checksum } : {}),
        },
      },
      parts,
      leaseUntil: isoTime(now + this.#o.leaseMs),
      leaseParts: 0,
      dispatches: 0,
      deadline: isoTime(now + this.#o.uploadTimeoutMs),
    });
    if (!completing) return (await this.#own(caller, snapshotId)).state;
    // A message lost here is sent again by the reaper when the lease lapses.
    for (let part = 0; part < parts; part++)
      await this.#o.queue.send({ kind: 'snapshot.directPart', snapshotId, part });
    return 'pending';
  }

  /** The caller's own snapshot made through this API, in any state; `snapshot.notFound` otherwise. */
  async #own(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = isId('snapshot', snapshotId) ? await this.#o.snapshots.get(snapshotId) : undefined;
    if (
      !snapshot ||
      snapshot.accountId !== caller.accountId ||
      !snapshot.direct ||
      snapshot.state === 'deleting'
    )
      throw notFound(snapshotId, 'in this account and region made with StartSnapshot');
    return snapshot;
  }

  /** A snapshot blocks may be PUT to: the caller's, pending, not completing. */
  async #writable(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.#own(caller, snapshotId);
    if (snapshot.state !== 'pending' || snapshot.direct?.completion)
      throw notFound(
        snapshotId,
        `that is pending (it is ${snapshot.direct?.completion ? 'completing' : snapshot.state})`,
      );
    return snapshot;
  }

  /** Moves the deadline to `Timeout` from now when less than half of it is left. */
  async #keepAlive(snapshot: Snapshot): Promise<void> {
    const timeoutMs = (snapshot.direct?.timeoutMinutes ?? DEFAULT_TIMEOUT_MINUTES) * 60_000;
    const now = this.#o.clock.now();
    if (parseIsoTime(snapshot.deadline) - now > timeoutMs / 2) return;
    await this.#o.snapshots.transition(snapshot.snapshotId, ['pending'], 'pending', {
      deadline: isoTime(now + timeoutMs),
    });
  }

  /** The parent StartSnapshot names: the caller's own completed snapshot, of the same size. */
  async #parent(caller: Caller, input: StartSnapshotInput): Promise<Snapshot> {
    const id = input.parentSnapshotId ?? '';
    const parent = isId('snapshot', id) ? await this.#o.snapshots.get(id) : undefined;
    // Segments are never shared across accounts: only the caller's own snapshot can be a parent.
    if (!parent || parent.accountId !== caller.accountId || parent.state !== 'completed')
      throw notFound(id, 'completed in this account and region', 'The parent snapshot');
    if (Math.ceil(parent.volumeSize / GiB) !== input.volumeSizeGiB) {
      throw invalid(
        `VolumeSize must be the parent's, ${Math.ceil(parent.volumeSize / GiB)} GiB, for a snapshot of ParentSnapshotId ${id}; it was ${input.volumeSizeGiB}.`,
        'INVALID_VOLUME_SIZE',
      );
    }
    return parent;
  }

  async #volumeOf(caller: Caller, parent: Snapshot): Promise<Volume> {
    const volume = await this.#o.volumes.get(caller.accountId, parent.volumeId);
    if (!volume) throw notFound(parent.snapshotId, 'whose volume still exists', 'The parent snapshot');
    return volume;
  }

  /**
   * The volume of its own a snapshot without a parent is of. With a client token its id comes from
   * the token, so a retried StartSnapshot finds the volume its first attempt made.
   */
  async #newVolume(caller: Caller, input: StartSnapshotInput): Promise<Volume> {
    requirePermission(caller, 'volume:create');
    const volumeId = input.clientToken
      ? `vol-${base32Of(createHash('sha256').update(`${caller.accountId}\n${input.clientToken}`).digest())}`
      : undefined;
    if (volumeId) {
      const known = await this.#o.volumes.get(caller.accountId, volumeId);
      if (known) return known;
    }
    const volume: Volume = {
      volumeId: volumeId ?? newId('volume'),
      accountId: caller.accountId,
      name: 'EBS direct API snapshot',
      sizeBytes: input.volumeSizeGiB * GiB,
      tags: {},
      region: this.#o.region,
      createdAt: isoTime(this.#o.clock.now()),
    };
    try {
      await this.#o.volumes.create(volume);
    } catch (error) {
      // Two starts with one token raced: the other made it.
      const made = volumeId ? await this.#o.volumes.get(caller.accountId, volumeId) : undefined;
      if (!made) throw error;
      return made;
    }
    return volume;
  }
}

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/** 16 characters of an id (as lib/core/shared/ids.ts makes them) from a digest. */
function base32Of(digest: Buffer): string {
  let out = '';
  for (let i = 0; i < 16; i++) out += CROCKFORD[(digest[i] ?? 0) & 31];
  return out;
}

/**
 * The client token as volsnap remembers it: EBS allows 255 characters, volsnap's tokens are at most
 * 64, and an EBS token must not meet a CLI one, so a digest of it, namespaced.
 */
function tokenOf(clientToken: string): string {
  return `ebs-${createHash('sha256').update(clientToken).digest('hex').slice(0, 40)}`;
}

function validateStart(input: StartSnapshotInput, timeoutMinutes: number): void {
  if (
    !Number.isSafeInteger(input.volumeSizeGiB) ||
    input.volumeSizeGiB < 1 ||
    input.volumeSizeGiB > MAX_VOLUME_GIB
  )
    throw invalid(
      `VolumeSize is a whole number of GiB from 1 to ${MAX_VOLUME_GIB}; it was ${input.volumeSizeGiB}.`,
      'INVALID_VOLUME_SIZE',
    );
  if (
    !Number.isInteger(timeoutMinutes) ||
    timeoutMinutes < MIN_TIMEOUT_MINUTES ||
    timeoutMinutes > MAX_TIMEOUT_MINUTES
  )
    throw invalid(
      `Timeout is ${MIN_TIMEOUT_MINUTES} to ${MAX_TIMEOUT_MINUTES} minutes; it was ${timeoutMinutes}.`,
    );
  if (input.encrypted || input.kmsKeyArn)
    throw invalid(
      'volsnap does not encrypt snapshots with KMS keys (its storage is encrypted at rest): leave Encrypted and KmsKeyArn out.',
      'INVALID_CUSTOMER_KEY',
    );
  if (input.description !== undefined && input.description.length > 255)
    throw invalid('Description is at most 255 characters.');
  if (input.clientToken !== undefined && !/^\S{1,255}$/.test(input.clientToken))
    throw invalid('ClientToken is 1–255 characters without spaces.');
}

function validateCompletion(input: CompleteInput): void {
  if (!Number.isSafeInteger(input.changedBlocksCount) || input.changedBlocksCount < 0)
    throw invalid('x-amz-ChangedBlocksCount must be a whole number of blocks, 0 or more.');
  if (input.checksum === undefined) return;
  if (input.checksumAlgorithm !== 'SHA256')
    throw invalid(
      `x-amz-Checksum-Algorithm must be SHA256 with an aggregate checksum, not '${input.checksumAlgorithm ?? ''}'.`,
    );
  if (input.aggregationMethod !== 'LINEAR')
    throw invalid(
      `x-amz-Checksum-Aggregation-Method must be LINEAR, not '${input.aggregationMethod ?? ''}'.`,
    );
  if (!/^[A-Za-z0-9+/=]{1,64}$/.test(input.checksum)) throw invalid('x-amz-Checksum is a base64 SHA-256.');
}

/** A ValidationException with `reason` (INVALID_PARAMETER_VALUE unless said). */
export function invalid(message: string, reason = 'INVALID_PARAMETER_VALUE'): VolsnapError {
  return new VolsnapError('request.invalid', message, { details: { reason } });
}

function notFound(snapshotId: string, which: string, what = 'No snapshot'): VolsnapError {
  const text =
    what === 'No snapshot'
      ? `No snapshot ${snapshotId} ${which}.`
      : `${what} ${snapshotId} is not a snapshot ${which}.`;
  return new VolsnapError('snapshot.notFound', text, { details: { snapshotId } });
}
