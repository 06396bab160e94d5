import { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import { objectStoreContract } from '../../../support/object-store-contract.ts';

objectStoreContract('in memory', async () => new MemoryObjectStore());
