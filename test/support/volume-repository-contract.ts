import { beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../../lib/core/shared/ids.ts';
import type { Volume, VolumeRepository } from '../../lib/core/volumes/volumes.ts';

export interface VolumeRepositoryFixture {
  repo: VolumeRepository;
  /** Makes `snapshotId` a snapshot of `volumeId`, as the snapshot store will. */
  recordSnapshot(volumeId: string, snapshotId: string): Promise<void>;
}

let clock = Date.UTC(2026, 0, 1);
function volume(accountId: string, overrides: Partial<Volume> = {}): Volume {
  clock += 1000;
  return {
    volumeId: newId('volume'),
    accountId,
    name: 'disk',
    sizeBytes: 64 * 1024 * 1024,
    tags: {},
    region: 'eu-west-1',
    createdAt: new Date(clock).toISOString(),
    ...overrides,
  };
}

/** The behaviour every VolumeRepository must have; run against each implementation. */
export function volumeRepositoryContract(name: string, makeFixture: () => Promise<VolumeRepositoryFixture>) {
  describe(`VolumeRepository contract: ${name}`, () => {
    let fixture: VolumeRepositoryFixture;
    const alice = newId('account');
    const bob = newId('account');
    beforeEach(async () => {
      fixture = await makeFixture();
    });

    it('returns what was created, to its owner only', async () => {
      const v = volume(alice, { tags: { env: 'prod' }, imageUri: 's3://bucket/disk.img' });
      await fixture.repo.create(v);
      expect(await fixture.repo.get(alice, v.volumeId)).toEqual(v);
      expect(await fixture.repo.get(bob, v.volumeId)).toBeUndefined();
      expect(await fixture.repo.get(alice, newId('volume'))).toBeUndefined();
    });

    it('stores, reads and filters by tags named like Object.prototype members (constructor, toString…)', async () => {
      const tags = { constructor: 'c', toString: 't', hasOwnProperty: 'h', valueOf: 'v', isPrototypeOf: 'i' };
      const v = volume(alice, { tags });
      await fixture.repo.create(v);
      expect(await fixture.repo.get(alice, v.volumeId)).toEqual(v);
      await fixture.repo.create(volume(alice, { tags: { env: 'prod' } }));
      const found = await fixture.repo.list(
        alice,
        { tags: { constructor: 'c', toString: 't' } },
        { limit: 10 },
      );
      expect(found.items.map((x) => x.volumeId)).toEqual([v.volumeId]);
    });

    it('refuses to create a volume id twice', async () => {
      const v = volume(alice);
      await fixture.repo.create(v);
      await expect(fixture.repo.create({ ...v, name: 'other' })).rejects.toThrow();
      expect((await fixture.repo.get(alice, v.volumeId))?.name).toBe('disk');
    });

    it("lists an account's volumes newest first, in pages that cover each once", async () => {
      const mine = [];
      for (let i = 0; i < 7; i++) mine.push(volume(alice, { name: `disk-${i}` }));
      for (const v of mine) await fixture.repo.create(v);
      await fixture.repo.create(volume(bob));
      const seen: string[] = [];
      let nextToken: string | undefined;
      let pages = 0;
      do {
        const page = await fixture.repo.list(alice, {}, { limit: 3, nextToken });
        expect(page.items.length).toBeLessThanOrEqual(3);
        seen.push(...page.items.map((v) => v.name));
        nextToken = page.nextToken;
        pages++;
      } while (nextToken && pages < 10);
      expect(seen).toEqual(mine.map((v) => v.name).reverse());
    });

    it('filters by name prefix and by tags, and still fills pages', async () => {
      for (let i = 0; i < 6; i++) {
        await fixture.repo.create(
          volume(alice, {
            name: i % 2 ? `web-${i}` : `db-${i}`,
            tags: { tier: i % 3 === 0 ? 'gold' : 'bronze' },
          }),
        );
      }
      const web = await fixture.repo.list(alice, { name: 'web-' }, { limit: 2 });
      expect(web.items.map((v) => v.name)).toEqual(['web-5', 'web-3']);
      const rest = await fixture.repo.list(alice, { name: 'web-' }, { limit: 2, nextToken: web.nextToken });
      expect(rest.items.map((v) => v.name)).toEqual(['web-1']);
      const gold = await fixture.repo.list(alice, { tags: { tier: 'gold' } }, { limit: 10 });
      expect(gold.items.map((v) => v.name)).toEqual(['web-3', 'db-0']);
      const none = await fixture.repo.list(alice, { tags: { tier: 'gold' }, name: 'db-' }, { limit: 10 });
      expect(none.items.map((v) => v.name)).toEqual(['db-0']);
    });

    it('rejects a page token it did not issue', async () => {
      await expect(
        fixture.repo.list(alice, {}, { limit: 1, nextToken: 'not-a-token' }),
      ).rejects.toMatchObject({ code: 'request.invalid' });
    });

    it('deletes a volume without snapshots, and refuses while snapshots exist, naming them', async () => {
      const free = volume(alice);
      const held = volume(alice);
      await fixture.repo.create(free);
      await fixture.repo.create(held);
      const snapshotId = newId('snapshot');
      await fixture.recordSnapshot(held.volumeId, snapshotId);
      expect(await fixture.repo.deleteUnlessSnapshots(alice, free.volumeId)).toEqual({
        holding: [],
        recycled: [],
      });
      expect(await fixture.repo.get(alice, free.volumeId)).toBeUndefined();
      expect(await fixture.repo.deleteUnlessSnapshots(alice, held.volumeId)).toEqual({
        holding: [snapshotId],
        recycled: [],
      });
      expect(await fixture.repo.get(alice, held.volumeId)).toBeDefined();
    });

    it("answers volume.notFound when deleting a missing volume or another account's", async () => {
      const v = volume(alice);
      await fixture.repo.create(v);
      await expect(fixture.repo.deleteUnlessSnapshots(bob, v.volumeId)).rejects.toMatchObject({
        code: 'volume.notFound',
      });
      await expect(fixture.repo.deleteUnlessSnapshots(alice, newId('volume'))).rejects.toMatchObject({
        code: 'volume.notFound',
      });
      expect(await fixture.repo.get(alice, v.volumeId)).toBeDefined();
    });
  });
}
