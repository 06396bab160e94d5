import { DynamoVerificationRepository } from '../../lib/adapters/dynamodb/verifications.ts';
import { freshRegion } from '../support/emulators.ts';
import { verificationRepositoryContract } from '../support/verification-repository-contract.ts';

verificationRepositoryContract('DynamoDB', async () => {
  const { entry, clients } = await freshRegion();
  return new DynamoVerificationRepository(clients.documents, entry.table);
});
