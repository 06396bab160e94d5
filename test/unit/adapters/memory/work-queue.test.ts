import { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import { workQueueContract } from '../../../support/work-queue-contract.ts';

workQueueContract('in memory', async () => {
  const queue = new MemoryWorkQueue();
  return { queue, delivered: async () => queue.messages };
});
