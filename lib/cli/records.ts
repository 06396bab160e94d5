import type { Snapshot } from '../client/api-client.ts';
import { formatSize, formatTags } from './units.ts';

/** A snapshot's fields as `snapshot show` prints them (and every command that answers one). */
export function snapshotRecord(s: Snapshot) {
  return {
    id: s.snapshotId,
    name: s.name || '-',
    description: s.description || '-',
    volume: s.volumeId,
    size: `${formatSize(s.volumeSize)} (${s.volumeSize} bytes)`,
    stored: s.stats ? `${formatSize(s.stats.storedBytes)} (${s.stats.storedBytes} bytes)` : '-',
    blocks: s.stats
      ? `${s.stats.blockCount} non-zero of ${s.volumeSize / s.blockSize} (${s.stats.newBlocks} new, ${s.stats.reusedBlocks} from parent)`
      : '-',
    state: s.state,
    reason: s.stateReason,
    'purged at': s.purgeAt,
    'take by': s.state === 'queued' ? s.deadline : undefined,
    progress: `${s.progress}%`,
    parent: s.parentSnapshotId,
    'copied from': s.copiedFrom ? `${s.copiedFrom.snapshotId} (${s.copiedFrom.region})` : undefined,
    created: s.createdAt,
    completed: s.completedAt,
    tags: formatTags(s.tags),
    owner: s.accountId,
    region: s.region,
    public: s.public ? 'yes' : undefined,
    'shared with': s.sharedWith?.join(', '),
    integrity: s.integrity
      ? `${s.integrity.state}${s.integrity.badBlockCount > 0 ? ` (${s.integrity.badBlockCount} bad block(s): ${s.integrity.badBlocks.map((b) => b.blockIndex).join(', ')})` : ''}, checked ${s.integrity.checkedAt} by ${s.integrity.verificationId}`
      : undefined,
  };
}

/** `<id> <state>[: <reason>]`: the first line a command that wrote a snapshot prints. */
export function stateLine(s: Snapshot): string {
  return `${s.snapshotId} ${s.state}${s.stateReason ? `: ${s.stateReason}` : ''}`;
}
