import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoAuditLog } from '../../lib/adapters/dynamodb/audit.ts';
import { DynamoSnapshotRepository } from '../../lib/adapters/dynamodb/snapshots.ts';
import { DynamoVolumeRepository } from '../../lib/adapters/dynamodb/volumes.ts';
import { BLOCK_SIZE } from '../../lib/core/format/blocks.ts';
import { newId } from '../../lib/core/shared/ids.ts';
import { encodePageToken } from '../../lib/core/shared/pagination.ts';
import type { Snapshot } from '../../lib/core/snapshots/snapshots.ts';
import type { Volume } from '../../lib/core/volumes/volumes.ts';
import { freshRegion } from '../support/emulators.ts';

const NOT_THIS_LISTING = {
  code: 'request.invalid',
  status: 400,
  message: 'This nextToken is not from this listing; start again without it.',
};

let clock = Date.UTC(2026, 0, 1);
const tick = () => {
  clock += 1000;
  return new Date(clock).toISOString();
};

describe('page tokens against DynamoDB Local', () => {
  let volumes: DynamoVolumeRepository;
  let snapshots: DynamoSnapshotRepository;
  let audit: DynamoAuditLog;
  const demo = newId('account');
  const demoB = newId('account');
  const made: Record<string, Snapshot[]> = { [demo]: [], [demoB]: [] };

  beforeAll(async () => {
    const { entry, clients } = await freshRegion();
    volumes = new DynamoVolumeRepository(clients.documents, entry.table);
    snapshots = new DynamoSnapshotRepository(clients.documents, entry.table, () =>
      Math.floor(Date.now() / 1000),
    );
    audit = new DynamoAuditLog(clients.documents, entry.table, () => Math.floor(Date.now() / 1000));
    for (const accountId of [demo, demoB]) {
      const volume: Volume = {
        volumeId: newId('volume'),
        accountId,
        name: 'disk',
        sizeBytes: 64 * BLOCK_SIZE,
        tags: {},
        region: 'eu-west-1',
        createdAt: tick(),
      };
      await volumes.create(volume);
      for (let i = 0; i < 3; i++) {
        const s: Snapshot = {
          snapshotId: newId('snapshot'),
          accountId,
          volumeId: volume.volumeId,
          volumeSize: volume.sizeBytes,
          blockSize: BLOCK_SIZE,
          name: `n${i}`,
          description: '',
          tags: {},
          state: 'pending',
          progress: 0,
          region: 'eu-west-1',
          createdAt: tick(),
          deadline: '2026-01-02T00:00:00.000Z',
        };
        await snapshots.create(s);
        made[accountId]?.push(s);
        await audit.record({
          eventId: newId('request'),
          at: tick(),
          accountId,
          userName: 'owner',
          keyId: newId('key'),
          action: 'snapshot.create',
          target: { snapshotId: s.snapshotId },
          requestId: 'r',
          status: 201,
        });
      }
    }
  });

  it("refuses another account's snapshot token with 400, and pages its own", async () => {
    const first = await snapshots.list(demo, {}, { limit: 1 });
    expect(first.nextToken).toBeDefined();
    await expect(snapshots.list(demoB, {}, { limit: 10, nextToken: first.nextToken })).rejects.toMatchObject(
      NOT_THIS_LISTING,
    );
    const rest = await snapshots.list(demo, {}, { limit: 10, nextToken: first.nextToken });
    expect(rest.items.map((s) => s.accountId)).toEqual([demo, demo]);
  });

  it('refuses {}, extra, missing and non-string attributes, and a token of another index or listing', async () => {
    const first = await snapshots.list(demoB, {}, { limit: 1 });
    const own = JSON.parse(Buffer.from(first.nextToken ?? '', 'base64url').toString('utf8'));
    const { gsi1sk: _dropped, ...missing } = own;
    for (const forged of [
      {},
      { ...own, extra: 'x' },
      missing,
      { ...own, gsi1sk: 7 },
      { ...own, gsi2pk: 'x', gsi2sk: 'y' },
    ]) {
      await expect(
        snapshots.list(demoB, {}, { limit: 10, nextToken: encodePageToken(forged) }),
        JSON.stringify(forged),
      ).rejects.toMatchObject(NOT_THIS_LISTING);
    }
    // A snapshot listing's token is not a listing by volume's, nor a volume listing's.
    const volumeId = made[demoB]?.[0]?.volumeId ?? '';
    await expect(
      snapshots.list(demoB, { volumeId }, { limit: 10, nextToken: first.nextToken }),
    ).rejects.toMatchObject(NOT_THIS_LISTING);
    await expect(volumes.list(demoB, {}, { limit: 10, nextToken: first.nextToken })).rejects.toMatchObject(
      NOT_THIS_LISTING,
    );
  });

  it("returns nothing of another account's for a forged token inside the caller's own partition", async () => {
    const first = await snapshots.list(demoB, {}, { limit: 1 });
    const own = JSON.parse(Buffer.from(first.nextToken ?? '', 'base64url').toString('utf8'));
    const theirs = made[demo]?.[2] as Snapshot;
    const forged = { ...own, pk: `SNAPSHOT#${theirs.snapshotId}` };
    const page = await snapshots.list(demoB, {}, { limit: 10, nextToken: encodePageToken(forged) });
    expect(page.items.every((s) => s.accountId === demoB)).toBe(true);
  });

  it("refuses another account's audit token with 400", async () => {
    const first = await audit.list(demo, { limit: 1 });
    expect(first.nextToken).toBeDefined();
    await expect(audit.list(demoB, { limit: 10, nextToken: first.nextToken })).rejects.toMatchObject(
      NOT_THIS_LISTING,
    );
    await expect(audit.list(demoB, { limit: 10, nextToken: encodePageToken({}) })).rejects.toMatchObject(
      NOT_THIS_LISTING,
    );
    const rest = await audit.list(demo, { limit: 10, nextToken: first.nextToken });
    expect(rest.items.map((e) => e.accountId)).toEqual([demo, demo]);
  });
});
