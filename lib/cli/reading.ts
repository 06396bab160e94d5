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
export async function waitForSnapshot(
  api: ApiClient,
  snapshotId: string,
  bar: ReturnType<typeof progressBar>,
): Promise<Snapshot> {
  try {
    return await pollUntil(
      () => api.getSnapshot(snapshotId),
      (snapshot) => snapshot.state !== 'pending' && snapshot.state !== 'queued',
      {
        onRead: (snapshot) =>
          bar.update((snapshot.progress * snapshot.volumeSize) / 100, snapshot.volumeSize),
      },
    );
  } finally {
    bar.stop();
  }
}

/** Polls an export until it is no longer pending, showing its progress. */
export async function waitForExport(
  api: ApiClient,
  exportId: string,
  bar: ReturnType<typeof progressBar>,
): Promise<Export> {
  try {
    return await pollUntil(
      () => api.getExport(exportId),
      (current) => current.state !== 'pending',
      { onRead: (current) => bar.update((current.progress * current.size) / 100, current.size) },
    );
  } finally {
    bar.stop();
  }
}
