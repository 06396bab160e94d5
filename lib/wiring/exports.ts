import { ExportService } from '../core/tasks/exports.ts';
import { accountService } from './identity.ts';
import type { Factory } from './region.ts';
import { snapshotService } from './snapshots.ts';

/** Exports of snapshots into this region's bucket, or the other buckets the deployment allows. */
export const exportService: Factory<ExportService> = (region) => {
  const { exports, objects, objectsIn, queue, clock, compressor } = region.ports;
  return new ExportService({
    exports,
    snapshots: region.get(snapshotService),
    objects,
    queue,
    clock,
    region: region.name,
    compressor,
    buckets: [...region.settings.exportBuckets],
    objectsIn,
    limits: (accountId) => region.get(accountService).limits(accountId),
    ...region.tuning.exports,
  });
};
