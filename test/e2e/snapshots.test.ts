import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3ClientConfig } from '../../lib/adapters/aws-clients.ts';
import { LOCAL_CREDENTIALS } from '../../scripts/local-cloud/cloud.ts';
import { cli, type StartedCloud, startCloudProcess } from '../support/processes.ts';

const BLOCK = 512 * 1024;
const SIZE = 64 * 1024 * 1024;
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-snapshots-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-files-'));
const configPath = join(dataDir, 'config.json');
let cloud: StartedCloud;
const run = (...args: string[]) => cli(['--config', configPath, ...args]);
const json = async (...args: string[]) => {
  const result = await run('--json', ...args);
  if (result.code !== 0) throw new Error(`volsnap ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
};

/** 64 MiB: every 4th block zero, the rest incompressible. */
function makeImage(): Buffer {
  const image = randomBytes(SIZE);
  for (let i = 0; i < SIZE / BLOCK; i += 4) image.fill(0, i * BLOCK, (i + 1) * BLOCK);
  return image;
}

/** Files of the bucket's objects under a key prefix, as s3rver stores them on disk. */
function storedObjects(prefix: string): string[] {
  const root = join(dataDir, 'eu-west-1', 's3');
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('._S3rver_object') && path.includes(prefix)) found.push(path);
    }
  };
  walk(root);
  return found;
}

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
});
afterAll(async () => {
  // Kept beside the cloud's data, for reading when a test here fails.
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

describe('snapshots end to end through the CLI', () => {
  const image = makeImage();
  const changed = Buffer.from(image);
  // Change 1 MiB: two neighbouring blocks in the middle.
  randomBytes(2 * BLOCK).copy(changed, 37 * BLOCK);
  const imagePath = join(work, 'disk.img');
  const changedPath = join(work, 'disk-2.img');
  writeFileSync(imagePath, image);
  writeFileSync(changedPath, changed);
  let volumeId: string;
  let first: { snapshotId: string };
  let second: { snapshotId: string };

  it('snapshots a 64 MiB image, storing only its non-zero blocks', async () => {
    volumeId = (await json('volume', 'create', '--name', 'disk', '--size', '64MiB')).volumeId;
    const result = await json(
      'snapshot',
      'create',
      '--volume',
      volumeId,
      '--file',
      imagePath,
      '--name',
      'first',
    );
    first = result;
    expect(result.state).toBe('completed');
    expect(result.report).toMatchObject({ blocks: 128, zeroBlocks: 32, newBlocks: 96, reusedBlocks: 0 });
    expect(result.stats).toMatchObject({ blockCount: 96, zeroBlocks: 32, newBlocks: 96 });
    // Incompressible blocks are stored raw: no more than their bytes.
    expect(result.report.newStoredBytes).toBe(96 * BLOCK);
  });

  it('uploads about 1 MiB for a second snapshot where 1 MiB changed', async () => {
    const result = await json(
      'snapshot',
      'create',
      '--volume',
      volumeId,
      '--file',
      changedPath,
      '--name',
      'second',
    );
    second = result;
    expect(result.parentSnapshotId).toBe(first.snapshotId);
    expect(result.report.newBlocks).toBe(2);
    expect(result.report.reusedBlocks).toBe(94);
    expect(result.report.newStoredBytes).toBeLessThanOrEqual(1.5 * 1024 * 1024);
    const text = await run('snapshot', 'show', second.snapshotId);
    expect(text.stdout).toMatch(/blocks\s+96 non-zero of 128 \(2 new, 94 from parent\)/);
  });

  it('restores each snapshot byte for byte into a sparse file', async () => {
    for (const [snapshot, expected] of [
      [first, image],
      [second, changed],
    ] as const) {
      const target = join(work, `${snapshot.snapshotId}.img`);
      const result = await run('snapshot', 'restore', snapshot.snapshotId, '--to', target);
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain('96 block(s) fetched and verified');
      expect(readFileSync(target).equals(expected)).toBe(true);
      const stats = statSync(target);
      expect(stats.size).toBe(SIZE);
      expect(stats.blocks * 512).toBeLessThan(stats.size);
    }
  });

  it('lists changed blocks between the two', async () => {
    const diff = await json('snapshot', 'diff', first.snapshotId, second.snapshotId);
    expect(diff).toMatchObject({ changedBlocks: 2, ranges: [{ start: 37, count: 2 }] });
  });

  it('resumes an interrupted restore, fetching only what is missing', async () => {
    const target = join(work, 'resume.img');
    await run('snapshot', 'restore', second.snapshotId, '--to', target);
    const partial = readFileSync(target);
    partial.fill(0, 50 * BLOCK, 60 * BLOCK);
    writeFileSync(target, partial);
    const refused = await run('snapshot', 'restore', second.snapshotId, '--to', target);
    expect(refused.stderr).toContain('--resume');
    const resumed = await json('snapshot', 'restore', second.snapshotId, '--to', target, '--resume');
    // Blocks 50-59 less the zero ones (52, 56) were lost.
    expect(resumed.report.fetchedBlocks).toBe(8);
    expect(readFileSync(target).equals(changed)).toBe(true);
  });

  it('refuses to delete a volume that has snapshots, naming them', async () => {
    const result = await run('volume', 'delete', volumeId);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('volume.hasSnapshots');
    expect(result.stderr).toContain(first.snapshotId);
  });

  it('makes volumes from a snapshot, at least its size, with the snapshot as first parent', async () => {
    const smaller = await run(
      'volume',
      'create',
      '--name',
      'small',
      '--snapshot',
      second.snapshotId,
      '--size',
      '32MiB',
    );
    expect(smaller.stderr).toContain('volume.invalidSize');
    const copy = await json(
      'volume',
      'create',
      '--name',
      'copy',
      '--snapshot',
      second.snapshotId,
      '--size',
      '128MiB',
    );
    expect(copy).toMatchObject({ sizeBytes: 128 * 1024 * 1024, sourceSnapshotId: second.snapshotId });
    const grown = Buffer.concat([changed, Buffer.alloc(SIZE)]);
    const grownPath = join(work, 'grown.img');
    writeFileSync(grownPath, grown);
    const result = await json('snapshot', 'create', '--volume', copy.volumeId, '--file', grownPath);
    expect(result.parentSnapshotId).toBe(second.snapshotId);
    expect(result.report.newBlocks).toBe(0);
  });

  it('refuses a file larger than the volume, leaving no completed snapshot', async () => {
    const small = (await json('volume', 'create', '--name', 'small', '--size', '32MiB')).volumeId;
    const result = await run('snapshot', 'create', '--volume', small, '--file', imagePath);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('larger than volume');
    expect(await json('snapshot', 'list', '--volume', small)).toEqual([]);
  });

  it('answers unknown volumes and snapshots with 404 codes', async () => {
    const noVolume = await run('snapshot', 'create', '--volume', 'vol-0000000000000000', '--file', imagePath);
    expect(noVolume.stderr).toContain('volume.notFound');
    const noSnapshot = await run('snapshot', 'restore', 'snap-0000000000000000', '--to', join(work, 'x.img'));
    expect(noSnapshot.stderr).toContain('snapshot.notFound');
  });

  it('takes two concurrent snapshots of one volume as two snapshots', async () => {
    const [a, b] = await Promise.all([
      json('snapshot', 'create', '--volume', volumeId, '--file', changedPath),
      json('snapshot', 'create', '--volume', volumeId, '--file', changedPath),
    ]);
    expect(a.snapshotId).not.toBe(b.snapshotId);
    expect([a.state, b.state]).toEqual(['completed', 'completed']);
  });

  it('snapshots an image-backed volume server-side, through the queue and a worker', async () => {
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    const accountId = config.accounts.demo.accountId;
    const s3Endpoint = /eu-west-1\s+API \S+\s+\(S3 (http:\/\/127\.0\.0\.1:\d+)/.exec(cloud.output())?.[1];
    if (!s3Endpoint) throw new Error('the local cloud did not print its S3 endpoint');
    const s3 = new S3Client({
      ...s3ClientConfig(
        { name: 'eu-west-1', bucket: 'x', table: 'x', s3Endpoint, s3ForcePathStyle: true },
        LOCAL_CREDENTIALS,
      ),
    });
    const key = `images/${accountId}/disk.img`;
    await s3.send(new PutObjectCommand({ Bucket: 'volsnap-local-eu-west-1', Key: key, Body: image }));
    const volume = await json(
      'volume',
      'create',
      '--name',
      'image disk',
      '--size',
      '64MiB',
      '--image',
      `s3://volsnap-local-eu-west-1/${key}`,
    );
    const result = await json('snapshot', 'create', '--volume', volume.volumeId);
    expect(result).toMatchObject({
      state: 'completed',
      progress: 100,
      stats: { blockCount: 96, zeroBlocks: 32 },
    });
    const target = join(work, 'from-image.img');
    await run('snapshot', 'restore', result.snapshotId, '--to', target);
    expect(readFileSync(target).equals(image)).toBe(true);
    // Another account's images are out of reach.
    const foreign = await run(
      'volume',
      'create',
      '--name',
      'x',
      '--size',
      '64MiB',
      '--image',
      's3://volsnap-local-eu-west-1/images/acct-someone/disk.img',
    );
    expect(foreign.stderr).toContain('cannot read images from');
  });

  it('stops a restore at a corrupted block and names it', async () => {
    // The last test: flip one byte in every stored segment, whichever snapshot it serves.
    const segments = storedObjects('segments');
    expect(segments.length).toBeGreaterThan(0);
    for (const segment of segments) {
      const bytes = readFileSync(segment);
      bytes[1000] = (bytes[1000] ?? 0) ^ 0xff;
      writeFileSync(segment, bytes);
    }
    const result = await run('snapshot', 'restore', first.snapshotId, '--to', join(work, 'corrupt.img'));
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(/data\.corrupt: Block \d+ of snapshot snap-\w+ failed verification/);
  });
});
