import { beforeEach, describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../lib/core/format/blocks.ts';
import { newId } from '../../lib/core/shared/ids.ts';
import type { Page } from '../../lib/core/shared/pagination.ts';
import type { Snapshot, SnapshotRepository } from '../../lib/core/snapshots/snapshots.ts';
import type { Volume, VolumeRepository } from '../../lib/core/volumes/volumes.ts';

export interface SnapshotRepositoryFixture {
  snapshots: SnapshotRepository;
  volumes: VolumeRepository;
}

let clock = Date.UTC(2026, 0, 1);
const tick = () => {
  clock += 1000;
  return new Date(clock).toISOString();
};

/** The behaviour every SnapshotRepository must have; run against each implementation. */
export function snapshotRepositoryContract(
  name: string,
  makeFixture: () => Promise<SnapshotRepositoryFixture>,
) {
  describe(`SnapshotRepository contract: ${name}`, () => {
    let f: SnapshotRepositoryFixture;
    const alice = newId('account');
    const bob = newId('account');
    let volume: Volume;

    const snapshot = (overrides: Partial<Snapshot> = {}): Snapshot => ({
      snapshotId: newId('snapshot'),
      accountId: alice,
      volumeId: volume.volumeId,
      volumeSize: volume.sizeBytes,
      blockSize: BLOCK_SIZE,
      name: 'nightly',
      description: '',
      tags: {},
      state: 'pending',
      progress: 0,
      region: 'eu-west-1',
      createdAt: tick(),
      deadline: '2026-01-02T00:00:00.000Z',
      ...overrides,
    });

    beforeEach(async () => {
      f = await makeFixture();
      volume = {
        volumeId: newId('volume'),
        accountId: alice,
        name: 'disk',
        sizeBytes: 64 * BLOCK_SIZE,
        tags: {},
        region: 'eu-west-1',
        createdAt: tick(),
      };
      await f.volumes.create(volume);
    });

    it('stores a snapshot, and its volume can no longer be deleted while it exists', async () => {
      const s = snapshot({ tags: { env: 'prod' } });
      expect(await f.snapshots.create(s)).toBeUndefined();
      expect(await f.snapshots.get(s.snapshotId)).toEqual(s);
      expect(await f.volumes.deleteUnlessSnapshots(alice, volume.volumeId)).toEqual({
        holding: [s.snapshotId],
        recycled: [],
      });
      await f.snapshots.remove(s);
      expect(await f.snapshots.get(s.snapshotId)).toBeUndefined();
      expect(await f.volumes.deleteUnlessSnapshots(alice, volume.volumeId)).toEqual({
        holding: [],
        recycled: [],
      });
    });

    it('deletes a volume whose snapshots are all in the recycle bin; they stay, recoverable and purgeable', async () => {
      const binned = snapshot({ state: 'completed' });
      const pending = snapshot();
      await f.snapshots.create(binned);
      await f.snapshots.create(pending);
      const purgeAt = '2026-01-08T00:00:00.000Z';
      await f.snapshots.transition(binned.snapshotId, ['completed'], 'recycled', { purgeAt });
      // One outside the bin keeps the volume.
      expect(await f.volumes.deleteUnlessSnapshots(alice, volume.volumeId)).toEqual({
        holding: [pending.snapshotId],
        recycled: [],
      });
      await f.snapshots.remove(pending);
      expect(await f.volumes.deleteUnlessSnapshots(alice, volume.volumeId)).toEqual({
        holding: [],
        recycled: [{ snapshotId: binned.snapshotId, purgeAt }],
      });
      expect(await f.volumes.get(alice, volume.volumeId)).toBeUndefined();
      // Without its volume, the snapshot is undeleted and purged as any other.
      const restored = await f.snapshots.transition(binned.snapshotId, ['recycled'], 'completed', {
        purgeAt: undefined,
      });
      expect(restored).toMatchObject({ state: 'completed', volumeId: volume.volumeId });
      await f.snapshots.transition(binned.snapshotId, ['completed'], 'recycled', { purgeAt });
      const deleting = await f.snapshots.transition(binned.snapshotId, ['recycled'], 'deleting');
      await f.snapshots.remove(deleting as Snapshot);
      expect(await f.snapshots.get(binned.snapshotId)).toBeUndefined();
      expect((await f.volumes.list(alice, {}, { limit: 10 })).items).toEqual([]);
      // A new snapshot of the deleted volume is refused, as for any missing volume.
      await expect(f.snapshots.create(snapshot())).rejects.toMatchObject({ code: 'volume.notFound' });
    });

    it("refuses a snapshot of a missing volume or of another account's volume, storing nothing", async () => {
      const ofMissing = snapshot({ volumeId: newId('volume') });
      await expect(f.snapshots.create(ofMissing)).rejects.toMatchObject({ code: 'volume.notFound' });
      const byBob = snapshot({ accountId: bob });
      await expect(f.snapshots.create(byBob)).rejects.toMatchObject({ code: 'volume.notFound' });
      expect(await f.snapshots.get(ofMissing.snapshotId)).toBeUndefined();
      expect(await f.snapshots.get(byBob.snapshotId)).toBeUndefined();
    });

    it('remembers a client token: the second create stores nothing and names the first snapshot', async () => {
      const first = snapshot();
      const token = { token: 'tok-1', requestHash: 'h1' };
      expect(await f.snapshots.create(first, token)).toBeUndefined();
      const second = snapshot();
      expect(await f.snapshots.create(second, { token: 'tok-1', requestHash: 'h2' })).toEqual({
        snapshotId: first.snapshotId,
        requestHash: 'h1',
      });
      expect(await f.snapshots.get(second.snapshotId)).toBeUndefined();
      expect(await f.volumes.deleteUnlessSnapshots(alice, volume.volumeId)).toEqual({
        holding: [first.snapshotId],
        recycled: [],
      });
    });

    it('lists by account, volume, state, name and tag, newest first, in pages', async () => {
      const made: Snapshot[] = [];
      for (let i = 0; i < 5; i++) {
        const s = snapshot({
          name: i % 2 ? `odd-${i}` : `even-${i}`,
          state: i === 4 ? 'completed' : 'pending',
          tags: { n: String(i) },
        });
        await f.snapshots.create(s);
        made.push(s);
      }
      const ids = async (filter: Parameters<SnapshotRepository['list']>[1], account = alice) => {
        const seen: string[] = [];
        let nextToken: string | undefined;
        do {
          const page = await f.snapshots.list(account, filter, { limit: 2, nextToken });
          seen.push(...page.items.map((s) => s.name));
          nextToken = page.nextToken;
        } while (nextToken);
        return seen;
      };
      expect(await ids({})).toEqual(['even-4', 'odd-3', 'even-2', 'odd-1', 'even-0']);
      expect(await ids({ volumeId: volume.volumeId })).toEqual([
        'even-4',
        'odd-3',
        'even-2',
        'odd-1',
        'even-0',
      ]);
      expect(await ids({ state: 'completed' })).toEqual(['even-4']);
      expect(await ids({ name: 'odd' })).toEqual(['odd-3', 'odd-1']);
      expect(await ids({ tags: { n: '2' } })).toEqual(['even-2']);
      expect(await ids({}, bob)).toEqual([]);
      expect(await ids({ volumeId: volume.volumeId }, bob)).toEqual([]);
    });

    it("finds a volume's newest completed snapshot, ignoring pending and failed ones", async () => {
      expect(await f.snapshots.latestCompleted(volume.volumeId)).toBeUndefined();
      const old = snapshot({ state: 'completed' });
      const newer = snapshot({ state: 'completed' });
      await f.snapshots.create(old);
      await f.snapshots.create(newer);
      await f.snapshots.create(snapshot({ state: 'pending' }));
      await f.snapshots.create(snapshot({ state: 'error' }));
      expect((await f.snapshots.latestCompleted(volume.volumeId))?.snapshotId).toBe(newer.snapshotId);
    });

    it("finds a volume's newest completed snapshot under newer pending ones; out of completed, it drops out", async () => {
      const older = snapshot();
      const newer = snapshot();
      for (const s of [older, newer]) {
        await f.snapshots.create(s);
        await f.snapshots.transition(s.snapshotId, ['pending'], 'completed', { stats: stats(1) });
      }
      for (let i = 0; i < 5; i++) await f.snapshots.create(snapshot());
      expect((await f.snapshots.latestCompleted(volume.volumeId))?.snapshotId).toBe(newer.snapshotId);
      await f.snapshots.transition(newer.snapshotId, ['completed'], 'recycled');
      expect((await f.snapshots.latestCompleted(volume.volumeId))?.snapshotId).toBe(older.snapshotId);
      await f.snapshots.transition(newer.snapshotId, ['recycled'], 'completed');
      expect((await f.snapshots.latestCompleted(volume.volumeId))?.snapshotId).toBe(newer.snapshotId);
    });

    it('refuses a snapshot past the limit of its kind in flight or of its volume, and frees the place when one leaves pending', async () => {
      const limits = {
        maxSnapshots: 100,
        maxStoredBytes: 2 ** 40,
        maxPendingSnapshots: 2,
        maxPendingSnapshotsPerVolume: 4,
        maxCopiesInFlight: 1,
        maxImportsInFlight: 1,
      };
      const copiedFrom = { region: 'us-east-1', snapshotId: newId('snapshot'), accountId: alice };
      const importedFrom = { source: 'https://example.com/disk.raw', format: 'raw' as const, ref: 'r' };
      const a = snapshot({ state: 'queued' });
      const b = snapshot();
      await f.snapshots.create(a, undefined, limits);
      await f.snapshots.create(b, undefined, limits);
      const c = snapshot();
      await expect(f.snapshots.create(c, undefined, limits)).rejects.toMatchObject({
        code: 'quota.inFlight',
        details: { quota: 'maxPendingSnapshots', limit: 2, used: 2 },
      });
      expect(await f.snapshots.get(c.snapshotId)).toBeUndefined();
      // Copies and imports have limits of their own.
      await f.snapshots.create(snapshot({ copiedFrom }), undefined, limits);
      await expect(f.snapshots.create(snapshot({ copiedFrom }), undefined, limits)).rejects.toMatchObject({
        code: 'quota.inFlight',
        details: { quota: 'maxCopiesInFlight', limit: 1, used: 1 },
      });
      await f.snapshots.create(snapshot({ importedFrom }), undefined, limits);
      expect(await f.snapshots.usage(alice)).toMatchObject({
        snapshots: 4,
        pendingSnapshots: 2,
        copiesInFlight: 1,
        importsInFlight: 1,
      });
      // The volume has 4 in flight: its own limit, whatever the kind.
      await expect(
        f.snapshots.create(c, undefined, { ...limits, maxPendingSnapshots: 10 }),
      ).rejects.toMatchObject({
        code: 'quota.inFlight',
        details: { quota: 'maxPendingSnapshotsPerVolume', limit: 4, used: 4 },
      });
      // queued → pending keeps the place; pending → completed, error or deleting gives it back.
      await f.snapshots.transition(a.snapshotId, ['queued'], 'pending');
      expect((await f.snapshots.usage(alice)).pendingSnapshots).toBe(2);
      await f.snapshots.transition(a.snapshotId, ['queued', 'pending'], 'error', {
        stateReason: 'agent gone',
      });
      await f.snapshots.create(c, undefined, limits);
      await f.snapshots.transition(c.snapshotId, ['pending'], 'completed', { stats: stats(5) });
      const deleting = await f.snapshots.transition(b.snapshotId, ['pending'], 'deleting');
      await f.snapshots.remove(deleting as Snapshot);
      // A move that does not happen changes no count.
      expect(await f.snapshots.transition(b.snapshotId, ['pending'], 'error')).toBeUndefined();
      expect(await f.snapshots.usage(alice)).toMatchObject({
        snapshots: 4,
        storedBytes: 5,
        pendingSnapshots: 0,
        copiesInFlight: 1,
        importsInFlight: 1,
      });
      await f.snapshots.create(snapshot(), undefined, limits);
      await f.snapshots.create(snapshot(), undefined, limits);
    });

    it('moves a snapshot only from the states named: of two racing writers, one wins', async () => {
      const s = snapshot();
      await f.snapshots.create(s);
      const [completed, failed] = await Promise.all([
        f.snapshots.transition(s.snapshotId, ['pending'], 'completed', {
          progress: 100,
          completedAt: tick(),
        }),
        f.snapshots.transition(s.snapshotId, ['pending'], 'error', { stateReason: 'late' }),
      ]);
      expect([completed, failed].filter(Boolean)).toHaveLength(1);
      const winner = completed ?? failed;
      expect((await f.snapshots.get(s.snapshotId))?.state).toBe(winner?.state);
      expect(await f.snapshots.transition(newId('snapshot'), ['pending'], 'error')).toBeUndefined();
    });

    it('updates name, description and tags, but not of a snapshot being deleted', async () => {
      const s = snapshot();
      await f.snapshots.create(s);
      const updated = await f.snapshots.updateMetadata(s.snapshotId, {
        name: 'renamed',
        tags: { a: 'b' },
        description: undefined,
      });
      expect(updated).toMatchObject({ name: 'renamed', tags: { a: 'b' }, description: '' });
      await f.snapshots.transition(s.snapshotId, ['pending'], 'deleting');
      expect(await f.snapshots.updateMetadata(s.snapshotId, { name: 'again' })).toBeUndefined();
    });

    it('stores and updates tags named like Object.prototype members (constructor, toString…)', async () => {
      const s = snapshot({ tags: { constructor: 'c', valueOf: 'v' } });
      await f.snapshots.create(s);
      expect((await f.snapshots.get(s.snapshotId))?.tags).toEqual({ constructor: 'c', valueOf: 'v' });
      const tags = { constructor: 'x', toString: 't', hasOwnProperty: 'h' };
      const updated = await f.snapshots.updateMetadata(s.snapshotId, { tags });
      expect(updated?.tags).toEqual(tags);
      expect((await f.snapshots.get(s.snapshotId))?.tags).toEqual(tags);
    });

    it('counts the parts of a snapshot written in parts, each once, while it is pending', async () => {
      const s = snapshot({ parts: 3 });
      await f.snapshots.create(s);
      expect((await f.snapshots.get(s.snapshotId))?.parts).toBe(3);
      expect(
        await Promise.all([
          f.snapshots.completePart(s.snapshotId, 0),
          f.snapshots.completePart(s.snapshotId, 2),
        ]),
      ).toEqual(expect.arrayContaining([1, 2]));
      expect(await f.snapshots.completePart(s.snapshotId, 2)).toBe(2);
      expect(await f.snapshots.completePart(s.snapshotId, 1)).toBe(3);
      await f.snapshots.transition(s.snapshotId, ['pending'], 'error');
      expect(await f.snapshots.completePart(s.snapshotId, 1)).toBeUndefined();
    });

    it("keeps each upload session's segments", async () => {
      const s = snapshot();
      await f.snapshots.create(s);
      const ids = Array.from({ length: 30 }, () => newId('segment'));
      await f.snapshots.addSessionSegments(s.snapshotId, ids.slice(0, 20));
      await f.snapshots.addSessionSegments(s.snapshotId, ids.slice(15));
      expect(await f.snapshots.sessionSegments(s.snapshotId)).toEqual(new Set(ids));
      expect(await f.snapshots.sessionSegments(newId('snapshot'))).toEqual(new Set());
    });

    it('issues upload keys to a session within its limits, atomically, and forgets them with it', async () => {
      const s = snapshot();
      await f.snapshots.create(s);
      const limits = { segments: 30, manifests: 2 };
      const ids = Array.from({ length: 30 }, () => newId('segment'));
      const manifest = newId('manifestUpload');
      const issue = (segmentIds: string[], manifestUploadIds: string[] = []) =>
        f.snapshots.issueSessionUploads(s.snapshotId, { segmentIds, manifestUploadIds }, limits);
      expect(await issue(ids.slice(0, 25), [manifest])).toBe(true);
      // Past the limit: nothing of it is recorded.
      const over = newId('segment');
      expect(await issue([...ids.slice(25), over])).toBe(false);
      expect(await issue(ids.slice(25))).toBe(true);
      expect(await issue([], [newId('manifestUpload'), newId('manifestUpload')])).toBe(false);
      expect(await f.snapshots.sessionSegments(s.snapshotId)).toEqual(new Set(ids));
      expect(await f.snapshots.sessionManifestUploads(s.snapshotId)).toEqual(new Set([manifest]));
      await f.snapshots.remove(s);
      expect(await f.snapshots.sessionSegments(s.snapshotId)).toEqual(new Set());
      expect(await f.snapshots.sessionManifestUploads(s.snapshotId)).toEqual(new Set());
    });

    it('records what was stored at issued session segments only, answers them, and forgets them with it', async () => {
      const s = snapshot();
      await f.snapshots.create(s);
      const ids = Array.from({ length: 3 }, () => newId('segment'));
      await f.snapshots.issueSessionUploads(
        s.snapshotId,
        { segmentIds: ids, manifestUploadIds: [] },
        { segments: 10, manifests: 1 },
      );
      const stored = (id: string, c: string, size: number) => ({ segmentId: id, sha256: c.repeat(64), size });
      await f.snapshots.recordStoredSegments(s.snapshotId, [stored(ids[0] as string, 'a', 100)]);
      // Reported again (a retried report) and with one never issued: the latter is ignored.
      await f.snapshots.recordStoredSegments(s.snapshotId, [
        stored(ids[0] as string, 'a', 100),
        stored(ids[1] as string, 'b', 200),
        stored(newId('segment'), 'c', 300),
      ]);
      const answered = await f.snapshots.storedSegments(s.snapshotId, 100);
      expect([...answered].sort((x, y) => x.size - y.size)).toEqual([
        stored(ids[0] as string, 'a', 100),
        stored(ids[1] as string, 'b', 200),
      ]);
      expect(await f.snapshots.storedSegments(s.snapshotId, 1)).toHaveLength(1);
      // The segment ids of the session stay as they were.
      expect(await f.snapshots.sessionSegments(s.snapshotId)).toEqual(new Set(ids));
      await f.snapshots.remove(s);
      expect(await f.snapshots.storedSegments(s.snapshotId, 100)).toEqual([]);
    });

    const stats = (newBytes: number) => ({
      blockCount: 1,
      storedBytes: newBytes,
      newBlocks: 1,
      newBytes,
      reusedBlocks: 0,
      zeroBlocks: 63,
    });

    it('counts snapshots and the bytes they added per account, and refuses a create past a quota, storing nothing', async () => {
      const limits = { maxSnapshots: 2, maxStoredBytes: 1000 };
      const a = snapshot();
      await f.snapshots.create(a, undefined, limits);
      await f.snapshots.transition(a.snapshotId, ['pending'], 'completed', { stats: stats(600) });
      expect(await f.snapshots.usage(alice)).toMatchObject({ snapshots: 1, storedBytes: 600 });
      const b = snapshot();
      await f.snapshots.create(b, undefined, limits);
      const c = snapshot();
      await expect(f.snapshots.create(c, undefined, limits)).rejects.toMatchObject({
        code: 'quota.exceeded',
        details: { quota: 'snapshots', limit: 2, used: 2 },
      });
      expect(await f.snapshots.get(c.snapshotId)).toBeUndefined();
      await f.snapshots.remove((await f.snapshots.get(b.snapshotId)) as Snapshot);
      await f.snapshots.transition(a.snapshotId, ['completed'], 'completed');
      await expect(
        f.snapshots.create(c, undefined, { maxSnapshots: 10, maxStoredBytes: 600 }),
      ).rejects.toMatchObject({
        code: 'quota.exceeded',
        details: { quota: 'storedBytes', limit: 600, used: 600 },
      });
      await f.snapshots.remove((await f.snapshots.get(a.snapshotId)) as Snapshot);
      expect(await f.snapshots.usage(alice)).toMatchObject({ snapshots: 0, storedBytes: 0 });
      expect(await f.snapshots.usage(bob)).toMatchObject({ snapshots: 0, storedBytes: 0 });
    });

    it('shares completed snapshots with accounts and publicly, lists them for the grantee, and takes shares back', async () => {
      const pending = snapshot();
      await f.snapshots.create(pending);
      expect(await f.snapshots.share(pending.snapshotId, { accountId: bob })).toBeUndefined();
      const s = snapshot({ name: 'golden' });
      await f.snapshots.create(s);
      await f.snapshots.transition(s.snapshotId, ['pending'], 'completed', { stats: stats(10) });
      expect((await f.snapshots.share(s.snapshotId, { accountId: bob }))?.sharedWith).toEqual([bob]);
      expect((await f.snapshots.share(s.snapshotId, { accountId: bob }))?.sharedWith).toEqual([bob]);
      const carol = newId('account');
      await f.snapshots.share(s.snapshotId, { accountId: carol });
      expect((await f.snapshots.get(s.snapshotId))?.sharedWith).toEqual([bob, carol].sort());
      expect(
        (await f.snapshots.listShared({ accountId: bob }, {}, { limit: 10 })).items.map((x) => x.snapshotId),
      ).toEqual([s.snapshotId]);
      expect(
        (await f.snapshots.listShared({ accountId: bob }, { name: 'other' }, { limit: 10 })).items,
      ).toEqual([]);
      expect((await f.snapshots.listShared('public', {}, { limit: 10 })).items).toEqual([]);
      expect((await f.snapshots.share(s.snapshotId, 'public'))?.public).toBe(true);
      expect(
        (await f.snapshots.listShared('public', {}, { limit: 10 })).items.map((x) => x.snapshotId),
      ).toContain(s.snapshotId);
      await f.snapshots.unshare(s.snapshotId, { accountId: bob });
      await f.snapshots.unshare(s.snapshotId, 'public');
      const after = await f.snapshots.get(s.snapshotId);
      expect(after?.sharedWith).toEqual([carol]);
      expect(after?.public).toBeUndefined();
      expect((await f.snapshots.listShared({ accountId: bob }, {}, { limit: 10 })).items).toEqual([]);
      expect(
        (await f.snapshots.listShared('public', {}, { limit: 10 })).items.map((x) => x.snapshotId),
      ).not.toContain(s.snapshotId);
      await f.snapshots.remove(after as Snapshot);
      expect((await f.snapshots.listShared({ accountId: carol }, {}, { limit: 10 })).items).toEqual([]);
    });

    it('removes the fields a transition gives as undefined (out of the recycle bin, the bin dates go)', async () => {
      const s = snapshot({ state: 'completed', progress: 100 });
      await f.snapshots.create(s);
      const recycled = await f.snapshots.transition(s.snapshotId, ['completed'], 'recycled', {
        deletedAt: '2026-01-05T00:00:00.000Z',
        purgeAt: '2026-01-12T00:00:00.000Z',
      });
      expect(recycled).toMatchObject({ state: 'recycled', purgeAt: '2026-01-12T00:00:00.000Z' });
      const back = await f.snapshots.transition(s.snapshotId, ['recycled'], 'completed', {
        deletedAt: undefined,
        purgeAt: undefined,
      });
      expect(back?.state).toBe('completed');
      expect(back).not.toHaveProperty('purgeAt');
      expect(await f.snapshots.get(s.snapshotId)).not.toHaveProperty('deletedAt');
    });

    it('completes a child only while its parent is in one of the states it names', async () => {
      const parent = snapshot({ state: 'completed', progress: 100 });
      const child = snapshot({ parentSnapshotId: parent.snapshotId });
      await f.snapshots.create(parent);
      await f.snapshots.create(child);
      const alive = { snapshotId: parent.snapshotId, states: ['completed', 'recycled'] as const };
      await f.snapshots.transition(parent.snapshotId, ['completed'], 'deleting');
      expect(
        await f.snapshots.transition(child.snapshotId, ['pending'], 'completed', {}, alive),
      ).toBeUndefined();
      expect((await f.snapshots.get(child.snapshotId))?.state).toBe('pending');
      await f.snapshots.transition(parent.snapshotId, ['deleting'], 'deleting', {});
      const other = snapshot({ state: 'recycled' });
      await f.snapshots.create(other);
      expect(
        await f.snapshots.transition(
          child.snapshotId,
          ['pending'],
          'completed',
          {},
          {
            snapshotId: other.snapshotId,
            states: alive.states,
          },
        ),
      ).toMatchObject({ state: 'completed' });
    });

    it('holds a completed snapshot for its readers, and releases each hold alone', async () => {
      const s = snapshot({ state: 'completed', progress: 100 });
      await f.snapshots.create(s);
      expect(await f.snapshots.hold(s.snapshotId, 'exp-1', '2026-02-01T00:00:00.000Z')).toBe(true);
      expect(await f.snapshots.hold(s.snapshotId, 'snap-copy', '2026-03-01T00:00:00.000Z')).toBe(true);
      expect((await f.snapshots.get(s.snapshotId))?.holds).toEqual({
        'exp-1': '2026-02-01T00:00:00.000Z',
        'snap-copy': '2026-03-01T00:00:00.000Z',
      });
      await f.snapshots.release(s.snapshotId, 'exp-1');
      await f.snapshots.release(s.snapshotId, 'exp-1');
      expect((await f.snapshots.get(s.snapshotId))?.holds).toEqual({
        'snap-copy': '2026-03-01T00:00:00.000Z',
      });
      await f.snapshots.release(s.snapshotId, 'snap-copy');
      expect(await f.snapshots.get(s.snapshotId)).not.toHaveProperty('holds');
      const pending = snapshot();
      await f.snapshots.create(pending);
      expect(await f.snapshots.hold(pending.snapshotId, 'exp-2', '2026-02-01T00:00:00.000Z')).toBe(false);
    });

    it('renews a lease only from the value the caller saw, so one of two racing reapers wins', async () => {
      const s = snapshot({ leaseUntil: '2026-01-01T00:20:00.000Z', leaseParts: 0 });
      await f.snapshots.create(s);
      const lease = { leaseUntil: '2026-01-01T00:40:00.000Z', leaseParts: 0, dispatches: 1 };
      const won = await Promise.all([
        f.snapshots.renewLease(s.snapshotId, s.leaseUntil, lease),
        f.snapshots.renewLease(s.snapshotId, s.leaseUntil, lease),
      ]);
      expect(won.filter(Boolean)).toHaveLength(1);
      expect(await f.snapshots.get(s.snapshotId)).toMatchObject(lease);
      expect(await f.snapshots.renewLease(s.snapshotId, undefined, lease)).toBe(false);
    });

    it('lets a worker extend the lease of pending work that has one, so a reaper that read the old one loses', async () => {
      const s = snapshot({ leaseUntil: '2026-01-01T00:03:00.000Z', leaseParts: 0, dispatches: 0 });
      await f.snapshots.create(s);
      await f.snapshots.extendLease(s.snapshotId, '2026-01-01T00:05:00.000Z');
      expect((await f.snapshots.get(s.snapshotId))?.leaseUntil).toBe('2026-01-01T00:05:00.000Z');
      const lease = { leaseUntil: '2026-01-01T00:06:00.000Z', leaseParts: 0, dispatches: 1 };
      expect(await f.snapshots.renewLease(s.snapshotId, s.leaseUntil, lease)).toBe(false);
      // Work without a lease (an agent's upload) gets none; ended work keeps what it had.
      const upload = snapshot();
      await f.snapshots.create(upload);
      await f.snapshots.extendLease(upload.snapshotId, '2026-01-01T00:05:00.000Z');
      expect((await f.snapshots.get(upload.snapshotId))?.leaseUntil).toBeUndefined();
      await f.snapshots.transition(s.snapshotId, ['pending'], 'error', { stateReason: 'failed' });
      await f.snapshots.extendLease(s.snapshotId, '2026-01-01T00:09:00.000Z');
      expect((await f.snapshots.get(s.snapshotId))?.leaseUntil).toBe('2026-01-01T00:05:00.000Z');
    });

    it('claims a lease with what it is for in one write: one of two racing completions wins', async () => {
      const s = snapshot();
      await f.snapshots.create(s);
      const lease = { leaseUntil: '2026-01-01T00:40:00.000Z', leaseParts: 0, dispatches: 0 };
      const claim = (id: string) => ({
        verification: { manifestUploadId: id, segmentsPerPart: 64 },
        parts: 3,
        deadline: '2026-01-01T06:00:00.000Z',
      });
      const won = await Promise.all([
        f.snapshots.renewLease(s.snapshotId, undefined, lease, claim('mup-aaaaaaaaaaaaaaaa')),
        f.snapshots.renewLease(s.snapshotId, undefined, lease, claim('mup-bbbbbbbbbbbbbbbb')),
      ]);
      expect(won.filter(Boolean)).toHaveLength(1);
      const winner = won[0] ? 'mup-aaaaaaaaaaaaaaaa' : 'mup-bbbbbbbbbbbbbbbb';
      expect(await f.snapshots.get(s.snapshotId)).toMatchObject({ ...lease, ...claim(winner) });
    });

    /** Every id a maintenance listing returns, a page of one at a time. */
    const everyId = async (
      list: (page: { limit: number; nextToken?: string }) => Promise<Page<Snapshot>>,
    ) => {
      const ids: string[] = [];
      let nextToken: string | undefined;
      do {
        const page = await list({ limit: 1, ...(nextToken ? { nextToken } : {}) });
        ids.push(...page.items.map((s) => s.snapshotId));
        nextToken = page.nextToken;
      } while (nextToken);
      return ids;
    };
    const at = (time: string) => `2026-01-01T${time}:00.000Z`;

    it('lists, for maintenance, the snapshots in one state in due order, and with a time only those due before it', async () => {
      const late = snapshot({ state: 'queued', deadline: at('01:00') });
      const later = snapshot({ state: 'queued', deadline: at('02:00') });
      const notDue = snapshot({ state: 'queued', deadline: at('09:00') });
      const pending = snapshot({ deadline: at('01:30') });
      const failed = snapshot({ state: 'error', deadline: at('00:30') });
      for (const s of [later, notDue, late, pending, failed]) await f.snapshots.create(s);
      const queued = (before?: string) => everyId((page) => f.snapshots.listInState('queued', page, before));
      expect(await queued(at('03:00'))).toEqual([late.snapshotId, later.snapshotId]);
      expect(await queued()).toEqual([late.snapshotId, later.snapshotId, notDue.snapshotId]);
      expect(await everyId((page) => f.snapshots.listInState('pending', page, at('03:00')))).toEqual([
        pending.snapshotId,
      ]);
      // A state change moves it: out of `queued` (failed: out of every listing), into `pending` by its new deadline.
      await f.snapshots.transition(late.snapshotId, ['queued'], 'error', { stateReason: 'late' });
      await f.snapshots.transition(later.snapshotId, ['queued'], 'pending', { deadline: at('00:10') });
      expect(await queued(at('03:00'))).toEqual([]);
      expect(await everyId((page) => f.snapshots.listInState('pending', page, at('03:00')))).toEqual([
        later.snapshotId,
        pending.snapshotId,
      ]);
      for (const state of ['queued', 'pending', 'deleting', 'recycled', 'completed'] as const) {
        expect(await everyId((page) => f.snapshots.listInState(state, page))).not.toContain(late.snapshotId);
      }
    });

    it('lists completed snapshots for GC, recycled ones by purge time, deleting ones by deletion time', async () => {
      const kept = snapshot({ state: 'completed' });
      const binned = snapshot({ state: 'completed' });
      const purgedLater = snapshot({ state: 'completed' });
      const gone = snapshot({ state: 'completed' });
      for (const s of [kept, binned, purgedLater, gone]) await f.snapshots.create(s);
      await f.snapshots.transition(binned.snapshotId, ['completed'], 'recycled', {
        deletedAt: at('00:00'),
        purgeAt: at('05:00'),
      });
      await f.snapshots.transition(purgedLater.snapshotId, ['completed'], 'recycled', {
        deletedAt: at('00:00'),
        purgeAt: at('08:00'),
      });
      await f.snapshots.transition(gone.snapshotId, ['completed'], 'deleting', { deletedAt: at('00:05') });
      expect(await everyId((page) => f.snapshots.listInState('completed', page))).toEqual([kept.snapshotId]);
      expect(await everyId((page) => f.snapshots.listInState('recycled', page, at('06:00')))).toEqual([
        binned.snapshotId,
      ]);
      expect(await everyId((page) => f.snapshots.listInState('deleting', page, at('00:06')))).toEqual([
        gone.snapshotId,
      ]);
      expect(await everyId((page) => f.snapshots.listInState('deleting', page, at('00:05')))).toEqual([]);
      // Undeleted: completed again, listed for GC again and no longer due for purging.
      await f.snapshots.transition(binned.snapshotId, ['recycled'], 'completed', {
        deletedAt: undefined,
        purgeAt: undefined,
      });
      expect(await everyId((page) => f.snapshots.listInState('recycled', page, at('06:00')))).toEqual([]);
      expect((await everyId((page) => f.snapshots.listInState('completed', page))).sort()).toEqual(
        [kept.snapshotId, binned.snapshotId].sort(),
      );
    });

    it('lists pending snapshots whose lease lapsed, following the lease as it is renewed, extended and ends', async () => {
      const first = snapshot();
      const second = snapshot();
      const unleased = snapshot();
      for (const s of [first, second, unleased]) await f.snapshots.create(s);
      const lease = (leaseUntil: string) => ({ leaseUntil, leaseParts: 0, dispatches: 0 });
      await f.snapshots.renewLease(first.snapshotId, undefined, lease(at('00:10')));
      await f.snapshots.renewLease(second.snapshotId, undefined, lease(at('00:20')));
      const lapsed = (before: string) => everyId((page) => f.snapshots.listLapsed(before, page));
      expect(await lapsed(at('00:15'))).toEqual([first.snapshotId]);
      expect(await lapsed(at('00:30'))).toEqual([first.snapshotId, second.snapshotId]);
      await f.snapshots.extendLease(first.snapshotId, at('00:40'));
      expect(await lapsed(at('00:30'))).toEqual([second.snapshotId]);
      await f.snapshots.renewLease(second.snapshotId, at('00:20'), lease(at('00:50')));
      expect(await lapsed(at('00:45'))).toEqual([first.snapshotId]);
      await f.snapshots.transition(first.snapshotId, ['pending'], 'error', { stateReason: 'failed' });
      expect(await lapsed(at('01:00'))).toEqual([second.snapshotId]);
    });

    it('lists every snapshot of every account for maintenance, across pages', async () => {
      const mine = [snapshot(), snapshot({ state: 'completed' }), snapshot()];
      for (const s of mine) await f.snapshots.create(s);
      const seen = new Set<string>();
      let nextToken: string | undefined;
      do {
        const page = await f.snapshots.listAll({ limit: 1, ...(nextToken ? { nextToken } : {}) });
        for (const s of page.items) seen.add(s.snapshotId);
        nextToken = page.nextToken;
      } while (nextToken);
      for (const s of mine) expect(seen).toContain(s.snapshotId);
    });
  });
}
