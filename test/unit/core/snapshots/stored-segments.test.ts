import { beforeEach, describe, expect, it } from 'vitest';
import type { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { newId } from '../../../../lib/core/shared/ids.ts';
import type { SnapshotService } from '../../../../lib/core/snapshots/snapshot-service.ts';
import type { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { memoryRegion } from '../../../support/memory-region.ts';

let snapshots: SnapshotService;
let queue: MemoryWorkQueue;
let volumes: VolumeService;
let alice: Caller;
let bob: Caller;

beforeEach(async () => {
  const region = memoryRegion('eu-west-1');
  ({ snapshots, volumes } = region);
  queue = region.ports.queue;
  alice = await region.account('alice-co');
  bob = await region.account('bob-co');
});

const digest = (c: string) => c.repeat(64);

async function pendingSnapshot() {
  const volume = await volumes.register(alice, { name: 'disk', sizeBytes: 64 * BLOCK_SIZE });
  return snapshots.create(alice, { volumeId: volume.volumeId, clientToken: 'token-1' });
}

describe('what a client stored for a pending snapshot, as the service records it', () => {
  it('a rerun of the create (same client token) is answered what earlier runs reported stored, from any host', async () => {
    const snapshot = await pendingSnapshot();
    const [first, second] = (await snapshots.uploadUrls(alice, snapshot.snapshotId, 2)).segments;
    const reported = [
      { segmentId: first?.segmentId as string, sha256: digest('a'), size: 1000 },
      { segmentId: second?.segmentId as string, sha256: digest('b'), size: 2000 },
    ];
    // Reported one at a time, the first twice (a retried report): recorded once each.
    await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { stored: [reported[0] as never] });
    await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { stored: [reported[0] as never] });
    await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { stored: [reported[1] as never] });

    const rerun = await snapshots.create(alice, { volumeId: snapshot.volumeId, clientToken: 'token-1' });
    expect(rerun.snapshotId).toBe(snapshot.snapshotId);
    const listed = await snapshots.uploadUrls(alice, rerun.snapshotId, 0, { listStored: true });
    expect(listed.segments).toEqual([]);
    expect([...(listed.stored ?? [])].sort((x, y) => x.segmentId.localeCompare(y.segmentId))).toEqual(
      [...reported].sort((x, y) => x.segmentId.localeCompare(y.segmentId)),
    );
  });

  it('has a segment reported stored checked as landed too (one report, both uses), not one never issued', async () => {
    const snapshot = await pendingSnapshot();
    const [issued] = (await snapshots.uploadUrls(alice, snapshot.snapshotId, 1)).segments;
    queue.messages.splice(0);
    await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, {
      stored: [
        { segmentId: issued?.segmentId as string, sha256: digest('a'), size: 1000 },
        { segmentId: newId('segment'), sha256: digest('b'), size: 1000 },
      ],
    });
    expect(queue.messages).toEqual([
      { kind: 'snapshot.checkSegment', snapshotId: snapshot.snapshotId, segmentId: issued?.segmentId },
    ]);
  });

  it('ignores a segment never issued to the session; refuses a malformed report; another account sees no snapshot', async () => {
    const snapshot = await pendingSnapshot();
    await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, {
      stored: [{ segmentId: newId('segment'), sha256: digest('c'), size: 10 }],
    });
    expect((await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { listStored: true })).stored).toEqual(
      [],
    );
    const [issued] = (await snapshots.uploadUrls(alice, snapshot.snapshotId, 1)).segments;
    for (const bad of [
      { segmentId: issued?.segmentId as string, sha256: 'not-hex', size: 10 },
      { segmentId: issued?.segmentId as string, sha256: digest('d'), size: 0 },
      { segmentId: 'seg-../../x', sha256: digest('d'), size: 10 },
    ]) {
      await expect(
        snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { stored: [bad] }),
      ).rejects.toMatchObject({
        code: 'request.invalid',
      });
    }
    await expect(
      snapshots.uploadUrls(bob, snapshot.snapshotId, 0, {
        stored: [{ segmentId: issued?.segmentId as string, sha256: digest('e'), size: 10 }],
        listStored: true,
      }),
    ).rejects.toMatchObject({ code: 'snapshot.notFound' });
    expect((await snapshots.uploadUrls(alice, snapshot.snapshotId, 0, { listStored: true })).stored).toEqual(
      [],
    );
  });
});
