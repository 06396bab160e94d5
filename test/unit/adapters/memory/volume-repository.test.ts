import { MemoryVolumeRepository } from '../../../../lib/adapters/memory/volumes.ts';
import { volumeRepositoryContract } from '../../../support/volume-repository-contract.ts';

volumeRepositoryContract('in memory', async () => {
  const repo = new MemoryVolumeRepository();
  return {
    repo,
    recordSnapshot: async (volumeId, snapshotId) => {
      repo.snapshotsOf.set(volumeId, new Set([...(repo.snapshotsOf.get(volumeId) ?? []), snapshotId]));
    },
  };
});
