import { describe, expect, it } from 'vitest';
import type { UpdateParams } from '../../../../lib/adapters/dynamodb/expressions.ts';
import {
  createCounts,
  createItems,
  transitionReadsFirst,
  transitionWrite,
} from '../../../../lib/adapters/dynamodb/snapshot-writes.ts';
import type { Snapshot } from '../../../../lib/core/snapshots/snapshots.ts';

const snapshot: Snapshot = {
  snapshotId: 'snap-1',
  accountId: 'acct-1',
  volumeId: 'vol-1',
  volumeSize: 1024,
  blockSize: 512,
  name: 'n',
  description: '',
  tags: {},
  state: 'pending',
  progress: 0,
  region: 'eu-west-1',
  createdAt: '2026-01-01T00:00:00.000Z',
  deadline: '2026-01-02T00:00:00.000Z',
};

/** An update's expression with the placeholders replaced, to read as DynamoDB would. */
function read(params: Partial<UpdateParams> | undefined): string {
  const text = `${params?.UpdateExpression ?? ''} IF ${params?.ConditionExpression ?? ''}`;
  return text
    .replace(/#n\d+/g, (p) => params?.ExpressionAttributeNames?.[p] ?? p)
    .replace(/:v\d+/g, (p) => JSON.stringify(params?.ExpressionAttributeValues?.[p]));
}

describe('the snapshot transactions, as built', () => {
  it('counts a pending snapshot on its volume and in its kind’s counter, checked against the limits', () => {
    const limits = {
      maxSnapshots: 10,
      maxStoredBytes: 100,
      maxPendingSnapshots: 2,
      maxCopiesInFlight: 2,
      maxImportsInFlight: 2,
      maxPendingSnapshotsPerVolume: 1,
    };
    const counts = createCounts(snapshot, limits);
    expect(counts).toEqual({ inFlight: 'pendingSnapshots', maxInFlight: 2, maxPerVolume: 1 });
    const [put, volume, usage, token] = createItems('t', snapshot, counts, limits, undefined);
    expect(put?.Put?.Item).toMatchObject({
      countedInFlight: 'pendingSnapshots',
      gsi1sk: '2026-01-01T00:00:00.000Z#snap-1',
    });
    expect(put?.Put?.Item).not.toHaveProperty('gsi3pk');
    expect(read(volume?.Update)).toBe(
      'ADD snapshotCount 1, pendingSnapshots 1 IF attribute_exists(pk) AND accountId = "acct-1" AND (attribute_not_exists(pendingSnapshots) OR pendingSnapshots < 1)',
    );
    expect(read(usage?.Update)).toBe(
      'ADD snapshots 1, pendingSnapshots 1 IF (attribute_not_exists(snapshots) OR snapshots < 10) AND (attribute_not_exists(storedBytes) OR storedBytes < 100) AND (attribute_not_exists(pendingSnapshots) OR pendingSnapshots < 2)',
    );
    expect(token).toBeUndefined();
  });

  it('counts a completed snapshot (a copy landed whole) in no in-flight counter and indexes it as completed', () => {
    const completed = { ...snapshot, state: 'completed' as const };
    const counts = createCounts(completed, undefined);
    expect(counts).toEqual({});
    const [put, volume, usage] = createItems('t', completed, counts, undefined, undefined);
    expect(put?.Put?.Item).toMatchObject({ gsi3pk: 'VOLUME#vol-1#COMPLETED' });
    expect(put?.Put?.Item).not.toHaveProperty('countedInFlight');
    expect(read(volume?.Update)).toBe('ADD snapshotCount 1 IF attribute_exists(pk) AND accountId = "acct-1"');
    expect(read(usage?.Update)).toBe('ADD snapshots 1 IF ');
  });

  it('removes the fields a transition gives as undefined, and writes alone when no count moves', () => {
    const { update, others } = transitionWrite(
      't',
      'snap-1',
      { from: ['pending'], to: 'pending', changes: { progress: 40, leaseUntil: undefined } },
      undefined,
      undefined,
    );
    expect(read(update)).toBe(
      'SET progress = 40, state = "pending" REMOVE leaseUntil, gsi3pk, gsi3sk IF attribute_exists(pk) AND state = "pending"',
    );
    expect(others).toEqual([]);
  });

  it('completing from pending adds the new bytes, gives back the place in flight, indexes it, and checks the parent', () => {
    const { update, others } = transitionWrite(
      't',
      'snap-1',
      { from: ['pending'], to: 'completed', changes: { stats: { newBytes: 7 } as Snapshot['stats'] } },
      { current: snapshot, counted: 'pendingSnapshots' },
      { snapshotId: 'snap-0', states: ['completed', 'recycled'] },
    );
    expect(read(update)).toContain('gsi3pk = "VOLUME#vol-1#COMPLETED"');
    expect(read(update)).toContain('REMOVE countedInFlight');
    expect(read(others[0]?.Update)).toBe('ADD storedBytes 7, pendingSnapshots -1 IF ');
    expect(read(others[1]?.Update)).toBe('ADD pendingSnapshots -1 IF attribute_exists(pk)');
    expect(others[1]?.Update?.Key).toEqual({ pk: 'VOLUME#vol-1', sk: 'VOLUME' });
    expect(read(others[2]?.ConditionCheck)).toBe(' IF state IN ("completed", "recycled")');
  });

  it('takes a snapshot leaving completed out of the completed index, with no count moved', () => {
    const { update, others } = transitionWrite(
      't',
      'snap-1',
      { from: ['completed'], to: 'recycled', changes: { purgeAt: '2026-02-01' } },
      { current: { ...snapshot, state: 'completed' } },
      undefined,
    );
    expect(read(update)).toBe(
      'SET purgeAt = "2026-02-01", gsi4pk = "MAINTAIN#SNAPSHOT#recycled", gsi4sk = "2026-02-01#snap-1", state = "recycled" REMOVE gsi3pk, gsi3sk IF attribute_exists(pk) AND state = "completed"',
    );
    expect(others).toEqual([]);
  });

  it('keeps the maintenance index with the state: due time in, out of it on error, the lease with the lease', () => {
    const [put] = createItems(
      't',
      { ...snapshot, leaseUntil: '2026-01-01T00:03:00.000Z' },
      {},
      undefined,
      undefined,
    );
    expect(put?.Put?.Item).toMatchObject({
      gsi4pk: 'MAINTAIN#SNAPSHOT#pending',
      gsi4sk: `${snapshot.deadline}#snap-1`,
      gsi3pk: 'LEASE#SNAPSHOT',
      gsi3sk: '2026-01-01T00:03:00.000Z#snap-1',
    });
    const failed = transitionWrite(
      't',
      'snap-1',
      { from: ['pending'], to: 'error', changes: {} },
      undefined,
      undefined,
    );
    expect(read(failed.update)).toBe(
      'SET state = "error" REMOVE gsi3pk, gsi3sk, gsi4pk, gsi4sk IF attribute_exists(pk) AND state = "pending"',
    );
    const started = transitionWrite(
      't',
      'snap-1',
      { from: ['queued'], to: 'pending', changes: { deadline: '2026-01-02' } },
      undefined,
      undefined,
    );
    expect(read(started.update)).toContain(
      'gsi4pk = "MAINTAIN#SNAPSHOT#pending", gsi4sk = "2026-01-02#snap-1"',
    );
    const progressed = transitionWrite(
      't',
      'snap-1',
      { from: ['pending'], to: 'pending', changes: { progress: 3 } },
      undefined,
      undefined,
    );
    expect(read(progressed.update)).not.toContain('gsi4');
    // Into deleting without the time in the change: the record is read first for it.
    expect(transitionReadsFirst(['completed'], 'deleting', {})).toBe(true);
    expect(transitionReadsFirst(['completed'], 'deleting', { deletedAt: '2026-01-03' })).toBe(false);
  });
});
