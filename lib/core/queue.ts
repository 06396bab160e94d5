/** Work for the workers. The queue is only a doorbell: a lost or repeated message does no harm. */
export type WorkMessage = { kind: 'snapshot.fromImage'; snapshotId: string };

/** Where work is announced (SQS on AWS and in the local cloud, memory in unit tests). */
export interface WorkQueue {
  send(message: WorkMessage): Promise<void>;
}

export function parseWorkMessage(body: string): WorkMessage | undefined {
  try {
    const message = JSON.parse(body) as Partial<WorkMessage>;
    if (message.kind === 'snapshot.fromImage' && typeof message.snapshotId === 'string')
      return { kind: message.kind, snapshotId: message.snapshotId };
  } catch {
    // not JSON: not ours
  }
  return undefined;
}
