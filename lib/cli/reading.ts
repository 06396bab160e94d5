import type { ApiClient, ApiError, Export, Snapshot, Verification } from '../client/api-client.ts';
import { pollUntil } from '../client/poll.ts';
import type { Progress } from './progress.ts';

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
export function waitForSnapshot(api: ApiClient, snapshotId: string, bar: Progress): Promise<Snapshot> {
  return pollShowing(
    api,
    bar,
    () => api.getSnapshot(snapshotId),
    (s) => s.state !== 'pending' && s.state !== 'queued',
    (s) => [(s.progress * s.volumeSize) / 100, s.volumeSize],
  );
}

/** Polls an export until it is no longer pending, showing its progress. */
export function waitForExport(api: ApiClient, exportId: string, bar: Progress): Promise<Export> {
  return pollShowing(
    api,
    bar,
    () => api.getExport(exportId),
    (e) => e.state !== 'pending',
    (e) => [(e.progress * e.size) / 100, e.size],
  );
}

/** Polls a verification until it is no longer pending, showing its progress (in parts read). */
export function waitForVerification(
  api: ApiClient,
  verificationId: string,
  bar: Progress,
): Promise<Verification> {
  return pollShowing(
    api,
    bar,
    () => api.getVerification(verificationId),
    (v) => v.state !== 'pending',
    (v) => [(v.progress * v.totalBytes) / 100, v.totalBytes],
  );
}

/**
 * `pollUntil`, with the bytes done and the total of each value read on `bar` (stopped after), and
 * what it waits out (a 503, a reset: tried again for as long as the wait lasts) noted on it.
 */
async function pollShowing<T>(
  api: ApiClient,
  bar: Progress,
  read: () => Promise<T>,
  settled: (value: T) => boolean,
  progress: (value: T) => [done: number, total: number],
): Promise<T> {
  try {
    return await pollUntil(read, settled, {
      onRead: (value) => {
        bar.note(undefined);
        bar.update(...progress(value));
      },
      onRetry: (error, waitMs) => bar.note(retryNote(error, waitMs)),
      sleep: (ms) => api.wait(ms),
    });
  } finally {
    bar.stop();
  }
}

/** What a wait that is waiting out a failure says: the failure, and when it tries again. */
export function retryNote(error: ApiError, waitMs: number): string {
  return `${error.code} (${error.status || 'no answer'}): trying again in ${Math.max(1, Math.round(waitMs / 1000))} s`;
}
