import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudState, pidOf, signal, type Target, waitForReplacement } from '../../scripts/chaos/control.ts';
import { cliFor } from '../support/e2e-cli.ts';
import { cli, describeProcess, isAlive, type StartedCloud, startCloudProcess } from '../support/processes.ts';

const BLOCK = 512 * 1024;
const SIZE = 64 * 1024 * 1024;
const [R1, R2] = ['eu-west-1', 'us-east-1'];
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-resilience-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-resilience-files-'));
const configPath = join(dataDir, 'config.json');
const stateFile = join(dataDir, 'cloud-state.json');
const { run, json } = cliFor(configPath);
let cloud: StartedCloud;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function restoreEquals(region: string, snapshotId: string, expected: Buffer): Promise<boolean> {
  const to = join(work, `${snapshotId}-${Date.now()}.img`);
  await json('demo', region, 'snapshot', 'restore', snapshotId, '--to', to);
  return readFileSync(to).equals(expected);
}

/**
 * Until an authenticated call answers in `region`: while an emulator restarts, the region's requests
 * fail for now (503 while DynamoDB Local is down; the CLI retries them for --retry-for, 120 s).
 */
async function untilServing(region: string): Promise<number> {
  const started = Date.now();
  while ((await run('demo', region, 'account', 'show')).code !== 0) {
    if (Date.now() - started > 120_000) throw new Error(`${region} did not serve within 120 s`);
    await sleep(1000);
  }
  return Date.now() - started;
}

/** SIGKILLs `target` in `region`; resolves once the supervisor's replacement is up, with how long that took. */
async function killAndAwaitReplacement(target: Target, region: string): Promise<number> {
  const pid = pidOf(stateFile, target, region) as number;
  expect(signal(pid, 'SIGKILL')).toBe(true);
  return waitForReplacement(stateFile, target, region, pid);
}

function image(seedBlocks: number): Buffer {
  const bytes = randomBytes(seedBlocks * BLOCK);
  for (let i = 0; i < seedBlocks; i += 3) bytes.fill(0, i * BLOCK, (i + 1) * BLOCK);
  return bytes;
}

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
  // A failed start answers the error (with the cloud's output): fail here, saying why.
  if (cloud instanceof Error) throw cloud;
}, 300_000);
afterAll(async () => {
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  // The run's temp dir goes at its end: what went wrong in the cloud is printed here.
  const problems = (cloud?.output?.() ?? '')
    .split('\n')
    .filter((l) => /"level":"error"|^\[supervisor\]/.test(l));
  console.log(`The cloud's errors and restarts (last 60):\n${problems.slice(-60).join('\n').slice(-20_000)}`);
  if (cloud?.process.exitCode === null) {
    cloud.process.kill('SIGINT');
    await cloud.exited;
  }
});

describe('the local cloud keeps a region alive as AWS would', () => {
  const disk = image(SIZE / BLOCK);
  writeFileSync(join(work, 'disk.img'), disk);
  let source: string;

  it('restarts a region process killed mid-copy; the waiting CLI reports the copy completed, and it restores byte for byte', async () => {
    const volume = await json('demo', R1, 'volume', 'create', '--name', 'disk', '--size', '64MiB');
    source = (
      await json(
        'demo',
        R1,
        'snapshot',
        'create',
        '--volume',
        volume.volumeId,
        '--file',
        join(work, 'disk.img'),
      )
    ).snapshotId;
    // The CLI waits for the copy as a user's would, while the destination region's process dies.
    const copying = run(
      'demo',
      R2,
      '--json',
      'snapshot',
      'copy',
      source,
      '--source-region',
      R1,
      '--name',
      'survivor',
    );
    let pending: { snapshotId: string; progress: number } | undefined;
    for (let i = 0; i < 200 && !pending; i++) {
      pending = (await json('demo', R2, 'snapshot', 'list', '--state', 'pending'))[0];
      if (!pending) await sleep(100);
    }
    expect(pending, 'the copy was seen pending').toBeDefined();
    const killedAt = Date.now();
    const restartMs = await killAndAwaitReplacement('region', R2);
    // Still pending after the restart: its part died with the process (the reaper sends it again).
    const after = await json('demo', R2, 'snapshot', 'show', pending?.snapshotId as string);
    expect(after.state).toBe('pending');
    const result = await copying;
    const recoveredS = (Date.now() - killedAt) / 1000;
    console.log(
      `Region process killed mid-copy (64 MiB, at ${pending?.progress}%): a new one served after ${(restartMs / 1000).toFixed(1)} s; the copy completed ${recoveredS.toFixed(0)} s after the kill (lease 3 min, reaper every minute).`,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ snapshotId: pending?.snapshotId, state: 'completed' });
    expect(cloud.output()).toMatch(
      /\[supervisor\] region us-east-1 killed by SIGKILL after [\d.]+ s \(pid \d+\): starting a new one, restart 1/,
    );
    expect(await restoreEquals(R2, pending?.snapshotId as string, disk)).toBe(true);
  }, 480_000);

  it('restarts killed emulators (s3rver, DynamoDB Local, its SigV4 guard) with their data: earlier snapshots restore byte for byte, new ones work', async () => {
    const before = cloudState(stateFile);
    const times: string[] = [];
    for (const [target, region] of [
      ['s3', R1],
      ['dynamodb', R1],
      ['dynamodb-guard', R2],
      ['s3', R2],
    ] as [Target, string][]) {
      const ms = await killAndAwaitReplacement(target, region);
      const serving = await untilServing(region);
      times.push(
        `${target} ${region} ${(ms / 1000).toFixed(1)} s (serving ${(serving / 1000).toFixed(1)} s later)`,
      );
    }
    console.log(`Emulators killed and started again (kill → new process ready): ${times.join(', ')}`);
    expect(cloud.output()).toMatch(
      /\[supervisor\] s3 eu-west-1 killed by SIGKILL after [\d.]+ s \(pid \d+\): starting a new one, restart 1/,
    );
    expect(cloud.output()).toMatch(/\[supervisor\] dynamodb eu-west-1 exited with code 1 after/);
    // The guard's JVM did not outlive it: it would hold the data dir the new one opens.
    const oldJvm = before.children.find((c) => c.name === `dynamodb ${R2}`)?.innerPids[0] as number;
    expect(isAlive(oldJvm), describeProcess(oldJvm)).toBe(false);
    // What was stored before the kills is all there: the snapshot (S3 and DynamoDB) and its copy.
    expect(await restoreEquals(R1, source, disk)).toBe(true);
    const copy = (await json('demo', R2, 'snapshot', 'list', '--name', 'survivor'))[0];
    expect(await restoreEquals(R2, copy.snapshotId, disk)).toBe(true);
    const changed = Buffer.from(disk);
    randomBytes(BLOCK).copy(changed, 7 * BLOCK);
    writeFileSync(join(work, 'changed.img'), changed);
    const volumeId = (await json('demo', R1, 'snapshot', 'show', source)).volumeId;
    const next = await json(
      'demo',
      R1,
      'snapshot',
      'create',
      '--volume',
      volumeId,
      '--file',
      join(work, 'changed.img'),
    );
    expect(next.state).toBe('completed');
    expect(await restoreEquals(R1, next.snapshotId, changed)).toBe(true);
  }, 300_000);

  it('DynamoDB Local killed during a create, then stalled during a listing: each command waits it out and completes', async () => {
    const volume = await json('demo', R1, 'volume', 'create', '--name', 'outage', '--size', '64MiB');
    const creating = run(
      'demo',
      R1,
      '--json',
      'snapshot',
      'create',
      '--volume',
      volume.volumeId,
      '--file',
      join(work, 'disk.img'),
      '--name',
      'through-the-outage',
    );
    let pending: { snapshotId: string } | undefined;
    for (let i = 0; i < 300 && !pending; i++) {
      pending = (await json('demo', R1, 'snapshot', 'list', '--state', 'pending'))[0];
      if (!pending) await sleep(100);
    }
    expect(pending, 'the create was seen pending').toBeDefined();
    const killedAt = Date.now();
    const restartMs = await killAndAwaitReplacement('dynamodb', R1);
    const created = await creating;
    const createdS = (Date.now() - killedAt) / 1000;
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ snapshotId: pending?.snapshotId, state: 'completed' });
    expect(created.stderr).not.toMatch(/^\s+at /m);
    expect(await restoreEquals(R1, pending?.snapshotId as string, disk)).toBe(true);

    // Stalled (SIGSTOP) for 20 s: requests hang, the authorizer times out (API Gateway's bare 500).
    const jvm = pidOf(stateFile, 'dynamodb', R1) as number;
    expect(signal(jvm, 'SIGSTOP')).toBe(true);
    const stalledAt = Date.now();
    const listing = run('demo', R1, 'snapshot', 'list', '--name', 'through-the-outage');
    await sleep(20_000);
    signal(jvm, 'SIGCONT');
    const listed = await listing;
    const listedS = (Date.now() - stalledAt) / 1000;
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(pending?.snapshotId as string);
    console.log(
      `DynamoDB Local killed mid-create: a new one was ready after ${(restartMs / 1000).toFixed(1)} s, the create completed ${createdS.toFixed(0)} s after the kill (stderr: ${JSON.stringify(created.stderr.trim().split('\n').slice(-2))}); stalled 20 s: the listing answered ${listedS.toFixed(0)} s after the stall began (stderr: ${JSON.stringify(listed.stderr.trim())}).`,
    );
  }, 420_000);

  it('backs off a crash loop, and on Ctrl-C stops everything it restarted, leaving no process behind', async () => {
    // Three kills in a row, each soon after the start: the third restart waits (1 s, then 2 s…).
    for (let i = 0; i < 3; i++) await killAndAwaitReplacement('s3', R1);
    await untilServing(R1);
    expect(cloud.output()).toMatch(
      /\[supervisor\] s3 eu-west-1 killed by SIGKILL .*starting a new one in \d+ s \(crash loop\), restart \d+/,
    );
    expect((await cli(['--config', configPath, '--region', R1, 'health'])).code).toBe(0);
    const state = cloudState(stateFile);
    const pids = state.children.flatMap((c) => [c.pid as number, ...c.innerPids]);
    expect(pids.every(isAlive)).toBe(true);
    // A stalled emulator too: Ctrl-C resumes it to stop it.
    signal(pidOf(stateFile, 's3', R2), 'SIGSTOP');
    const at = Date.now();
    cloud.process.kill('SIGINT');
    expect(await cloud.exited).toBe(0);
    console.log(`Ctrl-C to exit: ${((Date.now() - at) / 1000).toFixed(1)} s`);
    for (let i = 0; i < 50 && pids.some(isAlive); i++) await sleep(100);
    expect(pids.filter(isAlive).map(describeProcess)).toEqual([]);
  }, 180_000);
});
