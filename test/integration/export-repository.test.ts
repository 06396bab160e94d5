import { DynamoExportRepository } from '../../lib/adapters/dynamodb/exports.ts';
import { freshRegion } from '../support/emulators.ts';
import { exportRepositoryContract } from '../support/export-repository-contract.ts';

exportRepositoryContract('DynamoDB', async () => {
  const { entry, clients } = await freshRegion();
  return new DynamoExportRepository(clients.documents, entry.table);
});
