import { beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../../lib/core/shared/ids.ts';
import type { Page } from '../../lib/core/shared/pagination.ts';
import type { Export, ExportRepository } from '../../lib/core/tasks/exports.ts';

let clock = Date.UTC(2026, 0, 1);
const tick = () => {
  clock += 1000;
  return new Date(clock).toISOString();
};

/** Every page of a listing, in order, checking that none is larger than asked (unless `sized` is false). */
async function everyPage<T>(
  list: (page: { limit: number; nextToken?: string }) => Promise<Page<T>>,
  limit: number,
  sized = true,
): Promise<T[][]> {
  const pages: T[][] = [];
  let nextToken: string | undefined;
  do {
    const page = await list({ limit, nextToken });
    if (sized) expect(page.items.length).toBeLessThanOrEqual(limit);
    pages.push(page.items);
    nextToken = page.nextToken;
  } while (nextToken);
  return pages;
}

/** The behaviour every ExportRepository must have; run against each implementation. */
export function exportRepositoryContract(name: string, makeRepository: () => Promise<ExportRepository>) {
  describe(`ExportRepository contract: ${name}`, () => {
    let exports: ExportRepository;
    let alice: string;
    let bob: string;

    const record = (overrides: Partial<Export> = {}): Export => ({
      exportId: newId('export'),
      accountId: alice,
      snapshotId: newId('snapshot'),
      format: 'vsnap',
      state: 'pending',
      progress: 0,
      region: 'eu-west-1',
      key: `exports/${newId('export')}.vsnap`,
      size: 100,
      parts: 3,
      partSize: 40,
      uploadId: 'upload-1',
      createdAt: tick(),
      ...overrides,
    });
    const limits = (maxStoredBytes: number, maxExportsInFlight: number) => ({
      maxStoredBytes,
      maxExportsInFlight,
    });

    beforeEach(async () => {
      exports = await makeRepository();
      alice = newId('account');
      bob = newId('account');
    });

    it('stores an export with every field and reads it back; its expiry stays the record’s own', async () => {
      const full = record({
        bucket: 'backups',
        deadline: '2026-01-02T00:00:00.000Z',
        expiresAt: '2026-02-01T00:00:00.000Z',
        stateReason: 'none yet',
        leaseUntil: '2026-01-01T00:03:00.000Z',
        leaseParts: 1,
        dispatches: 2,
      });
      await exports.create(full);
      expect(await exports.get(full.exportId)).toEqual(full);
      expect(await exports.get(newId('export'))).toBeUndefined();
    });

    it('refuses a second create of the same id and keeps the first record', async () => {
      const first = record();
      await exports.create(first);
      await expect(exports.create({ ...first, key: 'other' })).rejects.toThrow();
      expect(await exports.get(first.exportId)).toEqual(first);
    });

    it("lists an account's exports newest first, in pages, and never another account's", async () => {
      const mine: Export[] = [];
      for (let i = 0; i < 5; i++) {
        const r = record();
        mine.push(r);
        await exports.create(r);
        await exports.create(record({ accountId: bob }));
      }
      const pages = await everyPage((page) => exports.list(alice, page), 2);
      expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
      expect(pages.flat().map((r) => r.exportId)).toEqual(mine.map((r) => r.exportId).reverse());
      expect((await exports.list(newId('account'), { limit: 10 })).items).toEqual([]);
    });

    it('lists every export of every account, each once, across pages', async () => {
      const made = [record(), record({ accountId: bob }), record(), record({ accountId: bob }), record()];
      for (const r of made) await exports.create(r);
      // The region-wide listing is for maintenance: a scan, whose pages may be larger than asked.
      const seen = (await everyPage((page) => exports.listAll(page), 2, false)).flat().map((r) => r.exportId);
      expect(seen.sort()).toEqual(made.map((r) => r.exportId).sort());
    });

    it('lists, for expiry, only the exports whose expiry passed, in expiry order, across pages', async () => {
      const expiry = (time: string) => `2026-01-01T${time}:00.000Z`;
      const later = record({ expiresAt: expiry('02:00') });
      const first = record({ accountId: bob, expiresAt: expiry('01:00') });
      const notYet = record({ expiresAt: expiry('09:00') });
      const never = record({ state: 'error' });
      for (const r of [later, first, notYet, never]) await exports.create(r);
      const expired = async (before: string) =>
        (await everyPage((page) => exports.listExpired(before, page), 1)).flat().map((r) => r.exportId);
      expect(await expired(expiry('03:00'))).toEqual([first.exportId, later.exportId]);
      expect(await expired(expiry('01:00'))).toEqual([]);
      await exports.remove(first.exportId);
      expect(await expired(expiry('03:00'))).toEqual([later.exportId]);
    });

    it('records each part once with its last ETag, while the export is pending', async () => {
      const r = record();
      await exports.create(r);
      expect(await exports.completePart(r.exportId, 2, 'e2')).toEqual(new Map([[2, 'e2']]));
      expect(await exports.completePart(r.exportId, 0, 'e0')).toEqual(
        new Map([
          [0, 'e0'],
          [2, 'e2'],
        ]),
      );
      // A redelivered part counts once; the ETag of its last upload is the one kept.
      const again = await exports.completePart(r.exportId, 2, 'e2-again');
      expect(again?.size).toBe(2);
      expect(again?.get(2)).toBe('e2-again');
      expect((await exports.get(r.exportId))?.partsDone).toEqual([0, 2]);
      await exports.transition(r.exportId, ['pending'], 'error', { stateReason: 'gone' });
      expect(await exports.completePart(r.exportId, 1, 'e1')).toBeUndefined();
      expect((await exports.get(r.exportId))?.partsDone).toEqual([0, 2]);
    });

    it('gives back the ETags recorded while the export is pending, for a redelivered last part', async () => {
      const r = record();
      await exports.create(r);
      expect(await exports.partETags(r.exportId)).toEqual(new Map());
      await exports.completePart(r.exportId, 2, '"c"');
      await exports.completePart(r.exportId, 0, '"a"');
      expect(await exports.partETags(r.exportId)).toEqual(
        new Map([
          [0, '"a"'],
          [2, '"c"'],
        ]),
      );
      await exports.transition(r.exportId, ['pending'], 'error', { stateReason: 'gone' });
      expect(await exports.partETags(r.exportId)).toBeUndefined();
      expect(await exports.partETags(newId('export'))).toBeUndefined();
    });

    it('renews a lease only from the value expected (one of two reapers wins); a worker extends it whatever it is', async () => {
      const r = record({ leaseUntil: '2026-01-01T00:03:00.000Z', leaseParts: 0, dispatches: 0 });
      await exports.create(r);
      const lease = { leaseUntil: '2026-01-01T00:06:00.000Z', leaseParts: 0, dispatches: 1 };
      const won = await Promise.all([
        exports.renewLease(r.exportId, r.leaseUntil, lease),
        exports.renewLease(r.exportId, r.leaseUntil, lease),
      ]);
      expect(won.filter(Boolean)).toHaveLength(1);
      expect(await exports.get(r.exportId)).toMatchObject(lease);
      // A worker on it extends the lease: a reaper that read the old one sends nothing.
      await exports.extendLease(r.exportId, '2026-01-01T00:07:00.000Z');
      expect(await exports.renewLease(r.exportId, lease.leaseUntil, { ...lease, dispatches: 2 })).toBe(false);
      expect(await exports.get(r.exportId)).toMatchObject({
        leaseUntil: '2026-01-01T00:07:00.000Z',
        dispatches: 1,
      });
      await exports.transition(r.exportId, ['pending'], 'completed');
      await exports.extendLease(r.exportId, '2026-01-01T00:09:00.000Z');
      expect((await exports.get(r.exportId))?.leaseUntil).toBe('2026-01-01T00:07:00.000Z');
      expect(await exports.renewLease(r.exportId, '2026-01-01T00:07:00.000Z', lease)).toBe(false);
    });

    it('moves an export only from the states named, applying the changes with the move', async () => {
      const r = record();
      await exports.create(r);
      expect(await exports.transition(r.exportId, ['completed'], 'error')).toBeUndefined();
      const progressed = await exports.transition(r.exportId, ['pending'], 'pending', { progress: 40 });
      expect(progressed).toMatchObject({ state: 'pending', progress: 40 });
      const done = await exports.transition(r.exportId, ['pending'], 'completed', {
        progress: 100,
        completedAt: '2026-01-01T01:00:00.000Z',
      });
      expect(done).toEqual({
        ...r,
        state: 'completed',
        progress: 100,
        completedAt: '2026-01-01T01:00:00.000Z',
      });
      expect(await exports.get(r.exportId)).toEqual(done);
      expect(await exports.transition(r.exportId, ['pending'], 'error')).toBeUndefined();
      expect(await exports.transition(newId('export'), ['pending'], 'error')).toBeUndefined();
    });

    it('refuses an export past the stored bytes or the exports in flight, storing nothing', async () => {
      await exports.create(record({ size: 60 }), limits(100, 2));
      const tooLarge = record({ size: 50 });
      await expect(exports.create(tooLarge, limits(100, 2))).rejects.toMatchObject({
        code: 'quota.exceeded',
      });
      expect(await exports.get(tooLarge.exportId)).toBeUndefined();
      await exports.create(record({ size: 40 }), limits(100, 2));
      const third = record({ size: 0 });
      await expect(exports.create(third, limits(1000, 2))).rejects.toMatchObject({ code: 'quota.inFlight' });
      expect(await exports.get(third.exportId)).toBeUndefined();
      // Counted per account: another account has all its room.
      await exports.create(record({ accountId: bob, size: 100 }), limits(100, 1));
    });

    it('gives back the place in flight when an export completes, and its bytes when it is removed', async () => {
      const first = record({ size: 60 });
      await exports.create(first, limits(100, 1));
      await expect(exports.create(record({ size: 10 }), limits(100, 1))).rejects.toMatchObject({
        code: 'quota.inFlight',
      });
      await exports.transition(first.exportId, ['pending'], 'completed', { progress: 100 });
      // Its place in flight is free; its bytes are still kept.
      await expect(exports.create(record({ size: 50 }), limits(100, 1))).rejects.toMatchObject({
        code: 'quota.exceeded',
      });
      await exports.remove(first.exportId);
      await exports.remove(first.exportId);
      expect(await exports.get(first.exportId)).toBeUndefined();
      // Removed twice, given back once: exactly the whole room is free again, not more.
      await exports.create(record({ size: 100 }), limits(100, 2));
      await expect(exports.create(record({ size: 1 }), limits(100, 2))).rejects.toMatchObject({
        code: 'quota.exceeded',
      });
    });

    it('keeps what a pending export deleted by its owner counts until it is removed, then gives all back once', async () => {
      const deleted = record({ size: 60 });
      await exports.create(deleted, limits(100, 1));
      const marked = await exports.transition(deleted.exportId, ['pending'], 'pending', {
        deletedAt: '2026-01-01T01:00:00.000Z',
      });
      expect(marked).toMatchObject({ state: 'pending', deletedAt: '2026-01-01T01:00:00.000Z' });
      expect(await exports.get(deleted.exportId)).toMatchObject({ deletedAt: '2026-01-01T01:00:00.000Z' });
      // Its object may still be stored: its place in flight and its bytes still count.
      await expect(exports.create(record({ size: 10 }), limits(100, 2))).resolves.toBeUndefined();
      await expect(exports.create(record({ size: 40 }), limits(100, 3))).rejects.toMatchObject({
        code: 'quota.exceeded',
      });
      await exports.remove(deleted.exportId);
      await exports.create(record({ size: 90 }), limits(100, 3));
      await expect(exports.create(record({ size: 1 }), limits(100, 3))).rejects.toMatchObject({
        code: 'quota.exceeded',
      });
    });

    it('gives back everything when an export fails, and nothing more when the failed one is removed', async () => {
      const failed = record({ size: 80 });
      await exports.create(failed, limits(100, 1));
      await exports.transition(failed.exportId, ['pending'], 'error', { stateReason: 'source gone' });
      const next = record({ size: 100 });
      await exports.create(next, limits(100, 2));
      await exports.remove(failed.exportId);
      // Had the removal given the failed export's bytes back a second time, this would fit.
      await expect(exports.create(record({ size: 1 }), limits(100, 2))).rejects.toMatchObject({
        code: 'quota.exceeded',
      });
      // A pending export removed (the expiry of one never finished) gives back its place and bytes.
      await exports.remove(next.exportId);
      await exports.create(record({ size: 100 }), limits(100, 1));
    });
  });
}
