import { DynamoInstanceRepository } from '../../lib/adapters/dynamodb/instances.ts';
import { freshRegion } from '../support/emulators.ts';
import { instanceRepositoryContract } from '../support/instance-repository-contract.ts';

instanceRepositoryContract('DynamoDB', async () => {
  const { entry, clients } = await freshRegion();
  return new DynamoInstanceRepository(clients.documents, entry.table);
});
