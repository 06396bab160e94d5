import { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { SqsWorkQueue } from '../../lib/adapters/sqs/queue.ts';
import { parseWorkMessage, type WorkMessage } from '../../lib/core/ports/queue.ts';
import { newId } from '../../lib/core/shared/ids.ts';
import { LOCAL_CREDENTIALS } from '../../scripts/local-cloud/cloud.ts';
import { LocalQueues } from '../../scripts/local-cloud/sqs-dispatcher.ts';
import { workQueueContract } from '../support/work-queue-contract.ts';

const REGION = 'eu-west-1';
const sqsClient = (port: number) =>
  new SQSClient({ region: REGION, endpoint: `http://127.0.0.1:${port}`, credentials: LOCAL_CREDENTIALS });

// The SQS adapter against the local cloud's SQS endpoint alone (no other part of the cloud): the
// unmodified SQS client sends, and the consumer reads each body as the worker function does.
workQueueContract('SQS (the local cloud’s endpoint)', async () => {
  const queues = new LocalQueues();
  const delivered: WorkMessage[] = [];
  queues.add({
    name: 'work',
    region: REGION,
    maxReceiveCount: 3,
    retryDelayMs: 10,
    consumer: async (event) => {
      for (const record of event.Records) {
        const message = parseWorkMessage(record.body);
        if (message) delivered.push(message);
      }
      return [];
    },
  });
  const port = await queues.listen(0);
  return {
    queue: new SqsWorkQueue(sqsClient(port), queues.queueUrl(port, 'work')),
    delivered: async () => {
      await queues.idle();
      return delivered;
    },
    close: () => queues.close(),
  };
});

describe('SqsWorkQueue, when the queue cannot take the message', () => {
  const message: WorkMessage = { kind: 'snapshot.fromImage', snapshotId: newId('snapshot') };

  it('says the deployment has no queue when it was given no URL', async () => {
    await expect(new SqsWorkQueue(sqsClient(1), undefined).send(message)).rejects.toMatchObject({
      code: 'internal',
    });
  });

  it('answers storage.unavailable when the queue does not exist or does not answer', async () => {
    const queues = new LocalQueues();
    const port = await queues.listen(0);
    try {
      const missing = new SqsWorkQueue(sqsClient(port), queues.queueUrl(port, 'nowhere'));
      await expect(missing.send(message)).rejects.toMatchObject({ code: 'storage.unavailable' });
    } finally {
      await queues.close();
    }
    const closed = new SqsWorkQueue(sqsClient(port), queues.queueUrl(port, 'work'));
    await expect(closed.send(message)).rejects.toMatchObject({ code: 'storage.unavailable' });
  });
});

describe('the local queue, delivering', () => {
  it('runs at most maxConcurrency deliveries of a queue at once; the rest wait, none is lost', async () => {
    const queues = new LocalQueues();
    let running = 0;
    let most = 0;
    const done: string[] = [];
    queues.add({
      name: 'parts',
      region: REGION,
      maxReceiveCount: 3,
      retryDelayMs: 10,
      maxConcurrency: 2,
      consumer: async (event) => {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 30));
        running--;
        for (const record of event.Records) done.push(record.body);
        return [];
      },
    });
    const port = await queues.listen(0);
    try {
      const queue = new SqsWorkQueue(sqsClient(port), queues.queueUrl(port, 'parts'));
      const snapshotId = newId('snapshot');
      for (let part = 0; part < 6; part++) await queue.send({ kind: 'snapshot.copyPart', snapshotId, part });
      await queues.idle();
      expect(done).toHaveLength(6);
      expect(most).toBe(2);
    } finally {
      await queues.close();
    }
  });
});
