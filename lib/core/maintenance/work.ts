import type { WorkMessage } from '../ports/queue.ts';
import type { Page } from '../shared/pagination.ts';
import type { Snapshot } from '../snapshots/snapshots.ts';

/** Work written by workers (a copy, an import, an image snapshot), not uploaded by a client. */
export function isServerWork(snapshot: Snapshot): boolean {
  return (
    !snapshot.verification &&
    (snapshot.copiedFrom !== undefined ||
      snapshot.importedFrom !== undefined ||
      snapshot.leaseUntil !== undefined)
  );
}

/** The messages that (re)start a pending server-side snapshot's unfinished work. */
export function workOf(snapshot: Snapshot): WorkMessage[] {
  const undone = unfinished(snapshot.parts ?? 0, snapshot.partsDone);
  const { snapshotId } = snapshot;
  if (snapshot.verification) return undone.map((part) => ({ kind: 'snapshot.verifyPart', snapshotId, part }));
  if (snapshot.copiedFrom) return undone.map((part) => ({ kind: 'snapshot.copyPart', snapshotId, part }));
  if (snapshot.importedFrom) return undone.map((part) => ({ kind: 'snapshot.importPart', snapshotId, part }));
  if (snapshot.direct) return undone.map((part) => ({ kind: 'snapshot.directPart', snapshotId, part }));
  if (snapshot.parts === undefined) return [{ kind: 'snapshot.fromImage', snapshotId }];
  return undone.map((part) => ({ kind: 'snapshot.fromImagePart', snapshotId, part }));
}

/**
 * The parts to send again: those not checkpointed, or when all are (a worker died between the last
 * checkpoint and finishing), the last one, whose redelivery counts it again and finishes the work.
 */
export function unfinished(parts: number, done: readonly number[] = []): number[] {
  const undone = Array.from({ length: parts }, (_, part) => part).filter((part) => !done.includes(part));
  return undone.length > 0 || parts === 0 ? undone : [parts - 1];
}

/** Every item of a paged listing. */
export async function* pages<T>(
  list: (page: { limit: number; nextToken?: string }) => Promise<Page<T>>,
): AsyncIterable<T> {
  let nextToken: string | undefined;
  do {
    const page = await list({ limit: 500, ...(nextToken ? { nextToken } : {}) });
    yield* page.items;
    nextToken = page.nextToken;
  } while (nextToken);
}
