import type { Snapshot, SnapshotRepository } from '../snapshots/snapshots.ts';
import type { VerificationRepository, VerificationService } from '../tasks/verifications.ts';
import { pages } from './work.ts';

/** How much the daily scrub verifies: at most `count` snapshots and about `bytes` stored bytes. */
export interface ScrubLimits {
  count: number;
  /** The first snapshot is taken even when larger, so a large one is not left out for ever. */
  bytes: number;
}

export const DEFAULT_SCRUB_LIMITS: ScrubLimits = { count: 20, bytes: 64 * 1024 ** 3 };

/** What a scrub run started, and the damage earlier runs (or owners) found that is still marked. */
export interface ScrubReport {
  started: { snapshotId: string; verificationId: string; storedBytes: number }[];
  storedBytes: number;
  /** Completed snapshots considered (not being verified already). */
  considered: number;
  /** Snapshots marked damaged (the first 100), for the run's log line. */
  damaged: { snapshotId: string; accountId: string; badBlockCount: number; checkedAt: string }[];
}

export interface ScrubOptions {
  snapshots: Pick<SnapshotRepository, 'listInState'>;
  verifications: Pick<VerificationRepository, 'listAll'>;
  service: Pick<VerificationService, 'begin'>;
  limits?: Partial<ScrubLimits>;
}

const REPORTED_DAMAGE = 100;

/**
 * The daily scrub: starts verifications of a bounded sample of the region's completed snapshots,
 * the least recently verified first (never verified before all others, then oldest check; ties by
 * completion). Each verification marks its snapshot and writes the owner's audit entry when it
 * ends. Memory: the sample (`count` snapshots), whatever the region holds. Idempotent enough for a
 * schedule: a snapshot being verified is not started again.
 */
export async function scrub(o: ScrubOptions): Promise<ScrubReport> {
  const limits = { ...DEFAULT_SCRUB_LIMITS, ...o.limits };
  const busy = new Set<string>();
  for await (const record of pages((page) => o.verifications.listAll(page)))
    if (record.state === 'pending') busy.add(record.snapshotId);
  const report: ScrubReport = { started: [], storedBytes: 0, considered: 0, damaged: [] };
  const sample: Snapshot[] = [];
  // The completed ones through maintenance's sparse index, not a scan of the region's table.
  for await (const snapshot of pages((page) => o.snapshots.listInState('completed', page))) {
    if (snapshot.state !== 'completed' || busy.has(snapshot.snapshotId)) continue;
    report.considered++;
    if (snapshot.integrity?.state === 'damaged' && report.damaged.length < REPORTED_DAMAGE) {
      const { badBlockCount, checkedAt } = snapshot.integrity;
      report.damaged.push({
        snapshotId: snapshot.snapshotId,
        accountId: snapshot.accountId,
        badBlockCount,
        checkedAt,
      });
    }
    insertBounded(sample, snapshot, limits.count);
  }
  for (const snapshot of sample) {
    const storedBytes = snapshot.stats?.storedBytes ?? 0;
    if (report.started.length > 0 && report.storedBytes + storedBytes > limits.bytes) break;
    const started = await o.service.begin(snapshot, 'scrub');
    report.started.push({
      snapshotId: snapshot.snapshotId,
      verificationId: started.verificationId,
      storedBytes,
    });
    report.storedBytes += storedBytes;
  }
  return report;
}

/** Whether `a` is due before `b`: never verified first, then the older check, then the older completion. */
function dueBefore(a: Snapshot, b: Snapshot): boolean {
  const checkedA = a.integrity?.checkedAt ?? '';
  const checkedB = b.integrity?.checkedAt ?? '';
  if (checkedA !== checkedB) return checkedA < checkedB;
  return (a.completedAt ?? a.createdAt) < (b.completedAt ?? b.createdAt);
}

/** Keeps `sample` the `count` snapshots due first, in order. */
function insertBounded(sample: Snapshot[], snapshot: Snapshot, count: number): void {
  let at = sample.length;
  while (at > 0 && dueBefore(snapshot, sample[at - 1] as Snapshot)) at--;
  if (at >= count) return;
  sample.splice(at, 0, snapshot);
  if (sample.length > count) sample.pop();
}
