import type { Caller } from '../core/identity/identity.ts';
import type { Snapshot } from '../core/snapshots/snapshots.ts';
import type { Export } from '../core/tasks/exports.ts';
import type { Verification } from '../core/tasks/verifications.ts';

/**
 * The workers' bookkeeping on a record of server-side work (lease, dispatch count, part
 * checkpoints): no one outside the service needs it, so no view shows it.
 */
const WORK_BOOKKEEPING = ['leaseUntil', 'leaseParts', 'dispatches', 'partsDone'] as const;
type WorkBookkeeping = (typeof WORK_BOOKKEEPING)[number];

/** `record` without the fields named in `fields` (a copy; the record is not changed). */
function without<T extends object, K extends string>(record: T, fields: readonly K[]): Omit<T, K> {
  const view = { ...record } as Record<string, unknown>;
  for (const field of fields) delete view[field];
  return view as Omit<T, K>;
}

/** What the API shows of a snapshot: the record without the bookkeeping of the work on it. */
export type SnapshotView = Omit<Snapshot, WorkBookkeeping>;

/** The snapshot as its owner sees it: everything but the workers' bookkeeping. */
export function ownerSnapshotView(snapshot: Snapshot): SnapshotView {
  return without(snapshot, WORK_BOOKKEEPING);
}

/**
 * The snapshot as an account it is shared with (or any account, when public) sees it: also without
 * whom it is shared with and what holds it (holder ids are other accounts' copies and exports).
 */
export function readerSnapshotView(snapshot: Snapshot): SnapshotView {
  return without(ownerSnapshotView(snapshot), ['sharedWith', 'holds']) as SnapshotView;
}

/** The view of `snapshot` for `caller`'s audience: its owner, or a reader. */
export function snapshotView(caller: Caller, snapshot: Snapshot): SnapshotView {
  return snapshot.accountId === caller.accountId ? ownerSnapshotView(snapshot) : readerSnapshotView(snapshot);
}

/** What the API shows of an export: the record without the workers' bookkeeping and its deletion mark. */
export type ExportView = Omit<Export, WorkBookkeeping | 'deletedAt'>;

/** The export as its owner sees it (only its owner sees it at all). */
export function exportView(record: Export): ExportView {
  return without(record, [...WORK_BOOKKEEPING, 'deletedAt']);
}

/** What the API shows of a verification: the record without the workers' bookkeeping. */
export type VerificationView = Omit<Verification, WorkBookkeeping>;

/** The verification as its owner sees it (only its owner sees it at all). */
export function verificationView(record: Verification): VerificationView {
  return without(record, WORK_BOOKKEEPING);
}
