import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  createdOrder,
  snapshotKey,
  snapshotsOfVolumeIndex,
  volumeKey,
} from '../../lib/adapters/dynamodb/keys.ts';
import { DynamoVolumeRepository } from '../../lib/adapters/dynamodb/volumes.ts';
import { freshRegion } from '../support/emulators.ts';
import { volumeRepositoryContract } from '../support/volume-repository-contract.ts';

volumeRepositoryContract('DynamoDB', async () => {
  const { entry, clients } = await freshRegion();
  return {
    repo: new DynamoVolumeRepository(clients.documents, entry.table),
    // What the snapshot store does in one transaction: a snapshot item indexed under its volume,
    // and the volume's count of snapshots raised.
    recordSnapshot: async (volumeId, snapshotId) => {
      const createdAt = new Date().toISOString();
      await clients.documents.send(
        new PutCommand({
          TableName: entry.table,
          Item: {
            ...snapshotKey(snapshotId),
            snapshotId,
            volumeId,
            gsi2pk: snapshotsOfVolumeIndex(volumeId),
            gsi2sk: createdOrder(createdAt, snapshotId),
          },
        }),
      );
      await clients.documents.send(
        new UpdateCommand({
          TableName: entry.table,
          Key: volumeKey(volumeId),
          UpdateExpression: 'ADD snapshotCount :one',
          ExpressionAttributeValues: { ':one': 1 },
        }),
      );
    },
  };
});
