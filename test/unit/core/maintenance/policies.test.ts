import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import { MemoryPolicyRepository } from '../../../../lib/adapters/memory/policies.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import {
  type CreatePolicyInput,
  DEFAULT_AGENT_TIMEOUT_MS,
  isDue,
  nextRunAfter,
  POLICY_TAG,
  PolicyService,
} from '../../../../lib/core/maintenance/policies.ts';
import { testCaller } from '../../../support/callers.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const t = (iso: string) => Date.parse(iso);

describe('nextRunAfter', () => {
  it('runs `every` at whole multiples of the period since the epoch, strictly after the time given', () => {
    const sixHours = { everyMs: 6 * HOUR };
    expect(new Date(nextRunAfter(sixHours, t('2026-03-03T04:05:06Z'))).toISOString()).toBe(
      '2026-03-03T06:00:00.000Z',
    );
    expect(new Date(nextRunAfter(sixHours, t('2026-03-03T06:00:00Z'))).toISOString()).toBe(
      '2026-03-03T12:00:00.000Z',
    );
    expect(nextRunAfter({ everyMs: 60_000 }, 59_999)).toBe(60_000);
  });

  it('runs a cron at its next matching minute in UTC, strictly after the time given', () => {
    const daily = { cron: '0 3 * * *' };
    expect(new Date(nextRunAfter(daily, t('2026-03-03T02:59:59.999Z'))).toISOString()).toBe(
      '2026-03-03T03:00:00.000Z',
    );
    expect(new Date(nextRunAfter(daily, t('2026-03-03T03:00:00Z'))).toISOString()).toBe(
      '2026-03-04T03:00:00.000Z',
    );
    // Weekdays only: from Friday evening to Monday.
    expect(new Date(nextRunAfter({ cron: '30 22 * * 1-5' }, t('2026-03-06T23:00:00Z'))).toISOString()).toBe(
      '2026-03-09T22:30:00.000Z',
    );
    expect(new Date(nextRunAfter({ cron: '*/15 * * * *' }, t('2026-03-03T10:14:00Z'))).toISOString()).toBe(
      '2026-03-03T10:15:00.000Z',
    );
  });
});

describe('policies', () => {
  const start = t('2026-03-03T04:05:06Z');
  let clock: ManualClock;
  let repo: MemoryPolicyRepository;
  let service: PolicyService;
  let alice: Caller;
  let bob: Caller;
  const input = (overrides: Partial<CreatePolicyInput> = {}): CreatePolicyInput => ({
    name: 'nightly',
    targetTags: { backup: 'nightly' },
    schedule: { everyMs: 6 * HOUR },
    retention: { keep: 7 },
    ...overrides,
  });

  beforeEach(() => {
    clock = new ManualClock(start);
    repo = new MemoryPolicyRepository();
    service = new PolicyService({
      policies: repo,
      clock,
      region: 'eu-west-1',
      knownRegions: ['eu-west-1', 'us-east-1', 'ap-south-1'],
      maxPolicies: 3,
    });
    alice = testCaller();
    bob = testCaller();
  });

  it('are created enabled, with defaults, the owner, the region and the first run', async () => {
    const policy = await service.create(alice, input());
    expect(policy).toEqual({
      policyId: expect.stringMatching(/^pol-[0-9a-z]{16}$/),
      accountId: alice.accountId,
      name: 'nightly',
      description: '',
      targetTags: { backup: 'nightly' },
      schedule: { everyMs: 6 * HOUR },
      retention: { keep: 7 },
      copyRules: [],
      agentTimeoutMs: DEFAULT_AGENT_TIMEOUT_MS,
      enabled: true,
      region: 'eu-west-1',
      createdAt: '2026-03-03T04:05:06.000Z',
      nextRunAt: '2026-03-03T06:00:00.000Z',
    });
    expect(await service.get(alice, policy.policyId)).toEqual(policy);
    expect((await service.list(alice, { limit: 10 })).items).toEqual([policy]);
    expect(POLICY_TAG).toBe('volsnap:policy');
  });

  it('take a cron, a keep-for retention, copy rules, an agent timeout, and can start disabled', async () => {
    const policy = await service.create(
      alice,
      input({
        description: 'prod, copied to us-east-1',
        schedule: { cron: ' 0  3 * * * ' },
        retention: { keepForMs: 30 * DAY },
        copyRules: [
          { region: 'us-east-1', retention: { keep: 3 } },
          { region: 'ap-south-1', retention: { keepForMs: 7 * DAY } },
        ],
        agentTimeoutMs: 1000,
        enabled: false,
      }),
    );
    expect(policy).toMatchObject({
      schedule: { cron: '0 3 * * *' },
      retention: { keepForMs: 30 * DAY },
      copyRules: [
        { region: 'us-east-1', retention: { keep: 3 } },
        { region: 'ap-south-1', retention: { keepForMs: 7 * DAY } },
      ],
      agentTimeoutMs: 1000,
      enabled: false,
      nextRunAt: '2026-03-04T03:00:00.000Z',
    });
    expect(isDue(policy, t('2026-03-05T00:00:00Z'))).toBe(false);
  });

  it('refuse bad input with request.invalid saying what to do', async () => {
    const refusals: [Partial<CreatePolicyInput>, RegExp][] = [
      [{ name: '' }, /policy name/],
      [{ name: 'a\nb' }, /policy name/],
      [{ description: 'x'.repeat(1025) }, /description/],
      [{ targetTags: {} }, /at least one tag/],
      [{ targetTags: { 'volsnap:policy': 'x' } }, /reserved/],
      [{ schedule: {} }, /exactly one/],
      [{ schedule: { everyMs: HOUR, cron: '0 3 * * *' } }, /exactly one/],
      [{ schedule: { everyMs: 59_999 } }, /at most once a minute/],
      [{ schedule: { everyMs: 60_000.5 } }, /whole number/],
      [{ schedule: { cron: '0 3 * *' } }, /4 field\(s\), not 5/],
      [{ schedule: { cron: '0 0 3 * * *' } }, /not 5/],
      [{ schedule: { cron: '61 * * * *' } }, /Cron '61 \* \* \* \*' is not valid.*5 fields/],
      [{ schedule: { cron: '0 0 30 2 *' } }, /not valid/],
      [{ schedule: { cron: '0 0 L * *' } }, /not a cron field/],
      [{ schedule: { cron: '@daily' } }, /not 5/],
      [{ retention: {} }, /exactly one/],
      [{ retention: { keep: 0 } }, /keep is a whole number of snapshots from 1 to 1000/],
      [{ retention: { keep: 1001 } }, /1 to 1000/],
      [{ retention: { keepForMs: 59_999 } }, /keepForMs/],
      [{ copyRules: [{ region: 'eu-west-1', retention: { keep: 1 } }] }, /own region/],
      [
        {
          copyRules: [
            { region: 'us-east-1', retention: { keep: 1 } },
            { region: 'us-east-1', retention: { keep: 2 } },
          ],
        },
        /Two copy rules/,
      ],
      [
        {
          copyRules: ['us-east-1', 'ap-south-1', 'x', 'y'].map((region) => ({
            region,
            retention: { keep: 1 },
          })),
        },
        /at most 3 copy rules/,
      ],
      [{ copyRules: [{ region: 'us-east-1', retention: { keep: 0 } }] }, /copyRules\[0\]\.retention\.keep/],
      [{ agentTimeoutMs: 999 }, /agentTimeoutMs/],
      [{ agentTimeoutMs: 7 * DAY + 1 }, /7 days/],
    ];
    for (const [overrides, message] of refusals) {
      await expect(service.create(alice, input(overrides)), JSON.stringify(overrides)).rejects.toMatchObject({
        code: 'request.invalid',
        message: expect.stringMatching(message),
      });
    }
    expect((await service.list(alice, { limit: 10 })).items).toEqual([]);
  });

  it('refuse a copy rule to an unknown region with region.unknown naming the known ones', async () => {
    await expect(
      service.create(alice, input({ copyRules: [{ region: 'mars-1', retention: { keep: 1 } }] })),
    ).rejects.toMatchObject({
      code: 'region.unknown',
      message: "Unknown region 'mars-1'. Known regions: ap-south-1, eu-west-1, us-east-1.",
      details: { region: 'mars-1', known: ['ap-south-1', 'eu-west-1', 'us-east-1'] },
    });
  });

  it('need policy:manage to create, update and delete; any member may read', async () => {
    const owned = await service.create(alice, input());
    const reader = testCaller({ accountId: alice.accountId, role: 'member', userName: 'reader' });
    const manager = testCaller({
      accountId: alice.accountId,
      role: 'member',
      permissions: ['policy:manage'],
    });
    for (const attempt of [
      service.create(reader, input()),
      service.update(reader, owned.policyId, { name: 'x' }),
      service.delete(reader, owned.policyId),
    ]) {
      await expect(attempt).rejects.toMatchObject({
        code: 'auth.forbidden',
        details: { permission: 'policy:manage' },
      });
    }
    expect(await service.get(reader, owned.policyId)).toEqual(owned);
    expect((await service.list(reader, { limit: 10 })).items).toHaveLength(1);
    const made = await service.create(manager, input({ name: 'by manager' }));
    expect(await service.update(manager, made.policyId, { description: 'mine' })).toMatchObject({
      description: 'mine',
    });
    await service.delete(manager, made.policyId);
    expect((await service.list(alice, { limit: 10 })).items).toEqual([owned]);
  });

  it("answer another account's policy exactly as a missing one: policy.notFound", async () => {
    const owned = await service.create(alice, input());
    const missing = 'pol-0000000000000000';
    for (const id of [owned.policyId, missing, 'not-an-id']) {
      for (const attempt of [
        service.get(bob, id),
        service.update(bob, id, { name: 'mine now' }),
        service.delete(bob, id),
      ]) {
        await expect(attempt).rejects.toMatchObject({
          code: 'policy.notFound',
          message: `No policy ${id} in this account and region.`,
        });
      }
    }
    expect((await service.list(bob, { limit: 10 })).items).toEqual([]);
    expect(await service.get(alice, owned.policyId)).toEqual(owned);
  });

  it('update the fields given; a new schedule recomputes the next run from now', async () => {
    const policy = await service.create(alice, input());
    clock.advance(HOUR);
    const renamed = await service.update(alice, policy.policyId, {
      name: 'renamed',
      targetTags: { env: 'prod' },
      retention: { keepForMs: DAY },
      copyRules: [{ region: 'us-east-1', retention: { keep: 2 } }],
      agentTimeoutMs: 2 * HOUR,
    });
    expect(renamed).toEqual({
      ...policy,
      name: 'renamed',
      targetTags: { env: 'prod' },
      retention: { keepForMs: DAY },
      copyRules: [{ region: 'us-east-1', retention: { keep: 2 } }],
      agentTimeoutMs: 2 * HOUR,
    });
    const rescheduled = await service.update(alice, policy.policyId, { schedule: { cron: '15 * * * *' } });
    expect(rescheduled).toMatchObject({
      schedule: { cron: '15 * * * *' },
      nextRunAt: '2026-03-03T05:15:00.000Z',
    });
    expect(await service.update(alice, policy.policyId, {})).toEqual(rescheduled);
    await expect(service.update(alice, policy.policyId, { schedule: { everyMs: 1 } })).rejects.toMatchObject({
      code: 'request.invalid',
    });
    await expect(
      service.update(alice, policy.policyId, { copyRules: [{ region: 'nowhere', retention: { keep: 1 } }] }),
    ).rejects.toMatchObject({ code: 'region.unknown' });
    expect(await service.get(alice, policy.policyId)).toEqual(rescheduled);
  });

  it('recompute the next run from now when enabled again, not when already enabled or disabled', async () => {
    const policy = await service.create(alice, input());
    expect(isDue(policy, t('2026-03-03T06:00:00Z'))).toBe(true);
    const disabled = await service.update(alice, policy.policyId, { enabled: false });
    expect(disabled).toMatchObject({ enabled: false, nextRunAt: policy.nextRunAt });
    expect(isDue(disabled, t('2026-03-03T06:00:00Z'))).toBe(false);
    clock.advance(3 * DAY);
    const enabled = await service.update(alice, policy.policyId, { enabled: true });
    expect(enabled).toMatchObject({ enabled: true, nextRunAt: '2026-03-06T06:00:00.000Z' });
    clock.advance(DAY);
    expect(await service.update(alice, policy.policyId, { enabled: true })).toMatchObject({
      nextRunAt: '2026-03-06T06:00:00.000Z',
    });
  });

  it('are limited per account and region by the quota', async () => {
    for (let i = 0; i < 3; i++) await service.create(alice, input({ name: `p${i}` }));
    await expect(service.create(alice, input())).rejects.toMatchObject({
      code: 'quota.exceeded',
      details: { region: 'eu-west-1', quota: 'policies', limit: 3, used: 3 },
    });
    await service.create(bob, input());
    const { items } = await service.list(alice, { limit: 10 });
    await service.delete(alice, items[0]?.policyId ?? '');
    await service.create(alice, input());
  });
});
