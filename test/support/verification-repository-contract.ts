import { beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../../lib/core/shared/ids.ts';
import type { Verification, VerificationRepository } from '../../lib/core/tasks/verifications.ts';

/** The behaviour every VerificationRepository must have; run against each implementation. */
export function verificationRepositoryContract(
  name: string,
  makeRepository: () => Promise<VerificationRepository>,
) {
  describe(`VerificationRepository contract: ${name}`, () => {
    let verifications: VerificationRepository;

    const record = (overrides: Partial<Verification> = {}): Verification => ({
      verificationId: newId('verification'),
      snapshotId: newId('snapshot'),
      accountId: newId('account'),
      region: 'eu-west-1',
      state: 'pending',
      progress: 0,
      origin: 'request',
      parts: 3,
      segmentsPerPart: 64,
      totalBytes: 1234,
      createdAt: '2026-01-01T00:00:00.000Z',
      deadline: '2026-01-01T06:00:00.000Z',
      leaseUntil: '2026-01-01T00:03:00.000Z',
      leaseParts: 0,
      dispatches: 0,
      ...overrides,
    });

    beforeEach(async () => {
      verifications = await makeRepository();
    });

    it('stores and reads back a record; refuses a second with the same id', async () => {
      const r = record();
      await verifications.create(r);
      expect(await verifications.get(r.verificationId)).toEqual(r);
      await expect(verifications.create(r)).rejects.toThrow();
      expect(await verifications.get(newId('verification'))).toBeUndefined();
    });

    it('counts each part once, only while pending', async () => {
      const r = record();
      await verifications.create(r);
      expect(await verifications.completePart(r.verificationId, 2)).toBe(1);
      expect(await verifications.completePart(r.verificationId, 2)).toBe(1);
      expect(await verifications.completePart(r.verificationId, 0)).toBe(2);
      expect((await verifications.get(r.verificationId))?.partsDone).toEqual([0, 2]);
      await verifications.transition(r.verificationId, ['pending'], 'error', { stateReason: 'gone' });
      expect(await verifications.completePart(r.verificationId, 1)).toBeUndefined();
    });

    it('renews a lease only from the one expected; extends only while pending', async () => {
      const r = record();
      await verifications.create(r);
      const lease = { leaseUntil: '2026-01-01T00:10:00.000Z', leaseParts: 1, dispatches: 1 };
      expect(await verifications.renewLease(r.verificationId, 'other', lease)).toBe(false);
      expect(await verifications.renewLease(r.verificationId, r.leaseUntil, lease)).toBe(true);
      expect(await verifications.renewLease(r.verificationId, r.leaseUntil, lease)).toBe(false);
      await verifications.extendLease(r.verificationId, '2026-01-01T00:20:00.000Z');
      expect((await verifications.get(r.verificationId))?.leaseUntil).toBe('2026-01-01T00:20:00.000Z');
    });

    it('moves only from the states named, removing fields set to undefined, keeping the result', async () => {
      const r = record();
      await verifications.create(r);
      expect(await verifications.transition(r.verificationId, ['error'], 'completed')).toBeUndefined();
      const result = {
        segments: 2,
        blocks: 9,
        bytes: 100,
        badBlockCount: 1,
        badBlocks: [
          {
            blockIndex: 4,
            volumeOffset: 4 * 524288,
            segmentId: 'seg-x',
            segmentKey: 'segments/a/seg-x',
            offset: 10,
            problem: 'digest' as const,
            expected: 'aa',
            found: 'bb',
            reason: 'does not match',
          },
        ],
      };
      const done = await verifications.transition(r.verificationId, ['pending'], 'completed', {
        progress: 100,
        result,
        leaseUntil: undefined,
      });
      expect(done?.state).toBe('completed');
      expect(done?.leaseUntil).toBeUndefined();
      const read = await verifications.get(r.verificationId);
      expect(read?.result).toEqual(result);
      expect(read?.leaseUntil).toBeUndefined();
    });

    it('lists every record across pages', async () => {
      const made = [record(), record(), record()];
      for (const r of made) await verifications.create(r);
      const seen: string[] = [];
      let nextToken: string | undefined;
      do {
        const page = await verifications.listAll({ limit: 1, ...(nextToken ? { nextToken } : {}) });
        seen.push(...page.items.map((v) => v.verificationId));
        nextToken = page.nextToken;
      } while (nextToken);
      expect(seen.filter((id) => made.some((r) => r.verificationId === id)).sort()).toEqual(
        made.map((r) => r.verificationId).sort(),
      );
    });
  });
}
