import type { AccountService } from '../core/identity/accounts.ts';
import type { Caller } from '../core/identity/identity.ts';
import type { RequestLimiter } from '../core/identity/request-rate.ts';
import type { ImageService } from '../core/instances/images.ts';
import type { InstanceService } from '../core/instances/instances.ts';
import type { MaintenanceJobs } from '../core/maintenance/maintenance.ts';
import type { PolicyService } from '../core/maintenance/policies.ts';
import type { AuditLog } from '../core/ports/audit.ts';
import type { SnapshotService } from '../core/snapshots/snapshot-service.ts';
import type { ExportService } from '../core/tasks/exports.ts';
import type { ImageSnapshotter } from '../core/tasks/image-snapshot.ts';
import type { SnapshotImporter } from '../core/tasks/imports.ts';
import type { SnapshotCopier } from '../core/tasks/snapshot-copy.ts';
import type { VerificationService } from '../core/tasks/verifications.ts';
import type { VolumeService } from '../core/volumes/volumes.ts';
import { snapshotCopier } from './copies.ts';
import { exportService } from './exports.ts';
import { accountService, authenticator, requestLimiter } from './identity.ts';
import { imageSnapshotter } from './image-snapshots.ts';
import { imageService } from './images.ts';
import { snapshotImporter } from './imports.ts';
import { instanceService } from './instances.ts';
import { maintenanceJobs } from './maintenance.ts';
import { policyService } from './policies.ts';
import type { Factory, Region } from './region.ts';
import { snapshotService, volumeService } from './snapshots.ts';
import { verificationService } from './verifications.ts';

/** Every service of a region, by name: what the tests drive (functions import only their factories). */
export interface RegionServices {
  /** Resolves an Authorization header to the caller, or undefined for any bad or missing key. */
  authenticate(authorization: string | undefined): Promise<Caller | undefined>;
  readonly accounts: AccountService;
  /** Each account's request rate in this region (the HTTP stack counts every authenticated request). */
  readonly limiter: RequestLimiter;
  readonly audit: AuditLog;
  readonly volumes: VolumeService;
  readonly snapshots: SnapshotService;
  /** Server-side snapshots of image-backed volumes (the worker's use case). */
  readonly imageSnapshotter: ImageSnapshotter;
  /** Copies of snapshots from any region into this one. */
  readonly copier: SnapshotCopier;
  readonly exports: ExportService;
  /** Re-reads of stored snapshots' blocks (`snapshot verify`, the scrub). */
  readonly verifications: VerificationService;
  readonly importer: SnapshotImporter;
  /** The scheduled jobs (GC, reaper, expiry, policies), also run on demand by the operator. */
  readonly jobs: MaintenanceJobs;
  /** Snapshot policies of this region (their CRUD; the scheduled runner reads the repository). */
  readonly policies: PolicyService;
  /** Instances (their volumes, devices, properties) and images of them (instance snapshots). */
  readonly instances: InstanceService;
  readonly images: ImageService;
}

type Built = Exclude<keyof RegionServices, 'authenticate' | 'audit'>;

/** The factory of each service {@link servicesOf} names. */
const FACTORIES: { readonly [K in Built]: Factory<RegionServices[K]> } = {
  accounts: accountService,
  limiter: requestLimiter,
  volumes: volumeService,
  snapshots: snapshotService,
  imageSnapshotter,
  copier: snapshotCopier,
  exports: exportService,
  verifications: verificationService,
  importer: snapshotImporter,
  jobs: maintenanceJobs,
  policies: policyService,
  instances: instanceService,
  images: imageService,
};

/**
 * The services of a region by name, each made on first read. This module imports every factory:
 * a function that wants a bundle with only its own services imports the factories it uses instead.
 */
export function servicesOf(region: Region): RegionServices {
  const services = {
    authenticate: (authorization: string | undefined) => region.get(authenticator)(authorization),
    get audit() {
      return region.ports.audit;
    },
  };
  for (const name of Object.keys(FACTORIES) as Built[]) {
    Object.defineProperty(services, name, {
      enumerable: true,
      get: () => region.get<unknown>(FACTORIES[name]),
    });
  }
  return services as RegionServices;
}
