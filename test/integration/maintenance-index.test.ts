import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoExportRepository } from '../../lib/adapters/dynamodb/exports.ts';
import { indexForMaintenance } from '../../lib/adapters/dynamodb/maintenance-index.ts';
import { DynamoSnapshotRepository } from '../../lib/adapters/dynamodb/snapshots.ts';
import { BLOCK_SIZE } from '../../lib/core/format/blocks.ts';
import { newId } from '../../lib/core/shared/ids.ts';
import { freshRegion } from '../support/emulators.ts';

const at = (time: string) => `2026-01-01T${time}:00.000Z`;

/** A snapshot item as a version before the maintenance indexes stored it: no gsi4, no lease in gsi3. */
function legacySnapshot(fields: Record<string, unknown>) {
  const snapshotId = newId('snapshot');
  return {
    snapshotId,
    item: {
      pk: `SNAPSHOT#${snapshotId}`,
      sk: 'SNAPSHOT',
      type: 'snapshot',
      snapshotId,
      accountId: newId('account'),
      volumeId: newId('volume'),
      volumeSize: 8 * BLOCK_SIZE,
      blockSize: BLOCK_SIZE,
      name: '',
      description: '',
      tags: {},
      progress: 0,
      region: 'eu-west-1',
      createdAt: at('00:00'),
      deadline: at('01:00'),
      ...fields,
    },
  };
}

describe('items stored before the maintenance indexes', () => {
  it('are found by the first maintenance listing (a one-time pass over the table), and by the upgrade script after it', async () => {
    const { entry, clients } = await freshRegion();
    const put = (item: Record<string, unknown>) =>
      clients.documents.send(new PutCommand({ TableName: entry.table, Item: item }));
    const snapshots = new DynamoSnapshotRepository(clients.documents, entry.table, () => 0);
    const exports = new DynamoExportRepository(clients.documents, entry.table);
    const queued = legacySnapshot({ state: 'queued' });
    const leased = legacySnapshot({ state: 'pending', deadline: at('09:00'), leaseUntil: at('00:10') });
    const binned = legacySnapshot({ state: 'recycled', deletedAt: at('00:00'), purgeAt: at('00:30') });
    const failed = legacySnapshot({ state: 'error' });
    const exportId = newId('export');
    for (const { item } of [queued, leased, binned, failed]) await put(item);
    await put({
      pk: `EXPORT#${exportId}`,
      sk: 'EXPORT',
      type: 'export',
      exportId,
      state: 'completed',
      expiresOn: at('00:20'),
      createdAt: at('00:00'),
    });
    const ids = async (list: Promise<{ items: { snapshotId: string }[] }>) =>
      (await list).items.map((s) => s.snapshotId);

    expect(await ids(snapshots.listInState('queued', { limit: 10 }, at('02:00')))).toEqual([
      queued.snapshotId,
    ]);
    expect(await ids(snapshots.listLapsed(at('02:00'), { limit: 10 }))).toEqual([leased.snapshotId]);
    expect(await ids(snapshots.listInState('recycled', { limit: 10 }, at('02:00')))).toEqual([
      binned.snapshotId,
    ]);
    expect((await exports.listExpired(at('02:00'), { limit: 10 })).items.map((r) => r.exportId)).toEqual([
      exportId,
    ]);

    // The pass ran once (the table is marked): a legacy item written after it waits for the script.
    const late = legacySnapshot({ state: 'queued', deadline: at('00:30') });
    await put(late.item);
    expect(await ids(snapshots.listInState('queued', { limit: 10 }, at('02:00')))).toEqual([
      queued.snapshotId,
    ]);
    expect(await indexForMaintenance(clients.documents, entry.table)).toBe(1);
    expect(await ids(snapshots.listInState('queued', { limit: 10 }, at('02:00')))).toEqual([
      late.snapshotId,
      queued.snapshotId,
    ]);
    expect(await indexForMaintenance(clients.documents, entry.table)).toBe(0);
  });
});
