import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../lib/client/api-client.ts';
import { getObject } from '../../lib/client/transfer.ts';
import { BLOCK_SIZE, blockHash } from '../../lib/core/format/blocks.ts';
import { decodeManifest, type Manifest } from '../../lib/core/format/manifest.ts';
import { BlockEncoding } from '../../lib/core/ports/codec.ts';
import { cliFor } from '../support/e2e-cli.ts';
import { type StartedCloud, startCloudProcess } from '../support/processes.ts';

/**
 * Stored snapshots can be re-verified (issue 17): `snapshot verify` finds a block corrupted on disk
 * in the local S3 (s3rver's data dir) and names it; `admin check` reports an orphan and a missing
 * segment the test stages there. Through the CLI against the local cloud.
 */
const R1 = 'eu-west-1';
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-verify-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-verify-files-'));
const configPath = join(dataDir, 'config.json');
const { run, json } = cliFor(configPath);
let cloud: StartedCloud;
let api: ApiClient;
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
  // A failed start resolves to its error (with the cloud's output): say why.
  if (cloud instanceof Error) throw cloud;
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  demo = config.accounts.demo.accountId;
  api = new ApiClient({ endpoint: config.regions[R1].endpoint, apiKey: config.accounts.demo.apiKey });
});
afterAll(async () => {
  if (cloud instanceof Error) return;
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

/** The path of a segment's object as s3rver stores it (`<key>._S3rver_object` under the bucket's dir). */
function segmentFile(segmentId: string): string {
  const walk = (dir: string): string | undefined => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        const found = walk(path);
        if (found) return found;
      } else if (entry.name === `${segmentId}._S3rver_object` && path.includes(`segments/${demo}`))
        return path;
    }
    return undefined;
  };
  const found = walk(join(dataDir, R1, 's3'));
  if (!found) throw new Error(`segment ${segmentId} is not on disk`);
  return found;
}

/** A completed snapshot of `data` made by the CLI, and its manifest as the service stored it. */
async function snapshotOf(name: string, data: Buffer): Promise<{ snapshotId: string; manifest: Manifest }> {
  const volumeId = (await json('demo', R1, 'volume', 'create', '--name', name, '--size', `${data.length}`))
    .volumeId;
  const path = join(work, `${name}.img`);
  writeFileSync(path, data);
  const created = await json('demo', R1, 'snapshot', 'create', '--volume', volumeId, '--file', path);
  expect(created.state).toBe('completed');
  const manifest = decodeManifest(await getObject((await api.manifestUrl(created.snapshotId)).url));
  return { snapshotId: created.snapshotId, manifest };
}

describe('snapshot verify', () => {
  it('finds the one block corrupted on disk in the local S3 and names it (exit 6); a sound snapshot verifies (exit 0)', async () => {
    // Random blocks do not compress: each is stored raw, so a flipped byte decodes to other bytes.
    const data = randomBytes(8 * BLOCK_SIZE);
    const { snapshotId, manifest } = await snapshotOf('verified', data);
    const sound = await run('demo', R1, 'snapshot', 'verify', snapshotId);
    expect(sound.code, sound.stderr).toBe(0);
    expect(sound.stdout).toMatch(/integrity\s+ok/);
    expect(sound.stdout).toMatch(/read\s+8 blocks/);

    const victim = manifest.entries.find((e) => e.blockIndex === 3);
    if (!victim) throw new Error('block 3 is not in the manifest');
    expect(victim.encoding).toBe(BlockEncoding.raw);
    const file = segmentFile(victim.segmentId);
    const bytes = readFileSync(file);
    bytes[victim.offset + 1000] = (bytes[victim.offset + 1000] ?? 0) ^ 0x5a;
    writeFileSync(file, bytes);
    const flipped = Buffer.from(data.subarray(3 * BLOCK_SIZE, 4 * BLOCK_SIZE));
    flipped[1000] = (flipped[1000] ?? 0) ^ 0x5a;

    const damaged = await run('demo', R1, 'snapshot', 'verify', snapshotId);
    expect(damaged.code, damaged.stderr).toBe(6);
    const badLines = damaged.stdout.split('\n').filter((line) => line.startsWith('bad block'));
    expect(badLines).toEqual([
      `bad block 3 (volume offset ${3 * BLOCK_SIZE}): segments/${demo}/${victim.segmentId} at offset ${victim.offset}: SHA-256 expected ${victim.hash.toString('hex')}, found ${blockHash(flipped).toString('hex')}`,
    ]);
    expect(damaged.stdout).toMatch(/integrity\s+damaged: 1 bad block/);

    // --no-wait answers the verification's id; the report is there once workers are done.
    const started = await json('demo', R1, 'snapshot', 'verify', snapshotId, '--no-wait');
    expect(started.verificationId).toMatch(/^ver-/);
    let report = await api.getVerification(started.verificationId);
    for (let i = 0; report.state === 'pending' && i < 120; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      report = await api.getVerification(started.verificationId);
    }
    expect(report.result?.badBlocks.map((b) => b.blockIndex)).toEqual([3]);

    const shown = await run('demo', R1, 'snapshot', 'show', snapshotId);
    expect(shown.stdout).toMatch(/integrity\s+damaged \(1 bad block\(s\): 3\), checked \S+ by ver-/);
    // Another account does not see the snapshot at all.
    const other = await run('demo-b', R1, 'snapshot', 'verify', snapshotId);
    expect(other.code).toBe(3);
    expect(other.stderr).toMatch(/snapshot\.notFound/);
  });
});

describe('admin check', () => {
  it('reports an orphan segment and a missing segment staged on disk (exit 6), and counts per account', async () => {
    const kept = await snapshotOf('kept', randomBytes(4 * BLOCK_SIZE));
    const broken = await snapshotOf('broken', randomBytes(4 * BLOCK_SIZE));
    const [keptSegment] = kept.manifest.segments.keys();
    const [brokenSegment] = broken.manifest.segments.keys();
    if (!keptSegment || !brokenSegment) throw new Error('no segments');
    // An orphan: a copy of a segment under an id no manifest names, written a day and a half ago.
    const orphanId = 'seg-0rphan0000000000';
    const source = segmentFile(keptSegment);
    const orphan = join(dirname(source), `${orphanId}._S3rver_object`);
    for (const suffix of ['object', 'metadata.json', 'object.md5']) {
      const from = source.replace(/_object$/, `_${suffix}`);
      try {
        copyFileSync(from, orphan.replace(/_object$/, `_${suffix}`));
      } catch {
        // s3rver keeps no .md5 for some objects
      }
    }
    const old = new Date(Date.now() - 36 * 3600 * 1000);
    utimesSync(orphan, old, old);
    // A missing segment: one of a live snapshot's, removed from the store.
    const missing = segmentFile(brokenSegment);
    for (const suffix of ['object', 'metadata.json', 'object.md5'])
      rmSync(missing.replace(/_object$/, `_${suffix}`), { force: true });

    const checked = await run('operator', R1, 'admin', 'check');
    expect(checked.code, checked.stderr).toBe(6);
    expect(checked.stdout).toContain(`orphan segment: segments/${demo}/${orphanId} (`);
    expect(checked.stdout).toContain(
      `segment missing: segments/${demo}/${brokenSegment} of snapshot ${broken.snapshotId}: not stored, manifest records ${broken.manifest.segments.get(brokenSegment)}`,
    );
    // --json exits 6 too: read through run.
    const asJsonRun = await run('operator', R1, '--json', 'admin', 'check');
    expect(asJsonRun.code).toBe(6);
    const asJson = JSON.parse(asJsonRun.stdout);
    const mine = asJson.accounts.find((a: { accountId: string }) => a.accountId === demo);
    expect(mine.snapshots).toBe(3);
    expect(mine.missing).toEqual([
      expect.objectContaining({ snapshotId: broken.snapshotId, segmentId: brokenSegment }),
    ]);
    expect(mine.orphans.map((o: { key: string }) => o.key)).toEqual([`segments/${demo}/${orphanId}`]);
    expect(asJson.problems).toBe(2);
    // Not the operator: refused.
    const refused = await run('demo', R1, 'admin', 'check');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/auth\.forbidden/);
  });
});
