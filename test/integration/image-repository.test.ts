import { DynamoImageRepository } from '../../lib/adapters/dynamodb/images.ts';
import { freshRegion } from '../support/emulators.ts';
import { imageRepositoryContract } from '../support/image-repository-contract.ts';

imageRepositoryContract('DynamoDB', async () => {
  const { entry, clients } = await freshRegion();
  return new DynamoImageRepository(clients.documents, entry.table);
});
