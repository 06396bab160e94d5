import { SnapshotImporter } from '../core/tasks/imports.ts';
import { accountService } from './identity.ts';
import type { Factory } from './region.ts';
import { snapshotService } from './snapshots.ts';

/** Imports of snapshots from URLs and from files uploaded into this region. */
export const snapshotImporter: Factory<SnapshotImporter> = (region) => {
  const { openRemote, snapshots, volumes, objects, compressor, clock, uploads } = region.ports;
  return new SnapshotImporter({
    open: openRemote,
    snapshots,
    volumes,
    objects,
    service: region.get(snapshotService),
    compressor,
    clock,
    region: region.name,
    uploads,
    limits: (accountId) => region.get(accountService).limits(accountId),
    ...region.tuning.imports,
  });
};
