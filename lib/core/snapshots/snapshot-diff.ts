import { BLOCK_SIZE } from '../format/blocks.ts';
import type { Caller } from '../identity/identity.ts';
import { VolsnapError } from '../shared/errors.ts';
import type { SnapshotAccess } from './snapshot-access.ts';

/** Changed blocks between two snapshots, as runs of block indices. */
export interface SnapshotDiff {
  blockSize: number;
  volumeSize: number;
  changedBlocks: number;
  ranges: { start: number; count: number }[];
}

/** Changed blocks between two snapshots of one volume. */
export class SnapshotDiffs {
  readonly #a: SnapshotAccess;

  constructor(access: SnapshotAccess) {
    this.#a = access;
  }

  /** Blocks that differ between two completed snapshots of the same volume. */
  async diff(caller: Caller, fromId: string, toId: string): Promise<SnapshotDiff> {
    const [from, to] = await Promise.all([
      this.#a.completed(caller, fromId),
      this.#a.completed(caller, toId),
    ]);
    if (from.volumeId !== to.volumeId) {
      throw new VolsnapError(
        'request.invalid',
        `Snapshots ${fromId} and ${toId} are of different volumes; changed blocks are defined within one volume.`,
      );
    }
    const [a, b] = await Promise.all([this.#a.manifest(fromId), this.#a.manifest(toId)]);
    const hashes = new Map(a.entries.map((e) => [e.blockIndex, e.hash]));
    const changed = new Set<number>();
    for (const entry of b.entries) {
      const before = hashes.get(entry.blockIndex);
      if (!before?.equals(entry.hash)) changed.add(entry.blockIndex);
      hashes.delete(entry.blockIndex);
    }
    for (const zeroedNow of hashes.keys()) changed.add(zeroedNow);
    const ranges: SnapshotDiff['ranges'] = [];
    for (const index of [...changed].sort((x, y) => x - y)) {
      const last = ranges.at(-1);
      if (last && last.start + last.count === index) last.count++;
      else ranges.push({ start: index, count: 1 });
    }
    return {
      blockSize: BLOCK_SIZE,
      volumeSize: Math.max(from.volumeSize, to.volumeSize),
      changedBlocks: changed.size,
      ranges,
    };
  }
}
