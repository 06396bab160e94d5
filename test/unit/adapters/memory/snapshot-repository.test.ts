import { MemorySnapshotRepository } from '../../../../lib/adapters/memory/snapshots.ts';
import { MemoryVolumeRepository } from '../../../../lib/adapters/memory/volumes.ts';
import { snapshotRepositoryContract } from '../../../support/snapshot-repository-contract.ts';

snapshotRepositoryContract('in memory', async () => {
  const volumes = new MemoryVolumeRepository();
  return { volumes, snapshots: new MemorySnapshotRepository(volumes) };
});
