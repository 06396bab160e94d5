import type { Grantee, Snapshot } from '../../core/snapshots/snapshots.ts';
import { completedOfVolumeIndex, createdOrder, PUBLIC, pickFields } from './keys.ts';

/**
 * How a snapshot and the records beside it are stored (key design in keys.ts): the attributes of a
 * snapshot item, and the keys of its client tokens and upload-session records.
 */

export const ownerIndex = (accountId: string) => `ACCOUNT#${accountId}#SNAPSHOTS`;
export const tokenKey = (accountId: string, token: string) => ({
  pk: `TOKEN#${accountId}#${token}`,
  sk: 'TOKEN',
});
export const segmentSk = (segmentId: string) => `SEGMENT#${segmentId}`;
export const manifestUploadSk = (manifestUploadId: string) => `MANIFESTUPLOAD#${manifestUploadId}`;
/** The counts of keys issued to a client's upload session (one item beside the snapshot's). */
export const SESSION_SK = 'SESSION';
/** Client tokens are remembered this long (then DynamoDB's TTL removes them). */
export const TOKEN_TTL_SECONDS = 7 * 24 * 3600;

const FIELDS = [
  'snapshotId',
  'accountId',
  'volumeId',
  'volumeSize',
  'blockSize',
  'name',
  'description',
  'tags',
  'state',
  'progress',
  'stateReason',
  'parentSnapshotId',
  'region',
  'createdAt',
  'completedAt',
  'deadline',
  'stats',
  'parts',
  'public',
  'copiedFrom',
  'importedFrom',
  'imageId',
  'groupId',
  'takenAt',
  'deletedAt',
  'purgeAt',
  'holds',
  'leaseUntil',
  'leaseParts',
  'dispatches',
  'verification',
  'direct',
] as const;

/** The snapshot a stored item holds (sets read back as sorted arrays, empty ones as absent). */
export function toSnapshot(item: Record<string, unknown>): Snapshot {
  const { holds, ...snapshot } = pickFields<Snapshot>(item, FIELDS);
  const shared = item.sharedWith as Set<string> | undefined;
  const done = item.partsDone as Set<number> | undefined;
  return {
    ...snapshot,
    ...(shared && shared.size > 0 ? { sharedWith: [...shared].sort() } : {}),
    ...(done && done.size > 0 ? { partsDone: [...done].sort((a, b) => a - b) } : {}),
    ...(holds && Object.keys(holds).length > 0 ? { holds } : {}),
  };
}

/** The sparse index entry of a completed snapshot (see keys.ts). */
export const completedIndex = (snapshot: Pick<Snapshot, 'volumeId' | 'createdAt' | 'snapshotId'>) => ({
  gsi3pk: completedOfVolumeIndex(snapshot.volumeId),
  gsi3sk: createdOrder(snapshot.createdAt, snapshot.snapshotId),
});

/** The id a grantee's share item and index are keyed by (`*` for everyone). */
export const granteeId = (grantee: Grantee) => (grantee === 'public' ? PUBLIC : grantee.accountId);
