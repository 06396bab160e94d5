import { DynamoSnapshotRepository } from '../../lib/adapters/dynamodb/snapshots.ts';
import { DynamoVolumeRepository } from '../../lib/adapters/dynamodb/volumes.ts';
import { freshRegion } from '../support/emulators.ts';
import { snapshotRepositoryContract } from '../support/snapshot-repository-contract.ts';

snapshotRepositoryContract('DynamoDB', async () => {
  const { entry, clients } = await freshRegion();
  return {
    volumes: new DynamoVolumeRepository(clients.documents, entry.table),
    snapshots: new DynamoSnapshotRepository(clients.documents, entry.table, () =>
      Math.floor(Date.now() / 1000),
    ),
  };
});
