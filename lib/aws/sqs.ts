import { createSqsClient } from '../adapters/aws-clients.ts';
import { SqsWorkQueue } from '../adapters/sqs/queue.ts';
import type { PortSet } from '../root.ts';

/** A region's work queue. */
export const queuePorts: PortSet = {
  queue: (context) => {
    const entry = context.config.registry.get(context.name);
    return new SqsWorkQueue(
      context.shared(`sqs:${context.name}`, () => createSqsClient(entry)),
      entry.queueUrl,
    );
  },
};
