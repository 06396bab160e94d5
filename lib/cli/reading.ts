import type { ApiClient, Export, Snapshot } from '../client/api-client.ts';
import { pollUntil } from '../client/poll.ts';
import type { progressBar } from './progress.ts';

/** The first `limit` items of a listing (all of them without one), fetching no page beyond. */
export async function firstOf<T>(items: AsyncIterable<T>, limit?: number): Promise<T[]> {
  const rows: T[] = [];
  for await (const item of items) {
    if (limit !== undefined && rows.length >= limit) break;
    rows.push(item);
  }
  return rows;
}

/** Polls a snapshot written server-side until it is completed or failed, showing its progress. */
export function waitForSnapshot(
  api: ApiClient,
  snapshotId: string,
  bar: ReturnType<typeof progressBar>,
): Promise<Snapshot> {
  return pollShowing(
    bar,
    () => api.getSnapshot(snapshotId),
    (s) => s.state !== 'pending' && s.state !== 'queued',
    (s) => [(s.progress * s.volumeSize) / 100, s.volumeSize],
  );
}

/** Polls an export until it is no longer pending, showing its progress. */
export function waitForExport(
  api: ApiClient,
  exportId: string,
  bar: ReturnType<typeof progressBar>,
): Promise<Export> {
  return pollShowing(
    bar,
    () => api.getExport(exportId),
    (e) => e.state !== 'pending',
    (e) => [(e.progress * e.size) / 100, e.size],
  );
}

/** `pollUntil`, with the bytes done and the total of each value read on `bar` (stopped after). */
async function pollShowing<T>(
  bar: ReturnType<typeof progressBar>,
  read: () => Promise<T>,
  settled: (value: T) => boolean,
  progress: (value: T) => [done: number, total: number],
): Promise<T> {
  try {
    return await pollUntil(read, settled, { onRead: (value) => bar.update(...progress(value)) });
  } finally {
    bar.stop();
  }
}
