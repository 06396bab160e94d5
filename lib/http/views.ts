import type { Caller } from '../core/identity/identity.ts';
import type { Snapshot } from '../core/snapshots/snapshots.ts';
import type { Export } from '../core/tasks/exports.ts';
import type { Verification } from '../core/tasks/verifications.ts';

/** What the API shows of a snapshot: the record without the bookkeeping of the work on it. */
export type SnapshotView = Omit<Snapshot, 'leaseUntil' | 'leaseParts' | 'dispatches' | 'partsDone'>;

/**
 * The snapshot as its owner sees it: everything but the workers' bookkeeping (lease, dispatch
 * count, part checkpoints), which no one outside the service needs.
 */
export function ownerSnapshotView(snapshot: Snapshot): SnapshotView {
  const {
    leaseUntil: _lease,
    leaseParts: _leaseParts,
    dispatches: _dispatches,
    partsDone: _done,
    ...view
  } = snapshot;
  return view;
}

/**
 * The snapshot as an account it is shared with (or any account, when public) sees it: also without
 * whom it is shared with and what holds it (holder ids are other accounts' copies and exports).
 */
export function readerSnapshotView(snapshot: Snapshot): SnapshotView {
  const { sharedWith: _shares, holds: _holds, ...view } = ownerSnapshotView(snapshot);
  return view;
}

/** The view of `snapshot` for `caller`'s audience: its owner, or a reader. */
export function snapshotView(caller: Caller, snapshot: Snapshot): SnapshotView {
  return snapshot.accountId === caller.accountId ? ownerSnapshotView(snapshot) : readerSnapshotView(snapshot);
}

/** What the API shows of an export: the record without the workers' lease bookkeeping. */
export type ExportView = Omit<Export, 'leaseUntil' | 'leaseParts' | 'dispatches' | 'deletedAt'>;

/** The export as its owner sees it (only its owner sees it at all). */
export function exportView(record: Export): ExportView {
  const {
    leaseUntil: _lease,
    leaseParts: _leaseParts,
    dispatches: _dispatches,
    deletedAt: _deleted,
    ...view
  } = record;
  return view;
}

/** What the API shows of a verification: the record without the workers' lease bookkeeping. */
export type VerificationView = Omit<Verification, 'leaseUntil' | 'leaseParts' | 'dispatches' | 'partsDone'>;

/** The verification as its owner sees it (only its owner sees it at all). */
export function verificationView(record: Verification): VerificationView {
  const {
    leaseUntil: _lease,
    leaseParts: _leaseParts,
    dispatches: _dispatches,
    partsDone: _done,
    ...view
  } = record;
  return view;
}
