import { MemoryImageRepository } from '../../../../lib/adapters/memory/images.ts';
import { imageRepositoryContract } from '../../../support/image-repository-contract.ts';

imageRepositoryContract('in memory', async () => new MemoryImageRepository());
