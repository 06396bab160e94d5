import { MemoryIdentityRepository } from '../../../../lib/adapters/memory/identity.ts';
import { identityRepositoryContract } from '../../../support/identity-repository-contract.ts';

identityRepositoryContract('memory', async () => new MemoryIdentityRepository());
