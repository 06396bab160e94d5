import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ManualClock } from '../../../../lib/adapters/clock.ts';
import type { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import type { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import type { MemorySnapshotRepository } from '../../../../lib/adapters/memory/snapshots.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest } from '../../../../lib/core/format/manifest.ts';
import { readSegmentBlock } from '../../../../lib/core/format/segment.ts';
import type { AccountService } from '../../../../lib/core/identity/accounts.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { isoTime } from '../../../../lib/core/shared/clock.ts';
import {
  DEFAULT_AGENT_TIMEOUT_MS,
  type SnapshotService,
} from '../../../../lib/core/snapshots/snapshot-service.ts';
import type { Snapshot } from '../../../../lib/core/snapshots/snapshots.ts';
import type { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { type MemoryRegion, memoryRegion } from '../../../support/memory-region.ts';
import { writeSnapshot } from '../../../support/writes.ts';

const zstd = createZstdCompressor();
const BLOCKS = 8;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const UPLOAD_TIMEOUT = 6 * HOUR;
const BUCKET = 'region-bucket';

let clock: ManualClock;
let region: MemoryRegion;
let objects: MemoryObjectStore;
let queue: MemoryWorkQueue;
let snapshotRepo: MemorySnapshotRepository;
let service: SnapshotService;
let volumes: VolumeService;
let accounts: AccountService;
let alice: Caller;
let bob: Caller;
let carol: Caller;

beforeEach(async () => {
  region = memoryRegion('r1', {
    bucket: BUCKET,
    settings: { tuning: { snapshots: { uploadTimeoutMs: UPLOAD_TIMEOUT } } },
  });
  ({ clock, accounts, volumes, snapshots: service } = region);
  ({ objects, queue, snapshots: snapshotRepo } = region.ports);
  alice = await region.account('alice');
  bob = await region.account('bob');
  carol = await region.account('carol');
});

async function hostVolume(caller: Caller) {
  return volumes.register(caller, { name: 'disk', sizeBytes: BLOCKS * BLOCK_SIZE });
}

/** Writes the blocks of a pending snapshot as the CLI does and completes it. */
async function write(caller: Caller, snapshot: Snapshot, data: Buffer): Promise<Snapshot> {
  return (
    await writeSnapshot(region, caller, snapshot, data, {
      segmentTargetSize: 4 * BLOCK_SIZE,
      againstParent: false,
    })
  ).snapshot;
}

async function completed(caller: Caller, data = randomBytes(BLOCKS * BLOCK_SIZE)) {
  const volume = await hostVolume(caller);
  const snapshot = await write(caller, await service.create(caller, { volumeId: volume.volumeId }), data);
  expect(snapshot.state).toBe('completed');
  return { volume, snapshot, data };
}

async function restore(accountId: string, snapshotId: string): Promise<Buffer> {
  const manifest = decodeManifest((await objects.get(ObjectLayout.manifest(snapshotId))) ?? new Uint8Array());
  const out = Buffer.alloc(manifest.volumeSize);
  for (const e of manifest.entries) {
    const stored = await objects.getRange(
      ObjectLayout.segment(accountId, e.segmentId),
      e.offset,
      e.offset + e.storedLength,
    );
    Buffer.from(readSegmentBlock(zstd, { ...e, plainLength: BLOCK_SIZE }, stored)).copy(
      out,
      e.blockIndex * BLOCK_SIZE,
    );
  }
  return out;
}

const ids = (page: { items: Snapshot[] }) => page.items.map((s) => s.snapshotId);

describe('the recycle bin', () => {
  it('takes a deleted completed snapshot for the default 7 days, keeping its manifest', async () => {
    const { snapshot } = await completed(alice);
    clock.advance(MINUTE);
    const recycled = await service.delete(alice, snapshot.snapshotId);
    expect(recycled).toMatchObject({
      snapshotId: snapshot.snapshotId,
      state: 'recycled',
      deletedAt: isoTime(clock.now()),
      purgeAt: isoTime(clock.now() + 7 * DAY),
    });
    expect(await service.get(alice, snapshot.snapshotId)).toMatchObject({ state: 'recycled' });
    expect(await objects.head(ObjectLayout.manifest(snapshot.snapshotId))).toBeDefined();
    // It still counts against the quota until purged.
    expect((await snapshotRepo.usage(alice.accountId)).snapshots).toBe(1);
  });

  it("keeps it for the account's own number of days, and not at all with 0", async () => {
    await accounts.updateSettings(alice, { recycleBinDays: 3 });
    const three = await completed(alice);
    expect((await service.delete(alice, three.snapshot.snapshotId))?.purgeAt).toBe(
      isoTime(clock.now() + 3 * DAY),
    );
    await accounts.updateSettings(alice, { recycleBinDays: 0 });
    const none = await completed(alice);
    expect(await service.delete(alice, none.snapshot.snapshotId)).toBeUndefined();
    expect(await snapshotRepo.get(none.snapshot.snapshotId)).toBeUndefined();
    expect(await objects.head(ObjectLayout.manifest(none.snapshot.snapshotId))).toBeUndefined();
    await expect(service.get(alice, none.snapshot.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    expect(ids(await service.list(alice, { state: 'recycled' }, { limit: 10 }))).toEqual([
      three.snapshot.snapshotId,
    ]);
  });

  it('is not for snapshots that never completed: those are deleted at once', async () => {
    const volume = await hostVolume(alice);
    const pending = await service.create(alice, { volumeId: volume.volumeId });
    const queued = await service.create(alice, { volumeId: volume.volumeId, queued: true });
    const failed = await service.fail(
      alice,
      (await service.create(alice, { volumeId: volume.volumeId })).snapshotId,
      'x',
    );
    for (const s of [pending, queued, failed]) {
      expect(await service.delete(alice, s.snapshotId)).toBeUndefined();
      expect(await snapshotRepo.get(s.snapshotId)).toBeUndefined();
    }
  });

  it('hides a recycled snapshot from every other account, even one it was shared with, and when public', async () => {
    const { snapshot } = await completed(alice);
    await service.share(alice, snapshot.snapshotId, 'bob');
    await service.publish(alice, snapshot.snapshotId);
    expect((await service.get(bob, snapshot.snapshotId)).state).toBe('completed');
    expect((await service.get(carol, snapshot.snapshotId)).state).toBe('completed');
    await service.delete(alice, snapshot.snapshotId);
    for (const other of [bob, carol]) {
      await expect(service.get(other, snapshot.snapshotId)).rejects.toMatchObject({
        code: 'snapshot.notFound',
        status: 404,
      });
      await expect(service.manifestUrl(other, snapshot.snapshotId)).rejects.toMatchObject({
        code: 'snapshot.notFound',
      });
      await expect(service.undelete(other, snapshot.snapshotId)).rejects.toMatchObject({
        code: 'snapshot.notFound',
      });
    }
    expect(ids(await service.list(bob, {}, { limit: 10 }, 'shared'))).toEqual([]);
    expect(ids(await service.list(carol, {}, { limit: 10 }, 'public'))).toEqual([]);
  });

  it("lists recycled snapshots only when asked for the recycle bin's state", async () => {
    const kept = await completed(alice);
    const deleted = await completed(alice);
    await service.delete(alice, deleted.snapshot.snapshotId);
    expect(ids(await service.list(alice, {}, { limit: 10 }))).toEqual([kept.snapshot.snapshotId]);
    expect(ids(await service.list(alice, { state: 'recycled' }, { limit: 10 }))).toEqual([
      deleted.snapshot.snapshotId,
    ]);
    expect(ids(await service.list(alice, { state: 'completed' }, { limit: 10 }))).toEqual([
      kept.snapshot.snapshotId,
    ]);
    expect(ids(await service.list(alice, { volumeId: deleted.volume.volumeId }, { limit: 10 }))).toEqual([]);
  });

  it('refuses to read, share, diff or delete again a recycled snapshot, pointing at undelete', async () => {
    const { snapshot } = await completed(alice);
    const recycled = await service.delete(alice, snapshot.snapshotId);
    const id = snapshot.snapshotId;
    const undelete = { code: 'snapshot.invalidState', message: expect.stringContaining(`undelete ${id}`) };
    await expect(service.manifestUrl(alice, id)).rejects.toMatchObject(undelete);
    await expect(service.sourceForVolume(alice, id)).rejects.toMatchObject(undelete);
    await expect(service.diff(alice, id, id)).rejects.toMatchObject(undelete);
    await expect(service.delete(alice, id)).rejects.toMatchObject({
      ...undelete,
      message: expect.stringContaining(recycled?.purgeAt as string),
    });
    await expect(service.share(alice, id, 'bob')).rejects.toMatchObject({ code: 'snapshot.invalidState' });
    await expect(service.publish(alice, id)).rejects.toMatchObject({ code: 'snapshot.invalidState' });
  });

  it('gives the snapshot back whole on undelete, its shares included', async () => {
    const { snapshot, data } = await completed(alice);
    await service.share(alice, snapshot.snapshotId, 'bob');
    await service.delete(alice, snapshot.snapshotId);
    await expect(service.undelete(bob, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    const restored = await service.undelete(alice, snapshot.snapshotId);
    expect(restored.state).toBe('completed');
    expect(restored.deletedAt).toBeUndefined();
    expect(restored.purgeAt).toBeUndefined();
    expect(restored.sharedWith).toEqual([bob.accountId]);
    expect((await service.get(bob, snapshot.snapshotId)).state).toBe('completed');
    // Now bob sees it, but only its owner may undelete (or delete) it.
    await expect(service.delete(bob, snapshot.snapshotId)).rejects.toMatchObject({ code: 'auth.forbidden' });
    expect((await service.manifestUrl(alice, snapshot.snapshotId)).url).toContain(snapshot.snapshotId);
    expect((await restore(alice.accountId, snapshot.snapshotId)).equals(data)).toBe(true);
    await expect(service.undelete(alice, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.invalidState',
      message: expect.stringContaining('not in the recycle bin'),
    });
  });

  it('needs snapshot:delete to undelete', async () => {
    const { snapshot } = await completed(alice);
    await service.delete(alice, snapshot.snapshotId);
    const reader = { ...alice, role: 'member' as const, permissions: ['snapshot:create' as const] };
    await expect(service.undelete(reader, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    expect((await snapshotRepo.get(snapshot.snapshotId))?.state).toBe('recycled');
  });

  it('purges for good: record and manifest gone; purging again, or a stale record undeleted since, does nothing', async () => {
    const { snapshot } = await completed(alice);
    const recycled = (await service.delete(alice, snapshot.snapshotId)) as Snapshot;
    await service.purge(recycled);
    expect(await snapshotRepo.get(snapshot.snapshotId)).toBeUndefined();
    expect(await objects.head(ObjectLayout.manifest(snapshot.snapshotId))).toBeUndefined();
    expect((await snapshotRepo.usage(alice.accountId)).snapshots).toBe(0);
    await expect(service.purge(recycled)).resolves.toBeUndefined();
    // Expiry read the snapshot as recycled, but its owner undeleted it before the purge.
    const other = await completed(alice);
    const stale = (await service.delete(alice, other.snapshot.snapshotId)) as Snapshot;
    await service.undelete(alice, other.snapshot.snapshotId);
    await service.purge(stale);
    expect((await snapshotRepo.get(other.snapshot.snapshotId))?.state).toBe('completed');
    expect((await restore(alice.accountId, other.snapshot.snapshotId)).equals(other.data)).toBe(true);
  });
});

describe('a volume whose snapshots are in the recycle bin', () => {
  it('is deleted; they stay recoverable in the bin, and restore and make volumes without it', async () => {
    const { volume, snapshot: first } = await completed(alice);
    const data = randomBytes(BLOCKS * BLOCK_SIZE);
    const second = await write(alice, await service.create(alice, { volumeId: volume.volumeId }), data);
    expect(second.parentSnapshotId).toBe(first.snapshotId);
    const queued = await service.create(alice, { volumeId: volume.volumeId, queued: true });
    const binned = [
      await service.delete(alice, first.snapshotId),
      await service.delete(alice, second.snapshotId),
    ];
    // The queued one keeps it: named, with the command that deletes it.
    const refused = await volumes.delete(alice, volume.volumeId).catch((error: unknown) => error);
    expect(refused).toMatchObject({
      code: 'volume.hasSnapshots',
      details: { volumeId: volume.volumeId, snapshotIds: [queued.snapshotId] },
    });
    expect((refused as Error).message).toBe(
      `Volume ${volume.volumeId} still has 1 snapshot(s) outside the recycle bin: ${queued.snapshotId}. Delete them first (\`volsnap snapshot delete ${queued.snapshotId}\`), then delete the volume again; snapshots in the recycle bin do not keep it.`,
    );
    await service.delete(alice, queued.snapshotId);
    const deleted = await volumes.delete(alice, volume.volumeId);
    expect([...deleted.recycled].sort((a, b) => a.snapshotId.localeCompare(b.snapshotId))).toEqual(
      binned
        .map((s) => ({ snapshotId: s?.snapshotId as string, purgeAt: isoTime(clock.now() + 7 * DAY) }))
        .sort((a, b) => a.snapshotId.localeCompare(b.snapshotId)),
    );
    await expect(volumes.get(alice, volume.volumeId)).rejects.toMatchObject({ code: 'volume.notFound' });
    // The bin's promise holds: undeleted, the snapshot is whole, and a new volume starts from it.
    expect((await service.undelete(alice, second.snapshotId)).state).toBe('completed');
    expect((await service.manifestUrl(alice, second.snapshotId)).url).toContain(second.snapshotId);
    expect((await restore(alice.accountId, second.snapshotId)).equals(data)).toBe(true);
    const source = await service.sourceForVolume(alice, second.snapshotId);
    const again = await volumes.register(alice, { name: 'again', source });
    const next = await write(alice, await service.create(alice, { volumeId: again.volumeId }), data);
    expect(next).toMatchObject({ state: 'completed', parentSnapshotId: second.snapshotId });
    // The other one is purged when its time comes, its volume gone or not.
    await service.purge((await snapshotRepo.get(first.snapshotId)) as Snapshot);
    expect(await snapshotRepo.get(first.snapshotId)).toBeUndefined();
    expect((await snapshotRepo.usage(alice.accountId)).snapshots).toBe(2);
  });

  it('names at most 10 snapshots holding a volume, and says how to list the rest', async () => {
    const volume = await hostVolume(alice);
    const made = [];
    for (let i = 0; i < 12; i++)
      made.push(await service.create(alice, { volumeId: volume.volumeId, queued: true }));
    const refused = (await volumes.delete(alice, volume.volumeId).catch((error: unknown) => error)) as Error;
    expect(refused.message).toContain('still has 12 snapshot(s) outside the recycle bin');
    expect(refused.message).toContain(
      `and 2 more (\`volsnap snapshot list --volume ${volume.volumeId}\` lists them)`,
    );
    expect(refused.message.match(/volsnap snapshot delete snap-/g)).toHaveLength(10);
  });
});

describe('deleting a shared or public snapshot', () => {
  it('says who loses access: into the recycle bin, undelete gives it back to them', async () => {
    const { snapshot } = await completed(alice);
    await service.share(alice, snapshot.snapshotId, 'bob');
    await service.share(alice, snapshot.snapshotId, 'carol');
    await service.publish(alice, snapshot.snapshotId);
    const { recycled, accessLost } = await service.deleteReporting(alice, snapshot.snapshotId);
    expect(recycled?.state).toBe('recycled');
    // In a stable order, whatever the order of sharing.
    const grantees = [bob.accountId, carol.accountId].sort();
    expect(accessLost).toEqual({
      accountIds: grantees,
      public: true,
      message: `${snapshot.snapshotId} is shared with 2 account(s) (${grantees.join(', ')}) and public: they lose access now; \`volsnap snapshot undelete ${snapshot.snapshotId}\` before ${recycled?.purgeAt} gives it back to them.`,
    });
    await expect(service.get(bob, snapshot.snapshotId)).rejects.toMatchObject({ code: 'snapshot.notFound' });
  });

  it('says so when it is deleted for good too; a snapshot nobody else read says nothing', async () => {
    await accounts.updateSettings(alice, { recycleBinDays: 0 });
    const shared = await completed(alice);
    await service.share(alice, shared.snapshot.snapshotId, 'bob');
    expect(await service.deleteReporting(alice, shared.snapshot.snapshotId)).toEqual({
      accessLost: {
        accountIds: [bob.accountId],
        public: false,
        message: `${shared.snapshot.snapshotId} is shared with 1 account(s) (${bob.accountId}): they lose access now.`,
      },
    });
    const published = await completed(alice);
    await service.publish(alice, published.snapshot.snapshotId);
    expect((await service.deleteReporting(alice, published.snapshot.snapshotId)).accessLost?.message).toBe(
      `${published.snapshot.snapshotId} is public: they lose access now.`,
    );
    const own = await completed(alice);
    expect(await service.deleteReporting(alice, own.snapshot.snapshotId)).toEqual({});
  });
});

describe('queued snapshots', () => {
  it('are queued for an agent with a deadline, and no work for the workers', async () => {
    const volume = await hostVolume(alice);
    const queued = await service.create(alice, { volumeId: volume.volumeId, queued: true, name: 'nightly' });
    expect(queued).toMatchObject({
      state: 'queued',
      name: 'nightly',
      deadline: isoTime(clock.now() + DEFAULT_AGENT_TIMEOUT_MS),
    });
    expect(queued.leaseUntil).toBeUndefined();
    expect(queue.messages).toEqual([]);
    const scheduled = await service.createScheduled(alice, volume, { name: 'policy' }, 5 * MINUTE);
    expect(scheduled).toMatchObject({ state: 'queued', deadline: isoTime(clock.now() + 5 * MINUTE) });
    // Its blocks cannot be written before an agent takes it.
    await expect(service.uploadUrls(alice, queued.snapshotId, 1)).rejects.toMatchObject({
      code: 'snapshot.invalidState',
    });
  });

  it('are taken by one agent with start (a fresh upload deadline), then written and completed as usual', async () => {
    const volume = await hostVolume(alice);
    const queued = await service.create(alice, { volumeId: volume.volumeId, queued: true });
    clock.advance(10 * MINUTE);
    await expect(service.start(bob, queued.snapshotId)).rejects.toMatchObject({ code: 'snapshot.notFound' });
    const started = await service.start(alice, queued.snapshotId);
    expect(started).toMatchObject({ state: 'pending', deadline: isoTime(clock.now() + UPLOAD_TIMEOUT) });
    await expect(service.start(alice, queued.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.invalidState',
      status: 409,
    });
    const data = randomBytes(BLOCKS * BLOCK_SIZE);
    const done = await write(alice, started, data);
    expect(done.state).toBe('completed');
    expect((await restore(alice.accountId, done.snapshotId)).equals(data)).toBe(true);
    await expect(service.start(alice, queued.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.invalidState',
    });
  });

  it('of an image-backed volume are pending at once, with a message for the workers', async () => {
    const key = `${ObjectLayout.imagePrefix(alice.accountId)}disk.img`;
    await objects.put(key, randomBytes(BLOCK_SIZE));
    const volume = await volumes.register(alice, {
      name: 'img',
      sizeBytes: BLOCKS * BLOCK_SIZE,
      imageUri: `s3://${BUCKET}/${key}`,
    });
    const viaCreate = await service.create(alice, { volumeId: volume.volumeId, queued: true });
    const viaScheduled = await service.createScheduled(alice, volume, {}, 5 * MINUTE);
    for (const s of [viaCreate, viaScheduled]) {
      expect(s.state).toBe('pending');
      expect(s.deadline).toBe(isoTime(clock.now() + UPLOAD_TIMEOUT));
      expect(s.leaseUntil).toBeDefined();
    }
    expect(queue.messages).toEqual([
      { kind: 'snapshot.fromImage', snapshotId: viaCreate.snapshotId },
      { kind: 'snapshot.fromImage', snapshotId: viaScheduled.snapshotId },
    ]);
  });

  it("fail with the agent's reason, queued or pending; not once completed, nor for others", async () => {
    const volume = await hostVolume(alice);
    const queued = await service.create(alice, { volumeId: volume.volumeId, queued: true });
    expect(await service.fail(alice, queued.snapshotId, '  device /dev/sdz not found  ')).toMatchObject({
      state: 'error',
      stateReason: 'The agent reported: device /dev/sdz not found',
    });
    const pending = await service.start(
      alice,
      (await service.create(alice, { volumeId: volume.volumeId, queued: true })).snapshotId,
    );
    expect(await service.fail(alice, pending.snapshotId, '   ')).toMatchObject({
      state: 'error',
      stateReason: 'The agent reported: No reason given.',
    });
    const long = await service.create(alice, { volumeId: volume.volumeId, queued: true });
    expect((await service.fail(alice, long.snapshotId, 'x'.repeat(5000))).stateReason).toHaveLength(
      'The agent reported: '.length + 1000,
    );
    await expect(service.fail(alice, queued.snapshotId, 'again')).rejects.toMatchObject({
      code: 'snapshot.invalidState',
    });
    const { snapshot } = await completed(alice);
    await expect(service.fail(alice, snapshot.snapshotId, 'late')).rejects.toMatchObject({
      code: 'snapshot.invalidState',
    });
    expect((await service.get(alice, snapshot.snapshotId)).state).toBe('completed');
    const other = await service.create(alice, { volumeId: volume.volumeId, queued: true });
    await expect(service.fail(bob, other.snapshotId, 'not mine')).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    const reader = { ...alice, role: 'member' as const, permissions: [] };
    await expect(service.fail(reader, other.snapshotId, 'no right')).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    expect((await service.get(alice, other.snapshotId)).state).toBe('queued');
  });
});
