import { SnapshotImporter } from '../core/tasks/imports.ts';
import { accountService } from './identity.ts';
import type { Factory } from './region.ts';
import { snapshotService, snapshotStores } from './snapshots.ts';

/** Imports of snapshots from URLs and from files uploaded into this region. */
export const snapshotImporter: Factory<SnapshotImporter> = (region) =>
  new SnapshotImporter({
    ...snapshotStores(region),
    open: region.ports.openRemote,
    service: region.get(snapshotService),
    clock: region.ports.clock,
    region: region.name,
    uploads: region.ports.uploads,
    limits: (accountId) => region.get(accountService).limits(accountId),
    ...region.tuning.imports,
  });
