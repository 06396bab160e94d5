import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ApiClient, Image, Launch } from './api-client.ts';
import { ApiError } from './api-client.ts';
import { pollUntil } from './poll.ts';
import { createSnapshotFromFile } from './snapshot-create.ts';
import { type RestoreReport, restoreSnapshot } from './snapshot-restore.ts';

/** What became of one queued snapshot of an image the CLI wrote from a file. */
export interface ImageWrite {
  snapshotId: string;
  volumeId: string;
  device: string;
  file: string;
  outcome: 'completed' | 'failed' | 'taken-elsewhere';
  reason?: string;
}

/**
 * Takes the queued snapshots of an image whose volumes have a file here (volume id → file or
 * device), one after the other, as `volsnap agent` would: each is started (a conditional write,
 * so an agent taking it too is harmless), written like `snapshot create --file`, and completed; a
 * snapshot that cannot be written is failed with the reason, which the image then names.
 */
export async function writeImageSnapshots(
  api: ApiClient,
  image: Image,
  files: ReadonlyMap<string, string>,
  options: { concurrency?: number; onWrite?: (write: ImageWrite) => void } = {},
): Promise<ImageWrite[]> {
  const writes: ImageWrite[] = [];
  const report = (write: ImageWrite) => {
    writes.push(write);
    options.onWrite?.(write);
  };
  for (const ref of image.snapshots) {
    const file = files.get(ref.volumeId);
    if (file === undefined || ref.state !== 'queued') continue;
    const base = { snapshotId: ref.snapshotId, volumeId: ref.volumeId, device: ref.device, file };
    let started: Awaited<ReturnType<ApiClient['startSnapshot']>>;
    try {
      started = await api.startSnapshot(ref.snapshotId);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'snapshot.invalidState') {
        report({ ...base, outcome: 'taken-elsewhere' });
        continue;
      }
      throw error;
    }
    try {
      await createSnapshotFromFile(api, {
        volumeId: ref.volumeId,
        file,
        snapshot: started,
        ...(options.concurrency ? { concurrency: options.concurrency } : {}),
      });
      report({ ...base, outcome: 'completed' });
    } catch (error) {
      const reason = `${file}: ${error instanceof Error ? error.message : String(error)}`;
      await api.failSnapshot(ref.snapshotId, reason).catch(() => undefined);
      report({ ...base, outcome: 'failed', reason });
    }
  }
  return writes;
}

/** Polls an image until it is no longer pending (its snapshots written, or one failed). */
export async function waitForImage(
  api: ApiClient,
  imageId: string,
  onProgress?: (image: Image) => void,
): Promise<Image> {
  return pollUntil(
    () => api.getImage(imageId),
    (image) => image.state !== 'pending',
    { onRead: onProgress },
  );
}

/** The file a launched volume is restored to: `DIR/<device basename>.img` (`/dev/vda` → `vda.img`). */
export function launchFile(dir: string, device: string): string {
  return join(dir, `${basename(device)}.img`);
}

/** Restores every volume of a launch to `DIR/<device basename>.img`, verifying every block. */
export async function restoreLaunch(
  api: ApiClient,
  launch: Launch,
  dir: string,
  options: { force?: boolean; concurrency?: number } = {},
): Promise<(RestoreReport & { volumeId: string; device: string; file: string })[]> {
  await mkdir(dir, { recursive: true });
  const restored = [];
  for (const volume of launch.volumes) {
    const file = launchFile(dir, volume.device);
    const report = await restoreSnapshot(api, volume.sourceSnapshotId, {
      target: file,
      ...(options.force ? { force: true } : {}),
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
    });
    restored.push({ ...report, volumeId: volume.volumeId, device: volume.device, file });
  }
  return restored;
}
