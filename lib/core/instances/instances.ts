import { type Caller, requirePermission } from '../identity/identity.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import type { Page } from '../shared/pagination.ts';
import { requirePrintable } from '../shared/text.ts';
import type { VolumeRepository } from '../volumes/volumes.ts';

/**
 * Instances as volsnap knows them: a name, the volumes attached (device name and boot order), free
 * properties (`min_disk`, `min_ram`, the base image, the licence type…) and a state the user marks.
 * volsnap runs no machines: an instance is what an image is taken of and launched as, the record
 * an OpenStack or IONOS image keeps of its server.
 */
export type InstanceState = 'running' | 'stopped';
export const INSTANCE_STATES: readonly InstanceState[] = ['running', 'stopped'];

/** A volume attached to an instance: the device it appears as, and where it comes in the boot order. */
export interface AttachedVolume {
  volumeId: string;
  /** `/dev/vda`, `/dev/sdb`, `/dev/nvme0n1`…: unique on the instance. */
  device: string;
  /** 0 boots first; unique on the instance. */
  bootIndex: number;
}

export interface Instance {
  instanceId: string;
  accountId: string;
  name: string;
  /** Ordered by boot index. */
  volumes: AttachedVolume[];
  properties: Record<string, string>;
  /** Marked by the user: a running instance's image is crash-consistent only. */
  state: InstanceState;
  region: string;
  createdAt: string;
  updatedAt: string;
  /** Goes up by one on every change; every write is conditional on it (no lost updates). */
  revision: number;
}

/**
 * Where instances are kept, with which instance each volume is attached to (one at a time).
 * Implementations: DynamoDB and in memory, one contract suite. Reads by id (any account); the
 * service decides who may see what.
 */
export interface InstanceRepository {
  /**
   * Stores a new instance and attaches its volumes, atomically; false (nothing stored) if one of
   * the volumes is attached to another instance.
   */
  create(instance: Instance): Promise<boolean>;
  get(instanceId: string): Promise<Instance | undefined>;
  /** The account's instances, newest first. */
  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Instance>>;
  /**
   * Replaces `previous` with `next` (whose revision is one more) if the stored instance is still at
   * `previous.revision`, attaching the volumes `next` adds and detaching those it drops, atomically.
   * False (nothing written) if the instance changed or is gone, or an added volume is attached to
   * another instance.
   */
  replace(previous: Instance, next: Instance): Promise<boolean>;
  /** Deletes the instance if still at its revision, detaching its volumes; false otherwise. */
  delete(instance: Instance): Promise<boolean>;
  /** The id of the instance a volume is attached to, if any. */
  attachedTo(volumeId: string): Promise<string | undefined>;
}

export interface VolumeAttachmentInput {
  volumeId: string;
  device: string;
  /** Defaults to the next free place in the boot order. */
  bootIndex?: number;
}

export interface RegisterInstanceInput {
  name: string;
  volumes?: VolumeAttachmentInput[];
  properties?: Record<string, string>;
  /** `running` unless given. */
  state?: InstanceState;
}

export interface InstanceChanges {
  name?: string;
  state?: InstanceState;
  /** Replaces every property. */
  properties?: Record<string, string>;
}

/** At most this many volumes per instance (a DynamoDB transaction writes them with the instance). */
export const MAX_INSTANCE_VOLUMES = 32;
export const MAX_PROPERTIES = 50;
const NAME = /^[\p{L}\p{N} _.:/+\-@()[\]]{1,200}$/u;
/** `/dev/` and one name: its basename names the file a launch restores it to. */
const DEVICE = /^\/dev\/[a-z][a-z0-9]{0,31}$/;
const PROPERTY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_PROPERTY_VALUE = 1024;
const MAX_BOOT_INDEX = 1000;

/** Instance use cases: register, list, show, attach and detach volumes, mark, delete. */
export class InstanceService {
  constructor(
    private readonly instances: InstanceRepository,
    private readonly volumes: VolumeRepository,
    private readonly clock: Clock,
    private readonly region: string,
  ) {}

  /** Registers an instance with its volumes (the account's, in this region, attached nowhere else). */
  async register(caller: Caller, input: RegisterInstanceInput): Promise<Instance> {
    requirePermission(caller, 'instance:manage');
    return this.registerFor(caller, input);
  }

  /**
   * {@link register} without the permission check: for launches from an image, which the image
   * service authorizes (`volume:create`).
   */
  async registerFor(caller: Caller, input: RegisterInstanceInput): Promise<Instance> {
    const now = isoTime(this.clock.now());
    const volumes: AttachedVolume[] = [];
    for (const [i, v] of (input.volumes ?? []).entries()) {
      volumes.push(attachment(volumes, v, v.bootIndex ?? i));
    }
    if (volumes.length > MAX_INSTANCE_VOLUMES) {
      throw new VolsnapError(
        'request.invalid',
        `An instance has at most ${MAX_INSTANCE_VOLUMES} volumes; ${volumes.length} were given.`,
      );
    }
    const instanceId = newId('instance');
    for (const v of volumes) await this.#attachable(caller, instanceId, v.volumeId);
    const instance: Instance = {
      instanceId,
      accountId: caller.accountId,
      name: validateName(input.name),
      volumes: byBootIndex(volumes),
      properties: validateProperties(input.properties ?? {}),
      state: validateState(input.state ?? 'running'),
      region: this.region,
      createdAt: now,
      updatedAt: now,
      revision: 1,
    };
    if (!(await this.instances.create(instance))) throw changed(instanceId);
    return instance;
  }

  /** The caller's instance, or `instance.notFound` (also for other accounts' instances). */
  async get(caller: Caller, instanceId: string): Promise<Instance> {
    const found = isId('instance', instanceId) ? await this.instances.get(instanceId) : undefined;
    if (!found || found.accountId !== caller.accountId) throw notFound(instanceId);
    return found;
  }

  list(caller: Caller, page: { limit: number; nextToken?: string }): Promise<Page<Instance>> {
    return this.instances.list(caller.accountId, page);
  }

  /**
   * Attaches a volume as `device`. Attaching a volume again as the same device (and boot index, if
   * given) changes nothing; a volume attached to another instance is a 409 naming it.
   */
  async attach(caller: Caller, instanceId: string, input: VolumeAttachmentInput): Promise<Instance> {
    requirePermission(caller, 'instance:manage');
    const current = await this.get(caller, instanceId);
    const already = current.volumes.find((v) => v.volumeId === input.volumeId);
    if (already) {
      if (already.device === input.device && (input.bootIndex ?? already.bootIndex) === already.bootIndex)
        return current;
      throw new VolsnapError(
        'instance.volumeAttached',
        `Volume ${input.volumeId} is attached to ${instanceId} as ${already.device} (boot index ${already.bootIndex}): detach it first to attach it otherwise.`,
        { details: { volumeId: input.volumeId, instanceId, device: already.device } },
      );
    }
    if (current.volumes.length >= MAX_INSTANCE_VOLUMES) {
      throw new VolsnapError(
        'request.invalid',
        `Instance ${instanceId} has ${MAX_INSTANCE_VOLUMES} volumes, the most it can have.`,
      );
    }
    const next = Math.max(-1, ...current.volumes.map((v) => v.bootIndex)) + 1;
    const added = attachment(current.volumes, input, input.bootIndex ?? next);
    await this.#attachable(caller, instanceId, added.volumeId);
    return this.#replace(current, { volumes: byBootIndex([...current.volumes, added]) });
  }

  /** Detaches a volume (it stays, with its snapshots); one not attached to the instance is a 404. */
  async detach(caller: Caller, instanceId: string, volumeId: string): Promise<Instance> {
    requirePermission(caller, 'instance:manage');
    const current = await this.get(caller, instanceId);
    if (!current.volumes.some((v) => v.volumeId === volumeId)) {
      throw new VolsnapError(
        'volume.notFound',
        `Volume ${volumeId} is not attached to instance ${instanceId}.`,
        { details: { volumeId, instanceId } },
      );
    }
    return this.#replace(current, { volumes: current.volumes.filter((v) => v.volumeId !== volumeId) });
  }

  /** Marks it running or stopped, renames it, or replaces its properties. */
  async update(caller: Caller, instanceId: string, changes: InstanceChanges): Promise<Instance> {
    requirePermission(caller, 'instance:manage');
    const current = await this.get(caller, instanceId);
    const update: Partial<Instance> = {};
    if (changes.name !== undefined) update.name = validateName(changes.name);
    if (changes.state !== undefined) update.state = validateState(changes.state);
    if (changes.properties !== undefined) update.properties = validateProperties(changes.properties);
    if (Object.keys(update).length === 0) return current;
    return this.#replace(current, update);
  }

  /** Deletes the instance: its volumes are detached and stay, and so do images taken of it. */
  async delete(caller: Caller, instanceId: string): Promise<void> {
    requirePermission(caller, 'instance:manage');
    const current = await this.get(caller, instanceId);
    if (!(await this.instances.delete(current))) throw changed(instanceId);
  }

  async #replace(current: Instance, changes: Partial<Instance>): Promise<Instance> {
    const next: Instance = {
      ...current,
      ...changes,
      updatedAt: isoTime(this.clock.now()),
      revision: current.revision + 1,
    };
    if (!(await this.instances.replace(current, next))) throw changed(current.instanceId);
    return next;
  }

  /** The volume must be the caller's, in this region, and attached to no other instance. */
  async #attachable(caller: Caller, instanceId: string, volumeId: string): Promise<void> {
    const volume = isId('volume', volumeId) ? await this.volumes.get(caller.accountId, volumeId) : undefined;
    if (!volume) {
      throw new VolsnapError('volume.notFound', `No volume ${volumeId} in this account and region.`, {
        details: { volumeId },
      });
    }
    const holder = await this.instances.attachedTo(volumeId);
    if (holder !== undefined && holder !== instanceId) {
      throw new VolsnapError(
        'instance.volumeAttached',
        `Volume ${volumeId} is attached to instance ${holder}: a volume attaches to one instance at a time. Detach it there first (volsnap instance detach ${holder} ${volumeId}).`,
        { details: { volumeId, instanceId: holder } },
      );
    }
  }
}

/** A new attachment, checked against those the instance has. */
function attachment(
  existing: readonly AttachedVolume[],
  input: VolumeAttachmentInput,
  bootIndex: number,
): AttachedVolume {
  if (typeof input.device !== 'string' || !DEVICE.test(input.device)) {
    throw new VolsnapError(
      'request.invalid',
      `Device '${String(input.device).slice(0, 64)}' is not a device name: write /dev/ and a name of lower-case letters and digits, e.g. /dev/vda or /dev/nvme0n1.`,
    );
  }
  if (!Number.isInteger(bootIndex) || bootIndex < 0 || bootIndex > MAX_BOOT_INDEX) {
    throw new VolsnapError(
      'request.invalid',
      `A boot index is a whole number from 0 (boots first) to ${MAX_BOOT_INDEX}; ${bootIndex} was given.`,
    );
  }
  for (const other of existing) {
    if (other.volumeId === input.volumeId) {
      throw new VolsnapError('request.invalid', `Volume ${input.volumeId} is given twice.`);
    }
    if (other.device === input.device) {
      throw new VolsnapError(
        'request.invalid',
        `Device ${input.device} is taken by volume ${other.volumeId}: give each volume its own device.`,
      );
    }
    if (other.bootIndex === bootIndex) {
      throw new VolsnapError(
        'request.invalid',
        `Boot index ${bootIndex} is taken by volume ${other.volumeId} (${other.device}): give each volume its own place in the boot order.`,
      );
    }
  }
  return { volumeId: input.volumeId, device: input.device, bootIndex };
}

/** In boot order. */
export function byBootIndex<T extends { bootIndex: number }>(volumes: readonly T[]): T[] {
  return [...volumes].sort((a, b) => a.bootIndex - b.bootIndex);
}

function validateName(name: string): string {
  if (typeof name === 'string') requirePrintable('The instance name', name);
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new VolsnapError(
      'request.invalid',
      'An instance name is 1–200 letters, digits, spaces and _.:/+-@()[].',
    );
  }
  return name;
}

function validateState(state: string): InstanceState {
  if (!(INSTANCE_STATES as readonly string[]).includes(state)) {
    throw new VolsnapError('request.invalid', `An instance is marked running or stopped, not '${state}'.`);
  }
  return state as InstanceState;
}

/** At most 50 properties; keys 1–128 of `A-Za-z0-9_.:-`, values up to 1024 characters. */
export function validateProperties(properties: Record<string, string>): Record<string, string> {
  const entries = Object.entries(properties ?? {});
  if (entries.length > MAX_PROPERTIES) {
    throw new VolsnapError(
      'request.invalid',
      `An instance has at most ${MAX_PROPERTIES} properties; ${entries.length} were given.`,
    );
  }
  for (const [key, value] of entries) {
    requirePrintable('A property key', key);
    if (typeof value === 'string') requirePrintable(`The value of property '${key}'`, value);
    if (!PROPERTY_KEY.test(key)) {
      throw new VolsnapError(
        'request.invalid',
        `Property '${key.slice(0, 64)}' is not allowed: use 1–128 letters, digits and _.:- (e.g. min_disk, base_image_ref).`,
      );
    }
    if (typeof value !== 'string' || value.length > MAX_PROPERTY_VALUE) {
      throw new VolsnapError(
        'request.invalid',
        `The value of property '${key}' is text of at most ${MAX_PROPERTY_VALUE} characters.`,
      );
    }
  }
  return { ...properties };
}

function notFound(instanceId: string): VolsnapError {
  return new VolsnapError('instance.notFound', `No instance ${instanceId} in this account and region.`, {
    details: { instanceId },
  });
}

function changed(instanceId: string): VolsnapError {
  return new VolsnapError(
    'instance.changed',
    `Instance ${instanceId} (or a volume being attached to it) changed meanwhile; read it again and retry.`,
    { details: { instanceId } },
  );
}
