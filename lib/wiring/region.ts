import type { TokenKeySource } from '../core/direct/tokens.ts';
import type { IdentityRepository, QuotaLimits } from '../core/identity/accounts.ts';
import type { IdentityLookups } from '../core/identity/replica-identity.ts';
import type { RequestCounter } from '../core/identity/request-rate.ts';
import type { ImageRepository, ImageServiceOptions } from '../core/instances/images.ts';
import type { InstanceRepository } from '../core/instances/instances.ts';
import type { MaintenanceOptions } from '../core/maintenance/maintenance.ts';
import type { PolicyRepository } from '../core/maintenance/policies.ts';
import type { ScrubLimits } from '../core/maintenance/scrub.ts';
import type { AuditLog } from '../core/ports/audit.ts';
import type { Compressor } from '../core/ports/codec.ts';
import type { ObjectStore } from '../core/ports/objects.ts';
import type { WorkQueue } from '../core/ports/queue.ts';
import type { SecretSealer } from '../core/ports/secrets.ts';
import type { Clock } from '../core/shared/clock.ts';
import type { SnapshotServiceOptions } from '../core/snapshots/snapshot-service.ts';
import type { SnapshotRepository } from '../core/snapshots/snapshots.ts';
import type { ExportRepository, ExportServiceOptions } from '../core/tasks/exports.ts';
import type { ImageSnapshotterOptions } from '../core/tasks/image-snapshot.ts';
import type { RemoteOpener, SnapshotImporterOptions } from '../core/tasks/imports.ts';
import type { SnapshotCopierOptions } from '../core/tasks/snapshot-copy.ts';
import type { UploadSlots } from '../core/tasks/uploads.ts';
import type { VerificationRepository, VerificationServiceOptions } from '../core/tasks/verifications.ts';
import type { VolumeRepository } from '../core/volumes/volumes.ts';

/**
 * The knobs of a region's services, each a default unless set: a deployment sets the GC grace
 * period; tests shrink parts, leases and timeouts to exercise them with a few blocks.
 */
export interface RegionTuning {
  snapshots?: Pick<
    SnapshotServiceOptions,
    'uploadTimeoutMs' | 'urlTtlSeconds' | 'leaseMs' | 'inlineVerifyBytes' | 'verifySegmentsPerPart'
  >;
  copies?: Pick<SnapshotCopierOptions, 'partBlocks' | 'readConcurrency' | 'runBytes'>;
  exports?: Pick<ExportServiceOptions, 'partSize' | 'leaseMs' | 'readConcurrency' | 'runBytes'>;
  verifications?: Pick<VerificationServiceOptions, 'segmentsPerPart' | 'leaseMs'>;
  imports?: Pick<
    SnapshotImporterOptions,
    'partBlocks' | 'readConcurrency' | 'rangeBytes' | 'uploadPartSize' | 'urlsPerRequest'
  >;
  imageSnapshots?: Pick<ImageSnapshotterOptions, 'readConcurrency' | 'rangeBytes' | 'partBytes'>;
  maintenance?: Pick<MaintenanceOptions, 'gcGraceMs' | 'leaseMs' | 'maxDispatches' | 'uploadGraceMs'>;
  images?: Pick<ImageServiceOptions, 'agentTimeoutMs'>;
  /** The daily scrub's sample (`VOLSNAP_SCRUB_COUNT`, `VOLSNAP_SCRUB_BYTES`). */
  scrub?: Partial<ScrubLimits>;
}

/** What a region's services know of the deployment (from its configuration, never the environment). */
export interface RegionSettings {
  /** The region's name, as the region registry knows it. */
  name: string;
  /** The region's own bucket: segments, manifests, uploads, and image objects by default. */
  bucket: string;
  /** Buckets besides the region's that image-backed volumes may be read from. */
  imageBuckets: readonly string[];
  /** Buckets besides the region's that exports may be written to. */
  exportBuckets: readonly string[];
  /** Every region of the deployment (policies' copy rules may name them). */
  knownRegions: readonly string[];
  /** Default per-region limits of an account (DEFAULT_QUOTA unless set). */
  defaultQuota?: QuotaLimits;
  tuning?: RegionTuning;
}

/**
 * Everything a region's services are built from: its settings, its clock and its adapters, none of
 * them bound to an SDK here. `lib/root.ts` makes them over DynamoDB, S3 and SQS (from the port sets
 * of lib/aws a function provides); the tests over the in-memory adapters. A property may be a getter
 * that makes its adapter on first read (the root's are), so a function pays only for the adapters
 * the services it touches use.
 */
export interface RegionPorts {
  readonly settings: RegionSettings;
  readonly clock: Clock;
  /** Accounts, users and keys: the identity region's, the same for every region of a deployment. */
  readonly identity: IdentityRepository;
  /**
   * Where each request reads identity (its key, user, account and limits): this region's replica
   * first, where it has one; `identity` unless given.
   */
  readonly identityLookups?: IdentityLookups;
  readonly audit: AuditLog;
  readonly requests: RequestCounter;
  readonly volumes: VolumeRepository;
  readonly snapshots: SnapshotRepository;
  readonly exports: ExportRepository;
  readonly verifications: VerificationRepository;
  readonly policies: PolicyRepository;
  readonly instances: InstanceRepository;
  readonly images: ImageRepository;
  readonly uploads: UploadSlots;
  /** The region's bucket. */
  readonly objects: ObjectStore;
  /** A store over another bucket (image objects, export targets); the region's own for its bucket. */
  readonly objectsIn: (bucket: string) => ObjectStore;
  readonly queue: WorkQueue;
  readonly compressor: Compressor;
  /** Opens the URL an import reads from. */
  readonly openRemote: RemoteOpener;
  /** Seals and unseals SigV4 secret access keys: one key for the deployment (every region opens every seal). */
  readonly secrets: SecretSealer;
  /** The deployment's key for the EBS direct API's block and page tokens (a secret; never logged). */
  readonly tokenKey: TokenKeySource;
}

/** Makes one service of a region from its ports and its other services ({@link Region.get}). */
export type Factory<T> = (region: Region) => T;

/**
 * One region's services, wired from its ports: each made by its {@link Factory} on first use, then
 * the same one for the life of the region (a Lambda container, a test). A factory takes what it
 * needs from `ports` and from the other factories, so a module that imports only some factories
 * carries only their services' code. Not safe to share between deployments; cheap to make.
 */
export class Region {
  readonly #made = new Map<Factory<unknown>, unknown>();
  readonly #elsewhere: (name: string) => Region;

  /** `elsewhere` reaches another region of the deployment (`region.unknown` for one it does not know). */
  constructor(
    readonly ports: RegionPorts,
    elsewhere: (name: string) => Region,
  ) {
    this.#elsewhere = elsewhere;
  }

  get name(): string {
    return this.ports.settings.name;
  }

  get settings(): RegionSettings {
    return this.ports.settings;
  }

  get tuning(): RegionTuning {
    return this.ports.settings.tuning ?? {};
  }

  /** The service `factory` makes for this region: made once, on first use. */
  get<T>(factory: Factory<T>): T {
    if (!this.#made.has(factory)) this.#made.set(factory, factory(this));
    return this.#made.get(factory) as T;
  }

  /** This region, or another as its own functions wire it (copies read it, copy rules write there). */
  region(name: string): Region {
    return name === this.name ? this : this.#elsewhere(name);
  }
}

/**
 * The regions of a deployment, each wired once from its ports on first use. `portsOf` makes a
 * region's ports (or throws `region.unknown`); it is asked at most once per name.
 */
export class Cloud {
  readonly #regions = new Map<string, Region>();
  readonly #portsOf: (name: string) => RegionPorts;

  constructor(portsOf: (name: string) => RegionPorts) {
    this.#portsOf = portsOf;
  }

  region(name: string): Region {
    let region = this.#regions.get(name);
    if (!region) {
      region = new Region(this.#portsOf(name), (other) => this.region(other));
      this.#regions.set(name, region);
    }
    return region;
  }
}

/**
 * An object whose every property is made by its maker on first read, then kept: how the root makes
 * a region's adapters (and their SDK clients) only when a service first needs them.
 */
export function lazily<T extends object>(makers: { [K in keyof T]: () => T[K] }): T {
  const made = {} as T;
  for (const key of Object.keys(makers) as (keyof T)[]) {
    let value: T[keyof T] | undefined;
    let done = false;
    Object.defineProperty(made, key, {
      enumerable: true,
      get: () => {
        if (!done) {
          value = makers[key]();
          done = true;
        }
        return value;
      },
    });
  }
  return made;
}
