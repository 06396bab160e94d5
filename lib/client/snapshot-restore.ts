import { open, stat } from 'node:fs/promises';
import pLimit from 'p-limit';
import { createZstdCompressor } from '../adapters/zstd.ts';
import { BLOCK_SIZE, blockHash } from '../core/format/blocks.ts';
import { decodeManifest, type ManifestEntry } from '../core/format/manifest.ts';
import { planReads } from '../core/format/restore-plan.ts';
import { readSegmentBlock } from '../core/format/segment.ts';
import { VolsnapError } from '../core/shared/errors.ts';
import type { ApiClient } from './api-client.ts';
import { getObject } from './transfer.ts';

export interface RestoreOptions {
  /** A file (created sparse) or a block device. */
  target: string;
  /** Continue an interrupted restore into `target`: blocks already right are not fetched again. */
  resume?: boolean;
  /** Replace an existing file. */
  force?: boolean;
  /** Ranged GETs in flight; memory is about concurrency × 16 MiB. */
  concurrency?: number;
  onProgress?: (progress: { blocksDone: number; totalBlocks: number; bytesDownloaded: number }) => void;
}

export interface RestoreReport {
  blocks: number;
  fetchedBlocks: number;
  skippedBlocks: number;
  zeroBlocks: number;
  bytesDownloaded: number;
  requests: number;
}

const URL_BATCH = 100;

/**
 * Writes a completed snapshot's bytes into a file or block device: ranged GETs of its segments
 * through presigned URLs bound to their ranges (neighbouring blocks in one request; for the
 * caller's own snapshots also across small gaps), every block checked against its SHA-256 before
 * it is written, zero blocks left as holes of a sparse file.
 */
export async function restoreSnapshot(
  api: ApiClient,
  snapshotId: string,
  options: RestoreOptions,
): Promise<RestoreReport> {
  // The manifest's URL is asked for beside them: refused for a snapshot not completed, said below.
  const manifestUrl = api.manifestUrl(snapshotId);
  manifestUrl.catch(() => {});
  const [snapshot, me] = await Promise.all([api.getSnapshot(snapshotId), api.whoami()]);
  if (snapshot.state !== 'completed') {
    throw new VolsnapError(
      'snapshot.invalidState',
      snapshot.state === 'recycled'
        ? `Snapshot ${snapshotId} is in the recycle bin until ${snapshot.purgeAt}: \`volsnap snapshot undelete ${snapshotId}\` first, then restore it.`
        : `Snapshot ${snapshotId} is ${snapshot.state}; only completed snapshots can be restored.`,
    );
  }
  const existing = await stat(options.target).catch(() => undefined);
  const device = existing?.isBlockDevice() ?? false;
  if (existing && !device && !options.resume && !options.force) {
    throw new VolsnapError(
      'request.invalid',
      `${options.target} exists. Pass --resume to continue a restore into it, or --force to replace it.`,
    );
  }
  const manifest = decodeManifest(await getObject((await manifestUrl).url));
  const compressor = createZstdCompressor();
  const totalBlocks = manifest.volumeSize / BLOCK_SIZE;
  const report: RestoreReport = {
    blocks: totalBlocks,
    fetchedBlocks: 0,
    skippedBlocks: 0,
    zeroBlocks: totalBlocks - manifest.entries.length,
    bytesDownloaded: 0,
    requests: 0,
  };
  const handle = await open(options.target, existing && (options.resume || device) ? 'r+' : 'w+');
  try {
    if (!device) {
      // A new (or replaced) file: truncating to the size leaves every block a hole, so zero blocks cost nothing.
      if (!options.resume) await handle.truncate(0);
      await handle.truncate(manifest.volumeSize);
    } else {
      // A device has no holes: zero blocks are written.
      const zeros = Buffer.alloc(BLOCK_SIZE);
      const present = new Set(manifest.entries.map((e) => e.blockIndex));
      for (let i = 0; i < totalBlocks; i++)
        if (!present.has(i)) await handle.write(zeros, 0, BLOCK_SIZE, i * BLOCK_SIZE);
    }
    let wanted = manifest.entries;
    if (options.resume) {
      const check = Buffer.alloc(BLOCK_SIZE);
      const pending: ManifestEntry[] = [];
      for (const entry of manifest.entries) {
        await handle.read(check, 0, BLOCK_SIZE, entry.blockIndex * BLOCK_SIZE);
        if (blockHash(check).equals(entry.hash)) report.skippedBlocks++;
        else pending.push(entry);
      }
      wanted = pending;
    }
    let blocksDone = report.skippedBlocks + report.zeroBlocks;
    const progress = () =>
      options.onProgress?.({ blocksDone, totalBlocks, bytesDownloaded: report.bytesDownloaded });
    // Another account's snapshot answers only exact runs of its own blocks (its segments may hold
    // blocks it does not share): no reading through gaps there.
    const own = snapshot.accountId === me.account.accountId;
    const ranges = planReads({ entries: wanted }, undefined, own ? undefined : 0);
    const limit = pLimit(options.concurrency ?? 4);
    // One buffer per request in flight, reused: ranges are at most 16 MiB.
    const spare: Buffer[] = [];
    for (let i = 0; i < ranges.length; i += URL_BATCH) {
      const batch = ranges.slice(i, i + URL_BATCH);
      const { ranges: urls } = await api.segmentUrls(
        snapshotId,
        batch.map(({ segmentId, start, end }) => ({ segmentId, start, end })),
      );
      await Promise.all(
        batch.map((range, j) =>
          limit(async () => {
            const buffer = spare.pop() ?? Buffer.allocUnsafe(16 * 1024 * 1024);
            // Each URL is bound to its range: getObject sends exactly that Range header.
            const bytes = await getObject(urls[j]?.url ?? '', { start: range.start, end: range.end }, buffer);
            report.requests++;
            report.bytesDownloaded += bytes.length;
            for (const entry of range.entries) {
              const stored = bytes.subarray(
                entry.offset - range.start,
                entry.offset - range.start + entry.storedLength,
              );
              let plain: Uint8Array;
              try {
                plain = readSegmentBlock(compressor, { ...entry, plainLength: BLOCK_SIZE }, stored);
              } catch (error) {
                throw new VolsnapError(
                  'data.corrupt',
                  `Block ${entry.blockIndex} of snapshot ${snapshotId} failed verification: ${(error as Error).message} The restore stopped; nothing after it was trusted.`,
                  {
                    cause: error,
                    details: { blockIndex: entry.blockIndex, segmentId: entry.segmentId },
                  },
                );
              }
              await handle.write(plain, 0, plain.length, entry.blockIndex * BLOCK_SIZE);
              report.fetchedBlocks++;
              blocksDone++;
            }
            // Every block of the range is written: its buffer serves the next request.
            spare.push(buffer);
            progress();
          }),
        ),
      );
    }
    progress();
  } finally {
    await handle.close();
  }
  return report;
}
