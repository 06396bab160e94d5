/** How a volsnap snapshot reads in the EBS direct API and in EC2's DescribeSnapshots. */

import { parseIsoTime } from '../../core/shared/clock.ts';
import type { Snapshot } from '../../core/snapshots/snapshots.ts';

const GiB = 1024 ** 3;

/** EBS knows `pending`, `completed` and `error`: a queued snapshot is pending, a recycled one is not listed. */
export function awsStatusOf(snapshot: Pick<Snapshot, 'state'>): 'pending' | 'completed' | 'error' {
  if (snapshot.state === 'completed' || snapshot.state === 'recycled') return 'completed';
  if (snapshot.state === 'queued' || snapshot.state === 'pending') return 'pending';
  return 'error';
}

/** The volume size in whole GiB, as EBS gives it (a volume of 100 MiB is 1 GiB). */
export function volumeSizeGiB(snapshot: Pick<Snapshot, 'volumeSize'>): number {
  return Math.max(1, Math.ceil(snapshot.volumeSize / GiB));
}

/** Epoch seconds of an ISO time, as rest-json timestamps are. */
export function epochSeconds(iso: string): number {
  return Math.floor(parseIsoTime(iso) / 1000);
}

/** Tags as the AWS APIs list them. */
export function awsTags(tags: Readonly<Record<string, string>>): { Key: string; Value: string }[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}
