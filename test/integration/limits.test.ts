import { describe, expect, it } from 'vitest';
import { DynamoExportRepository } from '../../lib/adapters/dynamodb/exports.ts';
import { DynamoRequestCounter } from '../../lib/adapters/dynamodb/request-counter.ts';
import { DynamoSnapshotRepository } from '../../lib/adapters/dynamodb/snapshots.ts';
import { DynamoUploadSlots } from '../../lib/adapters/dynamodb/uploads.ts';
import { newId } from '../../lib/core/shared/ids.ts';
import type { Export } from '../../lib/core/tasks/exports.ts';
import { freshRegion } from '../support/emulators.ts';

const exportOf = (accountId: string, size: number): Export => ({
  exportId: newId('export'),
  accountId,
  snapshotId: newId('snapshot'),
  format: 'raw',
  state: 'pending',
  progress: 0,
  region: 'eu-west-1',
  key: `exports/${accountId}/x.raw`,
  size,
  parts: 1,
  partSize: size,
  uploadId: 'u',
  createdAt: '2026-12-01T00:00:00.000Z',
});

describe('the DynamoDB counters of work in flight', () => {
  it('reserve an export in the usage item in the same write, refuse past the bytes or the exports in flight, and give back each count once', async () => {
    const { entry, clients } = await freshRegion();
    const exports = new DynamoExportRepository(clients.documents, entry.table);
    const snapshots = new DynamoSnapshotRepository(clients.documents, entry.table, () => 0);
    const alice = newId('account');
    const limits = { maxStoredBytes: 1000, maxExportsInFlight: 2 };
    const a = exportOf(alice, 600);
    const b = exportOf(alice, 300);
    await exports.create(a, limits);
    await expect(exports.create(exportOf(alice, 401), limits)).rejects.toMatchObject({
      code: 'quota.exceeded',
      details: { quota: 'storedBytes', limit: 1000, used: 600, size: 401 },
    });
    await exports.create(b, limits);
    await expect(exports.create(exportOf(alice, 1), limits)).rejects.toMatchObject({
      code: 'quota.inFlight',
      details: { quota: 'maxExportsInFlight', limit: 2, used: 2 },
    });
    expect(await snapshots.usage(alice)).toMatchObject({
      storedBytes: 900,
      exportBytes: 900,
      exportsInFlight: 2,
    });
    // Racing moves of one export: one wins, counted once.
    const moves = await Promise.all([
      exports.transition(a.exportId, ['pending'], 'error', { stateReason: 'x' }),
      exports.transition(a.exportId, ['pending'], 'completed'),
    ]);
    expect(moves.filter(Boolean)).toHaveLength(1);
    await exports.transition(b.exportId, ['pending'], 'completed');
    const after = await snapshots.usage(alice);
    expect(after.exportsInFlight).toBe(0);
    expect(after.storedBytes).toBe((await exports.get(a.exportId))?.state === 'error' ? 300 : 900);
    await exports.remove(a.exportId);
    await exports.remove(a.exportId);
    await exports.remove(b.exportId);
    expect(await snapshots.usage(alice)).toMatchObject({
      storedBytes: 0,
      exportBytes: 0,
      exportsInFlight: 0,
    });
  });

  it('give racing uploads distinct slots up to the limit; a released or expired slot is taken again', async () => {
    const { entry, clients } = await freshRegion();
    const slots = new DynamoUploadSlots(clients.documents, entry.table);
    const alice = newId('account');
    const taken = await Promise.all(
      Array.from({ length: 8 }, (_, i) => slots.take(alice, `r${i}`, 3, 1000, 5000)),
    );
    expect(taken.filter(Boolean)).toHaveLength(3);
    expect(await slots.count(alice, 1000)).toBe(3);
    const holder = taken.findIndex(Boolean);
    await slots.release(alice, `r${holder}`);
    await slots.release(alice, `r${holder}`);
    expect(await slots.count(alice, 1000)).toBe(2);
    expect(await slots.take(alice, 'again', 3, 1000, 5000)).toBe(true);
    expect(await slots.take(alice, 'more', 3, 1000, 5000)).toBe(false);
    expect(await slots.count(alice, 5000)).toBe(0);
    expect(await slots.take(alice, 'later', 3, 5000, 9000)).toBe(true);
    expect(await slots.count(newId('account'), 1000)).toBe(0);
  });

  it('count requests per window with one conditional write each: racing requests never pass the limit together', async () => {
    const { entry, clients } = await freshRegion();
    const counter = new DynamoRequestCounter(clients.documents, entry.table);
    const alice = newId('account');
    const passed = await Promise.all(Array.from({ length: 30 }, () => counter.take(alice, 2000, 2000, 20)));
    expect(passed.filter(Boolean)).toHaveLength(20);
    expect(await counter.count(alice, 2000)).toBe(20);
    expect(await counter.take(alice, 4000, 2000, 20)).toBe(true);
    expect(await counter.count(alice, 4000)).toBe(1);
  });

  it('take several requests at once only when all fit, and count a class of requests apart', async () => {
    const { entry, clients } = await freshRegion();
    const counter = new DynamoRequestCounter(clients.documents, entry.table);
    const alice = newId('account');
    expect(await counter.take(alice, 2000, 2000, 20, 16)).toBe(true);
    expect(await counter.take(alice, 2000, 2000, 20, 5)).toBe(false);
    expect(await counter.take(alice, 2000, 2000, 20, 4)).toBe(true);
    expect(await counter.take(alice, 2000, 2000, 20, 1)).toBe(false);
    expect(await counter.count(alice, 2000)).toBe(20);
    expect(await counter.take(`${alice}#blocks`, 2000, 2000, 400, 16)).toBe(true);
    expect(await counter.count(`${alice}#blocks`, 2000)).toBe(16);
    expect(await counter.count(alice, 2000)).toBe(20);
  });
});
