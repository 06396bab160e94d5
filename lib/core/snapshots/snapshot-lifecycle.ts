import { createHash } from 'node:crypto';
import { BLOCK_SIZE } from '../format/blocks.ts';
import { type Caller, requirePermission } from '../identity/identity.ts';
import type { WorkMessage } from '../ports/queue.ts';
import { isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import { type Tags, validateTags, withoutReserved } from '../shared/tags.ts';
import { requirePrintable } from '../shared/text.ts';
import type { Volume } from '../volumes/volumes.ts';
import { DEFAULT_AGENT_TIMEOUT_MS, type SnapshotAccess, SYSTEM_KEY_ID } from './snapshot-access.ts';
import { retireSession } from './snapshot-verify.ts';
import type { ClientTokenRecord, Snapshot } from './snapshots.ts';

export interface CreateSnapshotInput {
  volumeId: string;
  /** For a volume on a host: queue it for `volsnap agent` there (see {@link SnapshotLifecycle.createScheduled}). */
  queued?: boolean;
  name?: string;
  description?: string;
  tags?: Tags;
  clientToken?: string;
  /** For a snapshot of an instance's volume: its image, its group, and the group's one point in time. */
  group?: Pick<Snapshot, 'imageId' | 'groupId' | 'takenAt'>;
}

/** Server-side work a new snapshot is written by: what it is of, and its parts for the workers. */
interface ServerSideWork {
  fields: Pick<Snapshot, 'copiedFrom' | 'importedFrom'>;
  parts: number;
  kind: 'snapshot.copyPart' | 'snapshot.importPart';
}

/** How a snapshot started through the EBS direct API differs from a volume's next snapshot. */
export interface DirectStart {
  /** The parent StartSnapshot named (the caller's own completed snapshot), not the volume's latest. */
  parentSnapshotId?: string;
  session: NonNullable<Snapshot['direct']>;
  /** What the request asked, for client-token comparison. */
  request: unknown;
}

/** Starting a snapshot (by a caller, a copy, an import, a policy or an agent), and giving up on one. */
export class SnapshotLifecycle {
  readonly #a: SnapshotAccess;

  constructor(access: SnapshotAccess) {
    this.#a = access;
  }

  /**
   * Starts a snapshot of a volume: `pending`, written against its parent (the volume's newest
   * completed snapshot, else the snapshot the volume was made from). Idempotent with a client token:
   * the same token and parameters return the same snapshot; other parameters are a 409.
   */
  async create(caller: Caller, input: CreateSnapshotInput): Promise<Snapshot> {
    requirePermission(caller, 'snapshot:create');
    const volume = isId('volume', input.volumeId)
      ? await this.#a.options.volumes.get(caller.accountId, input.volumeId)
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
   * Starts a snapshot through the EBS direct API: `pending`, its blocks staged one by one, its
   * deadline `Timeout` minutes away (each block PUT moves it on). Idempotent with a client token
   * like {@link create}; the same token with another request is `idempotency.conflict`.
   */
  createDirect(
    caller: Caller,
    volume: Volume,
    input: Omit<CreateSnapshotInput, 'volumeId'>,
    direct: DirectStart,
  ): Promise<Snapshot> {
    return this.#create(
      caller,
      volume,
      { ...input, volumeId: volume.volumeId },
      undefined,
      undefined,
      direct,
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
    const snapshot = await this.#a.owned(caller, snapshotId, 'snapshot:create', 'write');
    const started =
      snapshot.state === 'queued'
        ? await this.#a.options.snapshots.transition(snapshotId, ['queued'], 'pending', {
            deadline: isoTime(this.#a.options.clock.now() + this.#a.options.uploadTimeoutMs),
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
    const snapshot = await this.#a.owned(caller, snapshotId, 'snapshot:create', 'write');
    const text = reason.trim().slice(0, 1000) || 'No reason given.';
    const failed = await this.#a.options.snapshots.transition(snapshotId, ['queued', 'pending'], 'error', {
      stateReason: `The agent reported: ${text}`,
    });
    if (failed) await retireSession(this.#a.options.objects, this.#a.options.snapshots, failed);
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
    serverSide?: ServerSideWork,
    /** Queued for an agent, which must take it within this many ms. */
    queuedForMs?: number,
    direct?: DirectStart,
  ): Promise<Snapshot> {
    const { tags, name, description } = validatedInput(caller, input);
    const parent = direct
      ? direct.parentSnapshotId
        ? { parentSnapshotId: direct.parentSnapshotId }
        : {}
      : await this.#parentOf(caller, volume);
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
      region: this.#a.options.region,
      ...this.#timing(volume, serverSide, queuedForMs ?? timeoutOf(direct)),
      ...parent,
      ...(serverSide ? { ...serverSide.fields, parts: serverSide.parts } : {}),
      ...(direct ? { direct: direct.session } : {}),
      ...(input.group ? { ...input.group } : {}),
    };
    const requestHash = createHash('sha256')
      .update(
        JSON.stringify([
          serverSide ? sourceOf(serverSide.fields) : direct ? { direct: direct.request } : volume.volumeId,
          name,
          description,
          tags,
        ]),
      )
      .digest('hex');
    const known = await this.#a.options.snapshots.create(
      snapshot,
      input.clientToken ? { token: input.clientToken, requestHash } : undefined,
      await this.#a.options.accounts.limits(caller.accountId),
    );
    if (!known) {
      await this.#announce(snapshot, volume, serverSide);
      return snapshot;
    }
    return this.#replay(input, known, requestHash);
  }

  /**
   * The parent a new snapshot is written against. A volume made from another account's snapshot
   * starts with a full snapshot: segments are never shared across accounts, so its data is copied
   * into the caller's own segments once.
   */
  async #parentOf(caller: Caller, volume: Volume): Promise<Pick<Snapshot, 'parentSnapshotId'>> {
    const snapshots = this.#a.options.snapshots;
    const source = volume.sourceSnapshotId ? await snapshots.get(volume.sourceSnapshotId) : undefined;
    const parent =
      (await snapshots.latestCompleted(volume.volumeId))?.snapshotId ??
      (source?.accountId === caller.accountId && source.state === 'completed'
        ? source.snapshotId
        : undefined);
    return parent ? { parentSnapshotId: parent } : {};
  }

  /** When a new snapshot was made, its deadline and, for work by workers, its lease. */
  #timing(
    volume: Volume,
    serverSide: ServerSideWork | undefined,
    queuedForMs: number | undefined,
  ): Pick<Snapshot, 'createdAt' | 'deadline' | 'leaseUntil' | 'leaseParts'> {
    const now = this.#a.options.clock.now();
    return {
      createdAt: isoTime(now),
      deadline: isoTime(now + (queuedForMs ?? this.#a.options.uploadTimeoutMs)),
      // Work for workers carries a lease: the reaper dispatches it again if no part finishes in time.
      ...(serverSide || volume.imageUri
        ? { leaseUntil: isoTime(now + this.#a.options.leaseMs), leaseParts: 0 }
        : {}),
    };
  }

  /** Sends a new snapshot's work to the workers, if they write it; failing that, the snapshot fails. */
  async #announce(snapshot: Snapshot, volume: Volume, serverSide: ServerSideWork | undefined): Promise<void> {
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
    if (work.length === 0) return;
    try {
      for (const message of work) await this.#a.options.queue.send(message);
    } catch (error) {
      await this.#a.options.snapshots.transition(snapshot.snapshotId, ['pending'], 'error', {
        stateReason: 'The snapshot could not be queued for a worker.',
      });
      throw error;
    }
  }

  /** The snapshot an earlier request with the same client token made, if it asked the same. */
  async #replay(
    input: CreateSnapshotInput,
    known: ClientTokenRecord,
    requestHash: string,
  ): Promise<Snapshot> {
    if (known.requestHash !== requestHash) {
      throw new VolsnapError(
        'idempotency.conflict',
        `Client token '${input.clientToken}' was used for a different request (snapshot ${known.snapshotId}). Use a new token.`,
        {
          details: { snapshotId: known.snapshotId },
        },
      );
    }
    const earlier = await this.#a.options.snapshots.get(known.snapshotId);
    if (!earlier)
      throw new VolsnapError(
        'snapshot.notFound',
        `Snapshot ${known.snapshotId}, created with this client token, no longer exists.`,
      );
    return earlier;
  }
}

function timeoutOf(direct: DirectStart | undefined): number | undefined {
  return direct ? direct.session.timeoutMinutes * 60_000 : undefined;
}

/** What a copy or import is of, for client-token comparison (not where it happens to be written). */
function sourceOf(fields: Pick<Snapshot, 'copiedFrom' | 'importedFrom'>): unknown {
  if (fields.copiedFrom) return { copy: fields.copiedFrom };
  return { import: { source: fields.importedFrom?.source, format: fields.importedFrom?.format } };
}

/** A new snapshot's name, description and tags, checked. */
function validatedInput(
  caller: Caller,
  input: CreateSnapshotInput,
): { tags: Tags; name: string; description: string } {
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
  return { tags, name, description };
}
