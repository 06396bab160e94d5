import { beforeEach, describe, expect, it } from 'vitest';
import type { Instance, InstanceRepository } from '../../lib/core/instances/instances.ts';
import { newId } from '../../lib/core/shared/ids.ts';

let clock = Date.UTC(2026, 0, 1);
const tick = () => {
  clock += 1000;
  return new Date(clock).toISOString();
};

/** The behaviour every InstanceRepository must have; run against each implementation. */
export function instanceRepositoryContract(name: string, makeRepository: () => Promise<InstanceRepository>) {
  describe(`InstanceRepository contract: ${name}`, () => {
    let repo: InstanceRepository;
    let alice: string;

    const instance = (overrides: Partial<Instance> = {}): Instance => {
      const at = tick();
      return {
        instanceId: newId('instance'),
        accountId: alice,
        name: 'web',
        volumes: [
          { volumeId: newId('volume'), device: '/dev/vda', bootIndex: 0 },
          { volumeId: newId('volume'), device: '/dev/vdb', bootIndex: 1 },
        ],
        properties: { min_disk: '10', base_image_ref: 'ubuntu-24.04' },
        state: 'running',
        region: 'eu-west-1',
        createdAt: at,
        updatedAt: at,
        revision: 1,
        ...overrides,
      };
    };
    const next = (i: Instance, changes: Partial<Instance>): Instance => ({
      ...i,
      ...changes,
      revision: i.revision + 1,
      updatedAt: tick(),
    });

    beforeEach(async () => {
      repo = await makeRepository();
      alice = newId('account');
    });

    it('stores an instance with every field, reads it back, and attaches its volumes to it', async () => {
      const i = instance();
      expect(await repo.create(i)).toBe(true);
      expect(await repo.get(i.instanceId)).toEqual(i);
      expect(await repo.create(i)).toBe(false);
      for (const v of i.volumes) expect(await repo.attachedTo(v.volumeId)).toBe(i.instanceId);
      expect(await repo.attachedTo(newId('volume'))).toBeUndefined();
      expect(await repo.get(newId('instance'))).toBeUndefined();
    });

    it('stores nothing when one of the volumes is attached to another instance', async () => {
      const first = instance();
      await repo.create(first);
      const free = newId('volume');
      const second = instance({
        volumes: [
          { volumeId: free, device: '/dev/vda', bootIndex: 0 },
          { ...(first.volumes[1] as Instance['volumes'][number]) },
        ],
      });
      expect(await repo.create(second)).toBe(false);
      expect(await repo.get(second.instanceId)).toBeUndefined();
      expect(await repo.attachedTo(free)).toBeUndefined();
      expect(await repo.attachedTo(first.volumes[1]?.volumeId ?? '')).toBe(first.instanceId);
    });

    it("lists an account's instances newest first, a page at a time; not another account's", async () => {
      const made = [instance(), instance(), instance()];
      for (const i of made) await repo.create(i);
      await repo.create(instance({ accountId: newId('account') }));
      const first = await repo.list(alice, { limit: 2 });
      expect(first.items.map((i) => i.instanceId)).toEqual([made[2]?.instanceId, made[1]?.instanceId]);
      expect(first.nextToken).toBeDefined();
      const second = await repo.list(alice, { limit: 2, nextToken: first.nextToken });
      expect(second.items.map((i) => i.instanceId)).toEqual([made[0]?.instanceId]);
      expect(second.nextToken).toBeUndefined();
      expect((await repo.list(newId('account'), { limit: 10 })).items).toEqual([]);
    });

    it('replaces an instance at its revision, attaching what it adds and detaching what it drops', async () => {
      const i = instance();
      await repo.create(i);
      const [kept, dropped] = i.volumes as [Instance['volumes'][number], Instance['volumes'][number]];
      const added = { volumeId: newId('volume'), device: '/dev/vdc', bootIndex: 2 };
      const changed = next(i, { volumes: [kept, added], state: 'stopped', properties: { min_ram: '2048' } });
      expect(await repo.replace(i, changed)).toBe(true);
      expect(await repo.get(i.instanceId)).toEqual(changed);
      expect(await repo.attachedTo(added.volumeId)).toBe(i.instanceId);
      expect(await repo.attachedTo(dropped.volumeId)).toBeUndefined();
      expect(await repo.attachedTo(kept.volumeId)).toBe(i.instanceId);
      // A write from a stale read changes nothing.
      expect(await repo.replace(i, next(i, { name: 'stale' }))).toBe(false);
      expect((await repo.get(i.instanceId))?.name).toBe('web');
      expect(await repo.replace(instance(), next(instance(), {}))).toBe(false);
    });

    it('refuses to attach a volume another instance holds, and lets one of two racing writers win', async () => {
      const a = instance();
      const b = instance();
      await repo.create(a);
      await repo.create(b);
      const taken = a.volumes[0] as Instance['volumes'][number];
      const grab = next(b, { volumes: [...b.volumes, { ...taken, device: '/dev/vdz', bootIndex: 9 }] });
      expect(await repo.replace(b, grab)).toBe(false);
      expect(await repo.get(b.instanceId)).toEqual(b);
      expect(await repo.attachedTo(taken.volumeId)).toBe(a.instanceId);
      const results = await Promise.all([
        repo.replace(b, next(b, { state: 'stopped' })),
        repo.replace(b, next(b, { name: 'other' })),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await repo.get(b.instanceId))?.revision).toBe(2);
    });

    it('deletes an instance at its revision and frees its volumes', async () => {
      const i = instance();
      await repo.create(i);
      const moved = next(i, { state: 'stopped' });
      await repo.replace(i, moved);
      expect(await repo.delete(i)).toBe(false);
      expect(await repo.delete(moved)).toBe(true);
      expect(await repo.get(i.instanceId)).toBeUndefined();
      for (const v of i.volumes) expect(await repo.attachedTo(v.volumeId)).toBeUndefined();
      // Freed volumes attach to another instance.
      expect(await repo.create(instance({ volumes: i.volumes }))).toBe(true);
    });
  });
}
