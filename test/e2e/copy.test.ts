import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliFor, storedSegmentBytes as segmentBytesOnDisk } from '../support/e2e-cli.ts';
import { type StartedCloud, startCloudProcess } from '../support/processes.ts';

const BLOCK = 512 * 1024;
const SIZE = 64 * 1024 * 1024;
const [R1, R2] = ['eu-west-1', 'us-east-1'];
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-copy-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-copy-files-'));
const configPath = join(dataDir, 'config.json');
let cloud: StartedCloud;
const { run, json } = cliFor(configPath);
const storedSegmentBytes = (region: string, accountId: string) =>
  segmentBytesOnDisk(dataDir, region, accountId);

async function restoreEquals(account: string, region: string, snapshotId: string, expected: Buffer) {
  const to = join(work, `${snapshotId}-${account}-${Date.now()}.img`);
  await json(account, region, 'snapshot', 'restore', snapshotId, '--to', to);
  return readFileSync(to).equals(expected);
}

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
});
afterAll(async () => {
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

describe('copying snapshots across regions and accounts, through the CLI', () => {
  const image = randomBytes(SIZE);
  for (let i = 0; i < SIZE / BLOCK; i += 4) image.fill(0, i * BLOCK, (i + 1) * BLOCK);
  const changed = Buffer.from(image);
  randomBytes(BLOCK).copy(changed, 61 * BLOCK); // 1 block of 128: 0.8% of the volume
  writeFileSync(join(work, 'disk.img'), image);
  writeFileSync(join(work, 'disk-2.img'), changed);
  let demo: string;
  let volumeId: string;
  let firstCopy: string;

  it(`copies a snapshot from ${R1} to ${R2}; the copy restores byte for byte, also after the source is deleted`, async () => {
    demo = (await json('demo', R1, 'account', 'show')).account.accountId;
    volumeId = (await json('demo', R1, 'volume', 'create', '--name', 'disk', '--size', '64MiB')).volumeId;
    const source = await json(
      'demo',
      R1,
      'snapshot',
      'create',
      '--volume',
      volumeId,
      '--file',
      join(work, 'disk.img'),
    );
    const copy = await json('demo', R2, 'snapshot', 'copy', source.snapshotId, '--source-region', R1);
    expect(copy).toMatchObject({
      state: 'completed',
      region: R2,
      accountId: demo,
      copiedFrom: { region: R1, snapshotId: source.snapshotId },
    });
    expect(copy.snapshotId).not.toBe(source.snapshotId);
    expect(copy.stats).toMatchObject({ newBlocks: 96, reusedBlocks: 0, zeroBlocks: 32 });
    firstCopy = copy.snapshotId;
    expect(await restoreEquals('demo', R2, copy.snapshotId, image)).toBe(true);
    await json('demo', R1, 'snapshot', 'delete', source.snapshotId);
    expect(await restoreEquals('demo', R2, copy.snapshotId, image)).toBe(true);
  });

  it('moves only the changed 1% the second time: the CLI and the destination store agree', async () => {
    const second = await json(
      'demo',
      R1,
      'snapshot',
      'create',
      '--volume',
      volumeId,
      '--file',
      join(work, 'disk-2.img'),
    );
    const storedBefore = storedSegmentBytes(R2, demo);
    const copy = await json('demo', R2, 'snapshot', 'copy', second.snapshotId, '--source-region', R1);
    const grown = storedSegmentBytes(R2, demo) - storedBefore;
    expect(copy.state).toBe('completed');
    expect(copy.parentSnapshotId).toBe(firstCopy);
    expect(copy.stats.newBlocks).toBe(1);
    expect(copy.stats.newBytes).toBeLessThanOrEqual(0.02 * SIZE);
    expect(grown).toBeGreaterThan(0);
    expect(grown).toBeLessThanOrEqual(0.02 * SIZE);
    expect(await restoreEquals('demo', R2, copy.snapshotId, changed)).toBe(true);
  });

  it('says a copy retried with the same client token already exists, as create does; --json: the record, report.written', async () => {
    const source = (await json('demo', R1, 'snapshot', 'list', '--volume', volumeId))[0];
    const args = ['snapshot', 'copy', source.snapshotId, '--source-region', R1, '--client-token', 'retry-1'];
    const first = await json('demo', R2, ...args);
    expect(first).toMatchObject({ state: 'completed', report: { written: true } });
    expect(Object.keys(first).sort()).toEqual(
      [...Object.keys(await json('demo', R2, 'snapshot', 'show', first.snapshotId)), 'report'].sort(),
    );
    const again = await run('demo', R2, ...args);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(
      `${first.snapshotId} completed (copy of ${source.snapshotId} from ${R1} into ${R2}; already, for this client token)\n`,
    );
    expect((await json('demo', R2, ...args)).report.written).toBe(false);
  });

  it("lets B copy a snapshot A shared with it into B's own account; B's copy outlives unsharing and deletion", async () => {
    const shared = (await json('demo', R1, 'snapshot', 'list', '--volume', volumeId))[0];
    await json('demo', R1, 'snapshot', 'share', shared.snapshotId, 'demo-b');
    const copy = await json('demo-b', R2, 'snapshot', 'copy', shared.snapshotId, '--source-region', R1);
    const b = (await json('demo-b', R2, 'account', 'show')).account.accountId;
    expect(copy).toMatchObject({ state: 'completed', accountId: b });
    await json('demo', R1, 'snapshot', 'unshare', shared.snapshotId, 'demo-b');
    await json('demo', R1, 'snapshot', 'delete', shared.snapshotId);
    expect(await restoreEquals('demo-b', R2, copy.snapshotId, changed)).toBe(true);
  });

  it('refuses an unknown region, and a copy by an account the source is not shared with, clearly', async () => {
    const result = await run('demo-b', R2, 'snapshot', 'copy', firstCopy, '--source-region', 'mars-north-1');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /region\.unknown: Unknown region 'mars-north-1'\. Known regions: eu-west-1, us-east-1/,
    );
    const hidden = await run('demo-b', R1, 'snapshot', 'copy', firstCopy, '--source-region', R2);
    expect(hidden.code).toBe(3);
    expect(hidden.stderr).toContain('snapshot.notFound');
  });
});
