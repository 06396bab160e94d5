import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../lib/cli/errors.ts';
import type { Policy } from '../../lib/client/api-client.ts';
import { ERROR_STATUS, type ErrorCode } from '../../lib/core/shared/errors.ts';
import { cli, type StartedCloud, startCloudProcess } from '../support/processes.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-policies-'));
const configPath = join(dataDir, 'config.json');
let cloud: StartedCloud;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const run = (...args: string[]) => cli(['--config', configPath, ...args]);
async function json(...args: string[]) {
  const result = await run('--json', ...args);
  if (result.code !== 0) throw new Error(`volsnap ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}
/**
 * Runs a command that must fail: exit 1 (the service refused it) or 2 (the CLI refused its
 * arguments before asking), and the error as JSON on stderr.
 */
/** A refusal of the API: its error as JSON, and the exit code of its kind (lib/cli/errors.ts). */
async function refused(...args: string[]): Promise<{ error: string; message: string; details?: unknown }> {
  return refusedWith(undefined, ...args);
}
async function refusedWith(
  code: number | undefined,
  ...args: string[]
): Promise<{ error: string; message: string; details?: unknown }> {
  const result = await run('--json', ...args);
  expect(result.code, `volsnap ${args.join(' ')} should fail; it printed ${result.stdout}`).not.toBe(0);
  const refusal = JSON.parse(result.stderr) as { error: string; message: string; details?: unknown };
  const kind = exitCodeFor(refusal.error, ERROR_STATUS[refusal.error as ErrorCode] ?? 0);
  expect(result.code, `exit code of ${refusal.error}`).toBe(code ?? kind);
  return refusal;
}

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
});
afterAll(async () => {
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

describe('snapshot policies through the CLI', () => {
  let policy: Policy;

  it('creates a policy with --every and --keep, shown in JSON and in words', async () => {
    policy = await json(
      'policy',
      'create',
      '--name',
      'nightly',
      '--description',
      'prod disks',
      '--target-tag',
      'backup=nightly',
      '--target-tag',
      'env=prod',
      '--every',
      '6h',
      '--keep',
      '7',
    );
    expect(policy).toMatchObject({
      policyId: expect.stringMatching(/^pol-/),
      name: 'nightly',
      description: 'prod disks',
      targetTags: { backup: 'nightly', env: 'prod' },
      schedule: { everyMs: 6 * HOUR },
      retention: { keep: 7 },
      copyRules: [],
      agentTimeoutMs: HOUR,
      enabled: true,
      region: 'eu-west-1',
    });
    const next = Date.parse(policy.nextRunAt);
    expect(next % (6 * HOUR)).toBe(0);
    expect(next - Date.parse(policy.createdAt)).toBeLessThanOrEqual(6 * HOUR);

    const shown = await run('policy', 'show', policy.policyId);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/schedule\s+every 6h/);
    expect(shown.stdout).toMatch(/retention\s+keep 7/);
    expect(shown.stdout).toMatch(/targets\s+volumes tagged backup=nightly, env=prod/);
    expect(shown.stdout).toMatch(/last run\s+never/);
  });

  it('lists it, and shows it by id; another account sees neither', async () => {
    const listed: Policy[] = await json('policy', 'list');
    expect(listed.map((p) => p.policyId)).toEqual([policy.policyId]);
    const table = await run('policy', 'list');
    expect(table.stdout).toContain(policy.policyId);
    expect(table.stdout).toMatch(/ID\s+NAME\s+ENABLED\s+SCHEDULE/);
    expect(await json('policy', 'show', policy.policyId)).toEqual(policy);
    expect(await json('--account', 'demo-b', 'policy', 'list')).toEqual([]);
    expect(await refused('--account', 'demo-b', 'policy', 'show', policy.policyId)).toMatchObject({
      error: 'policy.notFound',
    });
  });

  it('disables and enables it', async () => {
    const disabled = await json('policy', 'disable', policy.policyId);
    expect(disabled).toMatchObject({ enabled: false });
    expect((await run('policy', 'show', policy.policyId)).stdout).toMatch(/next run\s+disabled/);
    const enabled = await json('policy', 'enable', policy.policyId);
    expect(enabled).toMatchObject({ enabled: true });
    expect(Date.parse(enabled.nextRunAt)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('updates the settings given and keeps the others', async () => {
    const updated = await json(
      'policy',
      'update',
      policy.policyId,
      '--name',
      'daily',
      '--cron',
      '0 3 * * *',
      '--keep-for',
      '30d',
      '--copy-to',
      'us-east-1',
      '--copy-keep',
      '3',
      '--agent-timeout',
      '2h',
    );
    expect(updated).toMatchObject({
      policyId: policy.policyId,
      name: 'daily',
      description: 'prod disks',
      targetTags: { backup: 'nightly', env: 'prod' },
      schedule: { cron: '0 3 * * *' },
      retention: { keepForMs: 30 * DAY },
      copyRules: [{ region: 'us-east-1', retention: { keep: 3 } }],
      agentTimeoutMs: 2 * HOUR,
      enabled: true,
    });
    expect(updated.nextRunAt).toMatch(/T03:00:00\.000Z$/);
    const shown = await run('policy', 'show', policy.policyId);
    expect(shown.stdout).toMatch(/schedule\s+cron 0 3 \* \* \* \(UTC\)/);
    expect(shown.stdout).toMatch(/copies\s+us-east-1 \(keep 3\)/);
    // Copy retention alone rewrites the existing rules; --no-copy removes them.
    expect(await json('policy', 'update', policy.policyId, '--copy-keep-for', '90d')).toMatchObject({
      copyRules: [{ region: 'us-east-1', retention: { keepForMs: 90 * DAY } }],
    });
    expect(await json('policy', 'update', policy.policyId, '--no-copy')).toMatchObject({ copyRules: [] });
  });

  it('refuses a bad cron, an unknown copy region and a missing schedule with coded errors', async () => {
    const create = (...args: string[]) =>
      refused('policy', 'create', '--name', 'bad', '--target-tag', 'a=b', '--keep', '1', ...args);
    const badCron = await create('--cron', '61 * * * *');
    expect(badCron.error).toBe('request.invalid');
    expect(badCron.message).toMatch(/Cron '61 \* \* \* \*' is not valid.*5 fields/);
    const unknown = await create('--every', '1h', '--copy-to', 'mars-1');
    expect(unknown).toMatchObject({
      error: 'region.unknown',
      message: expect.stringContaining('Known regions: eu-west-1, us-east-1'),
    });
    expect(await create('--every', '1h', '--copy-to', 'eu-west-1')).toMatchObject({
      error: 'request.invalid',
      message: expect.stringContaining("the policy's own region"),
    });
    expect(await create('--every', '30s')).toMatchObject({ error: 'request.invalid' });
    // No schedule at all: the CLI's own argument check, a usage error (exit 2).
    expect(
      await refusedWith(2, 'policy', 'create', '--name', 'bad', '--target-tag', 'a=b', '--keep', '1'),
    ).toMatchObject({
      error: 'request.invalid',
      message: expect.stringContaining('--every'),
    });
    expect(await json('policy', 'list')).toHaveLength(1);
  });

  it('deletes it: afterwards it is not found', async () => {
    const deleted = await run('policy', 'delete', policy.policyId);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain(`Deleted ${policy.policyId}`);
    expect(await refused('policy', 'show', policy.policyId)).toMatchObject({ error: 'policy.notFound' });
    expect(await refused('policy', 'delete', policy.policyId)).toMatchObject({ error: 'policy.notFound' });
    expect(await json('policy', 'list')).toEqual([]);
  });
});
