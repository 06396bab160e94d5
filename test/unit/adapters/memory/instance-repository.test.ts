import { MemoryInstanceRepository } from '../../../../lib/adapters/memory/instances.ts';
import { instanceRepositoryContract } from '../../../support/instance-repository-contract.ts';

instanceRepositoryContract('in memory', async () => new MemoryInstanceRepository());
