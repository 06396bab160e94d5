import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../../lib/core/snapshots/snapshots.ts';
import type { Export } from '../../../lib/core/tasks/exports.ts';
import { exportView, ownerSnapshotView, readerSnapshotView, snapshotView } from '../../../lib/http/views.ts';
import { testCaller } from '../../support/callers.ts';

const owner = testCaller();
const grantee = testCaller();

/** A copied snapshot as the table holds it: shared, held by another account's copy, with its lease. */
const stored: Snapshot = {
  snapshotId: 'snap-q0kazhp7ag3z7033',
  accountId: owner.accountId,
  volumeId: 'vol-e4v0w3m1qxsjtq5x',
  volumeSize: 1024 * 1024,
  blockSize: 512 * 1024,
  name: 'nightly',
  description: 'db',
  tags: { env: 'prod' },
  state: 'completed',
  progress: 100,
  region: 'eu-west-1',
  createdAt: '2026-12-01T00:00:00.000Z',
  completedAt: '2026-12-01T00:01:00.000Z',
  deadline: '2026-12-01T06:00:00.000Z',
  parts: 2,
  partsDone: [0, 1],
  copiedFrom: { region: 'us-east-1', snapshotId: 'snap-zzzzzzzzzzzzzzzz', accountId: owner.accountId },
  sharedWith: [grantee.accountId],
  holds: { 'snap-h60tk8bhsaah2n7f': '2026-12-01T06:00:00.000Z' },
  leaseUntil: '2026-12-01T00:20:00.000Z',
  leaseParts: 1,
  dispatches: 2,
};

const WORKER_FIELDS = ['leaseUntil', 'leaseParts', 'dispatches', 'partsDone'];

describe('what the API shows of a snapshot', () => {
  it('shows a grantee no holds (other accounts’ copy ids), no shares and no lease or worker fields', () => {
    const seen = snapshotView(grantee, stored) as Record<string, unknown>;
    for (const field of ['holds', 'sharedWith', ...WORKER_FIELDS])
      expect(seen, field).not.toHaveProperty(field);
    expect(JSON.stringify(seen)).not.toContain('snap-h60tk8bhsaah2n7f');
    expect(seen).toEqual(readerSnapshotView(stored));
  });

  it('shows the owner everything it saw before but the lease and worker fields', () => {
    const seen = snapshotView(owner, stored) as Record<string, unknown>;
    for (const field of WORKER_FIELDS) expect(seen, field).not.toHaveProperty(field);
    const { leaseUntil: _l, leaseParts: _p, dispatches: _d, partsDone: _done, ...rest } = stored;
    expect(seen).toEqual(rest);
    expect(seen).toEqual(ownerSnapshotView(stored));
    expect(seen.holds).toEqual(stored.holds);
    expect(seen.sharedWith).toEqual([grantee.accountId]);
  });
});

describe('the export view', () => {
  it("shows everything but the workers' bookkeeping (lease, dispatches, part checkpoints) and the deletion mark", () => {
    const record: Export = {
      exportId: 'export-q0kazhp7ag3z7033',
      accountId: owner.accountId,
      snapshotId: 'snap-q0kazhp7ag3z7033',
      format: 'raw',
      state: 'pending',
      progress: 40,
      region: 'eu-west-1',
      key: 'exports/a/export-q0kazhp7ag3z7033.raw',
      size: 1024,
      parts: 2,
      partSize: 512,
      uploadId: 'upload-1',
      partsDone: [0],
      createdAt: '2026-12-01T00:00:00.000Z',
      leaseUntil: '2026-12-01T00:03:00.000Z',
      leaseParts: 1,
      dispatches: 0,
    };
    const { leaseUntil: _l, leaseParts: _p, dispatches: _d, partsDone: _done, ...rest } = record;
    expect(exportView(record)).toEqual(rest);
    expect(exportView({ ...record, deletedAt: '2026-12-01T00:01:00.000Z' })).toEqual(rest);
  });
});
