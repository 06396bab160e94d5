import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WorkMessage, WorkQueue } from '../../lib/core/ports/queue.ts';
import { newId } from '../../lib/core/shared/ids.ts';

export interface WorkQueueFixture {
  queue: WorkQueue;
  /** Every message delivered so far to the queue's consumer, once the deliveries under way are done. */
  delivered(): Promise<WorkMessage[]>;
  close?(): Promise<void>;
}

const byContent = (messages: WorkMessage[]) => messages.map((m) => JSON.stringify(m)).sort();

/** The behaviour every WorkQueue must have; run against each implementation. */
export function workQueueContract(name: string, makeFixture: () => Promise<WorkQueueFixture>) {
  describe(`WorkQueue contract: ${name}`, () => {
    let f: WorkQueueFixture;

    beforeEach(async () => {
      f = await makeFixture();
    });
    afterEach(async () => {
      await f.close?.();
    });

    it('delivers every kind of message with its fields as sent', async () => {
      const snapshotId = newId('snapshot');
      const sent: WorkMessage[] = [
        { kind: 'snapshot.fromImage', snapshotId },
        { kind: 'snapshot.fromImagePart', snapshotId, part: 0 },
        { kind: 'snapshot.copyPart', snapshotId, part: 7 },
        { kind: 'snapshot.importPart', snapshotId, part: 12 },
        { kind: 'snapshot.verifyPart', snapshotId, part: 3 },
        { kind: 'snapshot.checkSegment', snapshotId, segmentId: newId('segment') },
        { kind: 'export.part', exportId: newId('export'), part: 9999 },
      ];
      for (const message of sent) await f.queue.send(message);
      expect(byContent(await f.delivered())).toEqual(byContent(sent));
    });

    it('delivers a message as it was when sent: changing the object afterwards changes nothing', async () => {
      const message = { kind: 'snapshot.copyPart' as const, snapshotId: newId('snapshot'), part: 1 };
      await f.queue.send(message);
      message.part = 2;
      expect(await f.delivered()).toEqual([{ ...message, part: 1 }]);
    });

    it('loses none of many messages sent at once', async () => {
      const exportId = newId('export');
      const sent: WorkMessage[] = Array.from({ length: 25 }, (_, part) => ({
        kind: 'export.part',
        exportId,
        part,
      }));
      await Promise.all(sent.map((message) => f.queue.send(message)));
      expect(byContent(await f.delivered())).toEqual(byContent(sent));
    });
  });
}
