import { DynamoPolicyRepository } from '../../lib/adapters/dynamodb/policies.ts';
import { freshRegion } from '../support/emulators.ts';
import { policyRepositoryContract } from '../support/policy-repository-contract.ts';

policyRepositoryContract('DynamoDB', async () => {
  const { entry, clients } = await freshRegion();
  return new DynamoPolicyRepository(clients.documents, entry.table);
});
