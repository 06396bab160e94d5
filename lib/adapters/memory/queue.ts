import type { WorkMessage, WorkQueue } from '../../core/ports/queue.ts';

/** Messages kept in memory, for unit tests to deliver by hand. */
export class MemoryWorkQueue implements WorkQueue {
  readonly messages: WorkMessage[] = [];
  async send(message: WorkMessage): Promise<void> {
    // A copy, as SQS keeps the body it was sent: a sender changing its object later changes nothing.
    this.messages.push(structuredClone(message));
  }
}
