import {
  DEFAULT_GC_GRACE_MS,
  Maintenance,
  MaintenanceJobs,
  type MaintenanceOptions,
} from '../core/maintenance/maintenance.ts';
import { type PolicyRegion, PolicyRunner } from '../core/maintenance/policy-runner.ts';
import { RegionCheck } from '../core/maintenance/region-check.ts';
import { scrub } from '../core/maintenance/scrub.ts';
import { snapshotCopier } from './copies.ts';
import { exportService } from './exports.ts';
import type { Factory, Region } from './region.ts';
import { snapshotService } from './snapshots.ts';
import { verificationService } from './verifications.ts';

/**
 * What the region's GC, reaper and expiry run over. A function, not a factory: a test that injects a
 * fault replaces one part of it and keeps the rest as the region wires it.
 */
export function maintenanceOptions(region: Region): MaintenanceOptions {
  const { snapshots, objects, exports, queue, clock } = region.ports;
  return {
    snapshots,
    service: region.get(snapshotService),
    objects,
    exports,
    exportService: region.get(exportService),
    verifications: { records: region.ports.verifications, service: region.get(verificationService) },
    queue,
    clock,
    ...region.tuning.maintenance,
  };
}

/** A region as policies use it: its snapshots, and copies into it for copy rules that name it. */
export function policyRegionOf(region: Region): PolicyRegion {
  return {
    snapshots: region.ports.snapshots,
    service: region.get(snapshotService),
    copier: region.get(snapshotCopier),
  };
}

export const policyRunner: Factory<PolicyRunner> = (region) =>
  new PolicyRunner({
    policies: region.ports.policies,
    volumes: region.ports.volumes,
    clock: region.ports.clock,
    region: region.name,
    regionOf: (name) => policyRegionOf(region.region(name)),
  });

/** The scheduled jobs (GC, reaper, expiry, policies), also run on demand by the operator. */
export const maintenanceJobs: Factory<MaintenanceJobs> = (region) =>
  new MaintenanceJobs(
    () => new Maintenance(maintenanceOptions(region)),
    () => region.get(policyRunner),
    () =>
      scrub({
        snapshots: region.ports.snapshots,
        verifications: region.ports.verifications,
        service: region.get(verificationService),
        ...(region.tuning.scrub ? { limits: region.tuning.scrub } : {}),
      }),
  );

/** The operator's check of the region's stored data (`volsnap admin check`). */
export const regionCheck: Factory<RegionCheck> = (region) =>
  new RegionCheck({
    identity: region.ports.identity,
    snapshots: region.ports.snapshots,
    objects: region.ports.objects,
    clock: region.ports.clock,
    region: region.name,
    gcGraceMs: region.tuning.maintenance?.gcGraceMs ?? DEFAULT_GC_GRACE_MS,
  });
