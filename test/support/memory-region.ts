import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../lib/adapters/clock.ts';
import { MemoryExportRepository } from '../../lib/adapters/memory/exports.ts';
import { MemoryAuditLog, MemoryIdentityRepository } from '../../lib/adapters/memory/identity.ts';
import { MemoryImageRepository } from '../../lib/adapters/memory/images.ts';
import { MemoryInstanceRepository } from '../../lib/adapters/memory/instances.ts';
import { MemoryObjectStore } from '../../lib/adapters/memory/objects.ts';
import { MemoryPolicyRepository } from '../../lib/adapters/memory/policies.ts';
import { MemoryWorkQueue } from '../../lib/adapters/memory/queue.ts';
import { MemoryRequestCounter } from '../../lib/adapters/memory/request-counter.ts';
import { MemorySnapshotRepository } from '../../lib/adapters/memory/snapshots.ts';
import { MemoryUploadSlots } from '../../lib/adapters/memory/uploads.ts';
import { MemoryVolumeRepository } from '../../lib/adapters/memory/volumes.ts';
import { LocalKeySealer } from '../../lib/adapters/secrets/aes-gcm.ts';
import { createZstdCompressor } from '../../lib/adapters/zstd.ts';
import { bootstrapAccount } from '../../lib/core/identity/accounts.ts';
import type { Caller } from '../../lib/core/identity/identity.ts';
import type { SecretSealer } from '../../lib/core/ports/secrets.ts';
import { VolsnapError } from '../../lib/core/shared/errors.ts';
import type { RemoteOpener } from '../../lib/core/tasks/imports.ts';
import { Cloud, type Region, type RegionPorts, type RegionSettings } from '../../lib/wiring/region.ts';
import { type RegionServices, servicesOf } from '../../lib/wiring/services.ts';
import { testCaller } from './callers.ts';

/** A region's ports in memory, typed as the memory adapters so tests can look inside them. */
export interface MemoryPorts extends RegionPorts {
  readonly clock: ManualClock;
  readonly identity: MemoryIdentityRepository;
  readonly audit: MemoryAuditLog;
  readonly requests: MemoryRequestCounter;
  readonly volumes: MemoryVolumeRepository;
  readonly snapshots: MemorySnapshotRepository;
  readonly exports: MemoryExportRepository;
  readonly policies: MemoryPolicyRepository;
  readonly instances: MemoryInstanceRepository;
  readonly images: MemoryImageRepository;
  readonly uploads: MemoryUploadSlots;
  readonly objects: MemoryObjectStore;
  readonly queue: MemoryWorkQueue;
  /** The region's other buckets, made on first use. */
  readonly buckets: Map<string, MemoryObjectStore>;
}

/** One region over memory adapters, wired by lib/wiring exactly as lib/root.ts wires one over AWS. */
export interface MemoryRegion extends RegionServices {
  readonly name: string;
  readonly clock: ManualClock;
  readonly ports: MemoryPorts;
  /** The wiring itself: for a factory the services above do not name, or `maintenanceOptions`. */
  readonly region: Region;
  /** A new account of that name (its owner as the caller), as `volsnap bootstrap` makes one. */
  account(name: string, options?: { operator?: boolean }): Promise<Caller>;
}

export interface MemoryRegionOptions {
  /** The region's bucket (`region-bucket` unless given). */
  bucket?: string;
  /** Settings besides the name and bucket (image and export buckets, quotas, tuning). */
  settings?: Partial<Omit<RegionSettings, 'name'>>;
  /** Opens the URL an import reads from (none by default: an import from a URL fails). */
  openRemote?: RemoteOpener;
  clock?: ManualClock;
  /** The store of the region's bucket, for a test that wraps one (a new one on the region's clock by default). */
  objects?: MemoryObjectStore;
  /** The deployment's sealer of SigV4 secrets (one random AES key per cloud by default). */
  secrets?: SecretSealer;
}

/** The regions of one deployment in memory: one clock, one identity (as the identity region's table is). */
export interface MemoryCloud {
  readonly clock: ManualClock;
  readonly identity: MemoryIdentityRepository;
  region(name: string): MemoryRegion;
}

/** One region, `eu-west-1` unless named, alone in its deployment. */
export function memoryRegion(name = 'eu-west-1', options: MemoryRegionOptions = {}): MemoryRegion {
  return memoryCloud([name], options).region(name);
}

/** Regions that know each other (copies, copy rules, image copies), each with its own stores. */
export function memoryCloud(names: readonly string[], options: MemoryRegionOptions = {}): MemoryCloud {
  const clock = options.clock ?? new ManualClock();
  const identity = new MemoryIdentityRepository();
  // One sealing key for the deployment, as KMS's is: every region opens what any region sealed.
  const secrets = options.secrets ?? new LocalKeySealer(randomBytes(32));
  const wired = new Map<string, MemoryRegion>();
  const cloud = new Cloud((name) => {
    if (!names.includes(name)) {
      throw new VolsnapError(
        'region.unknown',
        `Unknown region '${name}'. Known regions: ${names.join(', ')}.`,
      );
    }
    return memoryPorts(name, { ...options, clock, identity, secrets, knownRegions: names });
  });
  return {
    clock,
    identity,
    region(name) {
      let made = wired.get(name);
      if (!made) {
        made = memoryServices(cloud.region(name));
        wired.set(name, made);
      }
      return made;
    },
  };
}

/**
 * A region's ports in memory, for a test that wires some of its own (a repository over DynamoDB
 * Local) beside them; `memoryRegion` and `memoryCloud` wire these.
 */
export function memoryPorts(
  name: string,
  options: MemoryRegionOptions & {
    identity?: MemoryIdentityRepository;
    knownRegions?: readonly string[];
  } = {},
): MemoryPorts {
  const clock = options.clock ?? new ManualClock();
  const identity = options.identity ?? new MemoryIdentityRepository();
  const bucket = options.bucket ?? 'region-bucket';
  const volumes = new MemoryVolumeRepository();
  const snapshots = new MemorySnapshotRepository(volumes);
  // The store stamps objects with the region's clock, so tests age them by advancing it.
  const objects = options.objects ?? new MemoryObjectStore(() => clock.now());
  const buckets = new Map<string, MemoryObjectStore>();
  // Each region its own token key, as each deployment's secret is its own.
  const tokenKey = randomBytes(32);
  return {
    settings: {
      name,
      bucket,
      imageBuckets: [],
      exportBuckets: [],
      knownRegions: options.knownRegions ?? [name],
      ...options.settings,
    },
    clock,
    identity,
    audit: new MemoryAuditLog(),
    requests: new MemoryRequestCounter(),
    volumes,
    snapshots,
    exports: new MemoryExportRepository(snapshots.counters),
    policies: new MemoryPolicyRepository(),
    instances: new MemoryInstanceRepository(),
    images: new MemoryImageRepository(),
    uploads: new MemoryUploadSlots(),
    objects,
    buckets,
    objectsIn: (other) => {
      if (other === bucket) return objects;
      let store = buckets.get(other);
      if (!store) {
        store = new MemoryObjectStore(() => clock.now());
        buckets.set(other, store);
      }
      return store;
    },
    queue: new MemoryWorkQueue(),
    compressor: createZstdCompressor(),
    secrets: options.secrets ?? new LocalKeySealer(randomBytes(32)),
    openRemote:
      options.openRemote ??
      (async () => {
        throw new Error('no URLs here');
      }),
    tokenKey: async () => tokenKey,
  };
}

function memoryServices(region: Region): MemoryRegion {
  const ports = region.ports as MemoryPorts;
  const extra = {
    name: region.name,
    clock: ports.clock,
    ports,
    region,
    account: async (name: string, options: { operator?: boolean } = {}) =>
      testCaller({
        accountId: (await bootstrapAccount(ports.identity, ports.clock, { name, ...options })).account
          .accountId,
        operator: options.operator === true,
      }),
  };
  return Object.defineProperties(servicesOf(region), Object.getOwnPropertyDescriptors(extra)) as MemoryRegion;
}
