import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3ClientConfig } from '../../lib/adapters/aws-clients.ts';
import { LOCAL_CREDENTIALS } from '../../scripts/local-cloud/cloud.ts';
import { cliFor, storedSegmentBytes as segmentBytesOnDisk } from '../support/e2e-cli.ts';
import { type StartedCloud, startCloudProcess } from '../support/processes.ts';

/**
 * Issue #7's acceptance through the CLI against the two-region local cloud: policies (with a copy
 * rule) driven on demand, the agent taking queued snapshots, queued snapshots expiring without it,
 * the recycle bin, and garbage collection (also while a snapshot is being created).
 */

const BLOCK = 512 * 1024;
const SIZE = 16 * 1024 * 1024;
const [R1, R2] = ['eu-west-1', 'us-east-1'];
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-maintenance-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-maintenance-files-'));
const configPath = join(dataDir, 'config.json');
let cloud: StartedCloud;
const { run, json } = cliFor(configPath);
const storedSegmentBytes = (region: string, accountId: string) =>
  segmentBytesOnDisk(dataDir, region, accountId);

/** A disk image: a quarter of its blocks zero, the rest random. */
function image(seedBlocks = SIZE / BLOCK): Buffer {
  const bytes = randomBytes(seedBlocks * BLOCK);
  for (let i = 0; i < seedBlocks; i += 4) bytes.fill(0, i * BLOCK, (i + 1) * BLOCK);
  return bytes;
}

async function restoreEquals(account: string, region: string, snapshotId: string, expected: Buffer) {
  const to = join(work, `${snapshotId}-${Date.now()}.img`);
  await json(account, region, 'snapshot', 'restore', snapshotId, '--to', to);
  return readFileSync(to).equals(expected);
}

/** A policy's snapshots in a region (not those in the recycle bin), once none is being written. */
async function settled(region: string, policyId: string) {
  for (let i = 0; ; i++) {
    const listed = await json('demo', region, 'snapshot', 'list', '--tag', `volsnap:policy=${policyId}`);
    if (!listed.some((s: { state: string }) => s.state === 'pending') || i > 120) return listed;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

let demo: string;

beforeAll(async () => {
  cloud = await startCloudProcess([
    '--fresh',
    '--port-base',
    'auto',
    '--data-dir',
    dataDir,
    '--no-schedules',
  ]);
  demo = JSON.parse(readFileSync(configPath, 'utf8')).accounts.demo.accountId;
});
afterAll(async () => {
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

describe('snapshot policies, driven on demand', () => {
  it('every minute, keep 3, copies to another region kept 2: five runs leave the 3 kept and the one written since, in each region', async () => {
    const s3Endpoint = /eu-west-1\s+API \S+\s+\(S3 (http:\/\/127\.0\.0\.1:\d+)/.exec(cloud.output())?.[1];
    if (!s3Endpoint) throw new Error('the local cloud did not print its S3 endpoint');
    const s3 = new S3Client(
      s3ClientConfig(
        { name: R1, bucket: 'x', table: 'x', s3Endpoint, s3ForcePathStyle: true },
        LOCAL_CREDENTIALS,
      ),
    );
    const disk = image();
    const key = `images/${demo}/policy-disk.img`;
    await s3.send(new PutObjectCommand({ Bucket: `volsnap-local-${R1}`, Key: key, Body: disk }));
    const volume = await json(
      'demo',
      R1,
      'volume',
      'create',
      '--name',
      'database',
      '--size',
      '16MiB',
      '--image',
      `s3://volsnap-local-${R1}/${key}`,
      '--tag',
      'backup=hourly',
    );
    // A volume without the tag is left alone.
    await json(
      'demo',
      R1,
      'volume',
      'create',
      '--name',
      'scratch',
      '--size',
      '16MiB',
      '--image',
      `s3://volsnap-local-${R1}/${key}`,
    );
    const policy = await json(
      'demo',
      R1,
      'policy',
      'create',
      '--name',
      'hourly database',
      '--target-tag',
      'backup=hourly',
      '--every',
      '1m',
      '--keep',
      '3',
      '--copy-to',
      R2,
      '--copy-keep',
      '2',
    );
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      const report = await json('operator', R1, 'admin', 'run', 'policies', '--policy', policy.policyId);
      const ran = report.runs.find((r: { policyId: string }) => r.policyId === policy.policyId);
      expect(ran.report.errors).toEqual([]);
      expect(ran.report.created).toHaveLength(1);
      created.push(ran.report.created[0]);
      await settled(R1, policy.policyId);
      await settled(R2, policy.policyId);
    }
    // Retention counts completed snapshots only: the fifth run kept 3 and the one it made, written since.
    const kept = await settled(R1, policy.policyId);
    expect(kept).toHaveLength(4);
    expect(
      kept.every(
        (s: { state: string; volumeId: string }) => s.state === 'completed' && s.volumeId === volume.volumeId,
      ),
    ).toBe(true);
    // The newest four of the five runs; the oldest is in the recycle bin.
    expect(kept.map((s: { snapshotId: string }) => s.snapshotId).sort()).toEqual(created.slice(1).sort());
    const bin = await json(
      'demo',
      R1,
      'snapshot',
      'list',
      '--recycle-bin',
      '--tag',
      `volsnap:policy=${policy.policyId}`,
    );
    expect(bin.map((s: { snapshotId: string }) => s.snapshotId)).toEqual([created[0]]);
    // Region 2 keeps its own two newest copies and the one written since, each of a snapshot the policy made.
    const copies = await settled(R2, policy.policyId);
    expect(copies).toHaveLength(3);
    for (const copy of copies) {
      expect(copy.state).toBe('completed');
      expect(created).toContain(copy.copiedFrom.snapshotId);
    }
    expect(await restoreEquals('demo', R2, copies[0].snapshotId, disk)).toBe(true);
    const shown = await json('demo', R1, 'policy', 'show', policy.policyId);
    expect(shown.lastRun.created).toEqual([created[4]]);
  }, 240_000);

  it('queues snapshots of volumes on a host for the agent, which completes them; without it they expire to error', async () => {
    const file = join(work, 'host-disk.img');
    const disk = image();
    writeFileSync(file, disk);
    const volume = await json(
      'demo',
      R1,
      'volume',
      'create',
      '--name',
      'host disk',
      '--size',
      '16MiB',
      '--tag',
      'backup=agent',
    );
    const policy = await json(
      'demo',
      R1,
      'policy',
      'create',
      '--name',
      'agent',
      '--target-tag',
      'backup=agent',
      '--every',
      '1d',
      '--keep',
      '5',
      '--agent-timeout',
      '2s',
    );
    const first = await json('operator', R1, 'admin', 'run', 'policies', '--policy', policy.policyId);
    const queuedId = first.runs[0].report.created[0];
    expect((await json('demo', R1, 'snapshot', 'show', queuedId)).state).toBe('queued');
    const agent = await run('demo', R1, 'agent', '--volume', `${volume.volumeId}=${file}`, '--once');
    expect(agent.code, agent.stderr).toBe(0);
    expect(agent.stdout).toContain(`${queuedId} (${volume.volumeId}): completed`);
    expect((await json('demo', R1, 'snapshot', 'show', queuedId)).state).toBe('completed');
    expect(await restoreEquals('demo', R1, queuedId, disk)).toBe(true);

    // No agent this time: past its 2 s, the reaper fails it with a reason that says what to run.
    const second = await json('operator', R1, 'admin', 'run', 'policies', '--policy', policy.policyId);
    const orphanId = second.runs[0].report.created[0];
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const reaped = await json('operator', R1, 'admin', 'run', 'reaper');
    expect(reaped.queuedExpired).toContain(orphanId);
    const orphan = await json('demo', R1, 'snapshot', 'show', orphanId);
    expect(orphan.state).toBe('error');
    expect(orphan.stateReason).toContain('volsnap agent');
    expect(orphan.stateReason).toContain(volume.volumeId);
  }, 120_000);
});

describe('the recycle bin and garbage collection', () => {
  const v1 = image();
  const v2 = Buffer.from(v1);
  // A quarter of the blocks rewritten, spread through the volume: the second snapshot's own data.
  for (let i = 1; i < SIZE / BLOCK; i += 4) randomBytes(BLOCK).copy(v2, i * BLOCK);
  let volumeId: string;
  let first: string;

  it('keeps a deleted snapshot whole in the recycle bin (GC leaves its blocks) until it is undeleted', async () => {
    writeFileSync(join(work, 'v1.img'), v1);
    writeFileSync(join(work, 'v2.img'), v2);
    volumeId = (await json('demo', R1, 'volume', 'create', '--name', 'gc disk', '--size', '16MiB')).volumeId;
    first = (
      await json('demo', R1, 'snapshot', 'create', '--volume', volumeId, '--file', join(work, 'v1.img'))
    ).snapshotId;
    const second = await json(
      'demo',
      R1,
      'snapshot',
      'create',
      '--volume',
      volumeId,
      '--file',
      join(work, 'v2.img'),
    );
    const deleted = await run('demo', R1, 'snapshot', 'delete', second.snapshotId);
    expect(deleted.stdout).toContain('recycle bin until');
    expect(
      (await json('demo', R1, 'snapshot', 'list', '--volume', volumeId)).map(
        (s: { snapshotId: string }) => s.snapshotId,
      ),
    ).toEqual([first]);
    // Another account cannot see it, shared or not; restoring it asks to undelete first.
    expect((await run('demo-b', R1, 'snapshot', 'show', second.snapshotId)).stderr).toContain(
      'snapshot.notFound',
    );
    expect(
      (await run('demo', R1, 'snapshot', 'restore', second.snapshotId, '--to', join(work, 'no.img'))).stderr,
    ).toContain('undelete');
    const before = storedSegmentBytes(R1, demo);
    const gc = await json('operator', R1, 'admin', 'run', 'gc', '--grace', '0s');
    // What it may delete are the empty tombstones of upload URLs the snapshots did not use.
    expect(gc.bytesReclaimed).toBe(0);
    expect(storedSegmentBytes(R1, demo)).toBe(before);
    const back = await json('demo', R1, 'snapshot', 'undelete', second.snapshotId);
    expect(back.state).toBe('completed');
    expect(await restoreEquals('demo', R1, second.snapshotId, v2)).toBe(true);
  }, 120_000);

  it('reclaims exactly the blocks of a snapshot deleted for good, never those of live ones', async () => {
    await json('demo', R1, 'account', 'settings', '--recycle-bin-days', '0');
    const withFirst = storedSegmentBytes(R1, demo);
    const third = await json(
      'demo',
      R1,
      'snapshot',
      'create',
      '--volume',
      volumeId,
      '--file',
      join(work, 'v1.img'),
    );
    // Written against the second snapshot: every block that differs from v2 is new (a quarter).
    const grown = storedSegmentBytes(R1, demo) - withFirst;
    expect(grown).toBeGreaterThan(0);
    const listed = await json('demo', R1, 'snapshot', 'list', '--volume', volumeId);
    const second = listed.find(
      (s: { snapshotId: string }) => s.snapshotId !== first && s.snapshotId !== third.snapshotId,
    );
    expect((await run('demo', R1, 'snapshot', 'delete', third.snapshotId)).stdout).toContain(
      `Deleted ${third.snapshotId}`,
    );
    const gc = await json('operator', R1, 'admin', 'run', 'gc', '--grace', '0s');
    expect(gc.bytesReclaimed).toBe(grown);
    expect(storedSegmentBytes(R1, demo)).toBe(withFirst);
    expect(await restoreEquals('demo', R1, first, v1)).toBe(true);
    expect(await restoreEquals('demo', R1, second.snapshotId, v2)).toBe(true);
  }, 120_000);

  it('never takes a block of a snapshot being created while it runs', async () => {
    const v3 = image();
    writeFileSync(join(work, 'v3.img'), v3);
    const fresh = (await json('demo', R1, 'volume', 'create', '--name', 'busy disk', '--size', '16MiB'))
      .volumeId;
    const creating = json(
      'demo',
      R1,
      'snapshot',
      'create',
      '--volume',
      fresh,
      '--file',
      join(work, 'v3.img'),
    );
    const collecting = (async () => {
      const reports = [];
      for (let i = 0; i < 3; i++)
        reports.push(await json('operator', R1, 'admin', 'run', 'gc', '--grace', '0s'));
      return reports;
    })();
    const [created] = await Promise.all([creating, collecting]);
    expect(created.state).toBe('completed');
    await json('operator', R1, 'admin', 'run', 'gc', '--grace', '0s');
    expect(await restoreEquals('demo', R1, created.snapshotId, v3)).toBe(true);
    expect(await restoreEquals('demo', R1, first, v1)).toBe(true);
  }, 120_000);
});
