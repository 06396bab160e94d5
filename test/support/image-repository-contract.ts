import { beforeEach, describe, expect, it } from 'vitest';
import type { Image, ImageRepository } from '../../lib/core/instances/images.ts';
import { newId } from '../../lib/core/shared/ids.ts';

let clock = Date.UTC(2026, 0, 1);
const tick = () => {
  clock += 1000;
  return new Date(clock).toISOString();
};

/** The behaviour every ImageRepository must have; run against each implementation. */
export function imageRepositoryContract(name: string, makeRepository: () => Promise<ImageRepository>) {
  describe(`ImageRepository contract: ${name}`, () => {
    let repo: ImageRepository;
    let alice: string;
    let bob: string;

    const image = (overrides: Partial<Image> = {}): Image => {
      const at = tick();
      const volumes = [
        { volumeId: newId('volume'), device: '/dev/vda', bootIndex: 0 },
        { volumeId: newId('volume'), device: '/dev/vdb', bootIndex: 1 },
      ];
      return {
        imageId: newId('image'),
        accountId: alice,
        name: 'web before upgrade',
        description: 'two disks',
        instance: {
          instanceId: newId('instance'),
          name: 'web',
          state: 'stopped',
          properties: { min_disk: '10', licence_type: 'LINUX' },
          volumes,
        },
        snapshots: volumes.map((v) => ({ ...v, snapshotId: newId('snapshot'), sizeBytes: 4 * 512 * 1024 })),
        groupId: newId('group'),
        takenAt: at,
        crashConsistent: false,
        state: 'pending',
        region: 'eu-west-1',
        createdAt: at,
        ...overrides,
      };
    };
    const ids = (images: Image[]) => images.map((i) => i.imageId);

    beforeEach(async () => {
      repo = await makeRepository();
      alice = newId('account');
      bob = newId('account');
    });

    it('stores an image with every field and reads it back; what readers fill in is not stored', async () => {
      const i = image({ copiedFrom: { region: 'us-east-1', imageId: newId('image'), accountId: bob } });
      await repo.create({
        ...i,
        progress: 40,
        snapshots: i.snapshots.map((s) => ({ ...s, state: 'pending', progress: 40 })),
      });
      expect(await repo.get(i.imageId)).toEqual(i);
      await expect(repo.create(i)).rejects.toThrow();
      expect(await repo.get(newId('image'))).toBeUndefined();
    });

    it("lists an account's images newest first, a page at a time; not another account's", async () => {
      const made = [image(), image(), image()];
      for (const i of made) await repo.create(i);
      await repo.create(image({ accountId: bob }));
      const first = await repo.list(alice, { limit: 2 });
      expect(ids(first.items)).toEqual([made[2]?.imageId, made[1]?.imageId]);
      const second = await repo.list(alice, { limit: 2, nextToken: first.nextToken });
      expect(ids(second.items)).toEqual([made[0]?.imageId]);
      expect(second.nextToken).toBeUndefined();
      expect(ids((await repo.list(bob, { limit: 10 })).items)).not.toContain(made[0]?.imageId);
    });

    it('moves an image only from the states given', async () => {
      const i = image();
      await repo.create(i);
      expect(await repo.transition(i.imageId, ['completed'], 'error', { stateReason: 'x' })).toBeUndefined();
      const done = await repo.transition(i.imageId, ['pending'], 'completed', { completedAt: tick() });
      expect(done?.state).toBe('completed');
      expect(done?.completedAt).toBeDefined();
      const broken = await repo.transition(i.imageId, ['pending', 'completed'], 'error', {
        stateReason: 'The snapshot of volume vol-x failed',
      });
      expect(broken).toMatchObject({ state: 'error', stateReason: 'The snapshot of volume vol-x failed' });
      expect(await repo.get(i.imageId)).toEqual(broken);
      expect(await repo.transition(newId('image'), ['pending'], 'completed')).toBeUndefined();
    });

    it('shares with accounts idempotently, lists what is shared with one, and takes shares back', async () => {
      const older = image();
      const newer = image();
      await repo.create(older);
      await repo.create(newer);
      const carol = newId('account');
      await repo.share(older.imageId, bob);
      await repo.share(older.imageId, bob);
      const both = await repo.share(older.imageId, carol);
      expect(both?.sharedWith).toEqual([bob, carol].sort());
      await repo.share(newer.imageId, bob);
      expect(ids((await repo.listShared(bob, { limit: 10 })).items)).toEqual([newer.imageId, older.imageId]);
      expect(ids((await repo.listShared(alice, { limit: 10 })).items)).toEqual([]);
      const after = await repo.unshare(older.imageId, bob);
      expect(after?.sharedWith).toEqual([carol]);
      expect(ids((await repo.listShared(bob, { limit: 10 })).items)).toEqual([newer.imageId]);
      await repo.unshare(older.imageId, carol);
      expect((await repo.get(older.imageId))?.sharedWith).toBeUndefined();
      expect(await repo.share(newId('image'), bob)).toBeUndefined();
    });

    it('knows which images hold a snapshot, and forgets a removed image with its shares', async () => {
      const a = image();
      const shared = a.snapshots[0] as Image['snapshots'][number];
      const b = image({ snapshots: [{ ...shared }] });
      await repo.create(a);
      await repo.create(b);
      await repo.share(a.imageId, bob);
      expect(await repo.imagesOf(shared.snapshotId)).toEqual([a.imageId, b.imageId].sort());
      expect(await repo.imagesOf(a.snapshots[1]?.snapshotId ?? '')).toEqual([a.imageId]);
      await repo.remove((await repo.get(a.imageId)) as Image);
      expect(await repo.get(a.imageId)).toBeUndefined();
      expect(await repo.imagesOf(shared.snapshotId)).toEqual([b.imageId]);
      expect(await repo.imagesOf(a.snapshots[1]?.snapshotId ?? '')).toEqual([]);
      expect((await repo.listShared(bob, { limit: 10 })).items).toEqual([]);
    });
  });
}
