import { MemoryPolicyRepository } from '../../../../lib/adapters/memory/policies.ts';
import { policyRepositoryContract } from '../../../support/policy-repository-contract.ts';

policyRepositoryContract('in memory', async () => new MemoryPolicyRepository());
