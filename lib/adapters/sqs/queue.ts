import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { WorkMessage, WorkQueue } from '../../core/ports/queue.ts';
import { VolsnapError } from '../../core/shared/errors.ts';

/** The region's work queue on SQS (the local cloud answers the same protocol). */
export class SqsWorkQueue implements WorkQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string | undefined,
  ) {}

  async send(message: WorkMessage): Promise<void> {
    if (!this.queueUrl)
      throw new VolsnapError(
        'internal',
        'The deployment is misconfigured: it has no work queue (VOLSNAP_QUEUE_URL).',
      );
    try {
      await this.sqs.send(
        new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(message) }),
      );
    } catch (cause) {
      throw new VolsnapError(
        'storage.unavailable',
        'The work queue did not take the message; retry shortly.',
        { cause },
      );
    }
  }
}
