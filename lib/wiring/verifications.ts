import { VerificationService } from '../core/tasks/verifications.ts';
import type { Factory } from './region.ts';
import { snapshotService } from './snapshots.ts';

/** Re-reads of stored snapshots' blocks by workers (`snapshot verify`, the daily scrub). */
export const verificationService: Factory<VerificationService> = (region) => {
  const { verifications, snapshots, objects, queue, clock, compressor, audit } = region.ports;
  return new VerificationService({
    verifications,
    snapshots,
    service: region.get(snapshotService),
    objects,
    queue,
    clock,
    compressor,
    audit,
    region: region.name,
    ...region.tuning.verifications,
  });
};
