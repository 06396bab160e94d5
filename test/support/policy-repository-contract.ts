import { beforeEach, describe, expect, it } from 'vitest';
import type { Policy, PolicyRepository, PolicyRunReport } from '../../lib/core/maintenance/policies.ts';
import { newId } from '../../lib/core/shared/ids.ts';

let clock = Date.UTC(2026, 0, 1);
const tick = () => {
  clock += 1000;
  return new Date(clock).toISOString();
};
const at = (minutes: number) => new Date(Date.UTC(2026, 5, 1) + minutes * 60_000).toISOString();

/** The behaviour every PolicyRepository must have; run against each implementation. */
export function policyRepositoryContract(name: string, makeRepository: () => Promise<PolicyRepository>) {
  describe(`PolicyRepository contract: ${name}`, () => {
    let repo: PolicyRepository;
    let alice: string;
    let bob: string;

    const policy = (overrides: Partial<Policy> = {}): Policy => ({
      policyId: newId('policy'),
      accountId: alice,
      name: 'nightly',
      description: '',
      targetTags: { backup: 'nightly' },
      schedule: { everyMs: 3_600_000 },
      retention: { keep: 7 },
      copyRules: [],
      agentTimeoutMs: 3_600_000,
      enabled: true,
      region: 'eu-west-1',
      createdAt: tick(),
      nextRunAt: at(60),
      ...overrides,
    });
    const ids = (policies: Policy[]) => policies.map((p) => p.policyId);

    beforeEach(async () => {
      repo = await makeRepository();
      alice = newId('account');
      bob = newId('account');
    });

    it('stores a policy with every field, reads it back by id, and deletes it once', async () => {
      const p = policy({
        description: 'all prod disks',
        targetTags: { env: 'prod', tier: 'gold' },
        schedule: { cron: '0 3 * * *' },
        retention: { keepForMs: 30 * 86_400_000 },
        copyRules: [{ region: 'us-east-1', retention: { keep: 3 } }],
      });
      await repo.create(p);
      expect(await repo.get(p.policyId)).toEqual(p);
      await expect(repo.create(p)).rejects.toThrow();
      expect(await repo.delete(p.policyId)).toBe(true);
      expect(await repo.get(p.policyId)).toBeUndefined();
      expect(await repo.delete(p.policyId)).toBe(false);
    });

    it("lists an account's policies newest first, a page at a time; another account's listing does not show them", async () => {
      const made = [policy(), policy(), policy()];
      for (const p of made) await repo.create(p);
      await repo.create(policy({ accountId: bob }));
      const first = await repo.list(alice, { limit: 2 });
      expect(ids(first.items)).toEqual([made[2]?.policyId, made[1]?.policyId]);
      expect(first.nextToken).toBeDefined();
      const second = await repo.list(alice, { limit: 2, nextToken: first.nextToken });
      expect(ids(second.items)).toEqual([made[0]?.policyId]);
      expect(second.nextToken).toBeUndefined();
      const bobs = await repo.list(bob, { limit: 10 });
      expect(bobs.items).toHaveLength(1);
      expect(ids(bobs.items)).not.toContain(made[0]?.policyId);
      expect((await repo.list(newId('account'), { limit: 10 })).items).toEqual([]);
    });

    it('updates the fields given, leaves the others, and answers undefined for a missing policy', async () => {
      const p = policy({ description: 'before' });
      await repo.create(p);
      const updated = await repo.update(p.policyId, {
        name: 'hourly',
        schedule: { cron: '*/30 * * * *' },
        retention: { keep: 2 },
        copyRules: [{ region: 'us-east-1', retention: { keepForMs: 86_400_000 } }],
        targetTags: { env: 'dev' },
        agentTimeoutMs: 60_000,
        description: undefined,
      });
      const expected = {
        ...p,
        name: 'hourly',
        schedule: { cron: '*/30 * * * *' },
        retention: { keep: 2 },
        copyRules: [{ region: 'us-east-1', retention: { keepForMs: 86_400_000 } }],
        targetTags: { env: 'dev' },
        agentTimeoutMs: 60_000,
      };
      expect(updated).toEqual(expected);
      expect(await repo.get(p.policyId)).toEqual(expected);
      expect(await repo.update(newId('policy'), { name: 'x' })).toBeUndefined();
      expect(await repo.get(p.policyId)).toEqual(expected);
    });

    it('lists as due the enabled policies whose next run is not after now, oldest first; not disabled or future ones', async () => {
      const past = policy({ nextRunAt: at(-10) });
      const now = policy({ nextRunAt: at(0), accountId: bob });
      const future = policy({ nextRunAt: at(1) });
      const disabled = policy({ nextRunAt: at(-20), enabled: false });
      for (const p of [future, now, disabled, past]) await repo.create(p);
      expect(ids(await repo.listDue(at(0)))).toEqual([past.policyId, now.policyId]);
      expect(ids(await repo.listEnabled())).toEqual([past.policyId, now.policyId, future.policyId]);
      // Disabling takes a policy out; enabling with a new next run puts it back at that time.
      await repo.update(past.policyId, { enabled: false });
      expect(ids(await repo.listDue(at(0)))).toEqual([now.policyId]);
      await repo.update(disabled.policyId, { enabled: true, nextRunAt: at(-5) });
      expect(ids(await repo.listDue(at(0)))).toEqual([disabled.policyId, now.policyId]);
      await repo.update(now.policyId, { nextRunAt: at(30) });
      expect(ids(await repo.listDue(at(0)))).toEqual([disabled.policyId]);
      await repo.delete(disabled.policyId);
      expect(await repo.listDue(at(0))).toEqual([]);
      expect(ids(await repo.listEnabled())).toEqual([future.policyId, now.policyId]);
    });

    it('lets exactly one of two racing runners claim a run, and moves the next run', async () => {
      const p = policy({ nextRunAt: at(0) });
      await repo.create(p);
      const results = await Promise.all([
        repo.claimRun(p.policyId, at(0), at(60), at(0)),
        repo.claimRun(p.policyId, at(0), at(60), at(0)),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await repo.get(p.policyId)).toMatchObject({ nextRunAt: at(60), lastRunAt: at(0) });
      // A claim with a stale expectation, on a disabled policy, or on a missing one fails.
      expect(await repo.claimRun(p.policyId, at(0), at(120), at(60))).toBe(false);
      expect(await repo.listDue(at(59))).toEqual([]);
      expect(ids(await repo.listDue(at(60)))).toEqual([p.policyId]);
      await repo.update(p.policyId, { enabled: false });
      expect(await repo.claimRun(p.policyId, at(60), at(120), at(60))).toBe(false);
      expect(await repo.claimRun(newId('policy'), at(60), at(120), at(60))).toBe(false);
      expect(await repo.get(p.policyId)).toMatchObject({ nextRunAt: at(60), lastRunAt: at(0) });
    });

    it('tells two forced runs of a policy not yet due apart by when it last ran', async () => {
      const p = policy({ nextRunAt: at(600) });
      await repo.create(p);
      // Both runners computed the same next run (the one already set): only lastRunAt differs.
      const results = await Promise.all([
        repo.claimRun(p.policyId, at(600), at(600), at(1), null),
        repo.claimRun(p.policyId, at(600), at(600), at(2), null),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const ran = await repo.get(p.policyId);
      expect(await repo.claimRun(p.policyId, at(600), at(600), at(3), ran?.lastRunAt)).toBe(true);
      expect(await repo.claimRun(p.policyId, at(600), at(600), at(4), ran?.lastRunAt)).toBe(false);
    });

    it('records the report of the last run, replacing the one before; a deleted policy stays deleted', async () => {
      const p = policy();
      await repo.create(p);
      const report = (n: number): PolicyRunReport => ({
        at: at(n),
        created: [newId('snapshot')],
        deleted: [],
        copied: [],
        skipped: [],
        errors: n > 0 ? ['vol-x: agent did not come'] : [],
      });
      const last = report(1);
      await repo.recordRun(p.policyId, report(0));
      await repo.recordRun(p.policyId, last);
      expect((await repo.get(p.policyId))?.lastRun).toEqual(last);
      await repo.delete(p.policyId);
      await repo.recordRun(p.policyId, report(2));
      expect(await repo.get(p.policyId)).toBeUndefined();
    });
  });
}
