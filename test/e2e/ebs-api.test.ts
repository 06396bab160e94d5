import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompleteSnapshotCommand,
  EBSClient,
  GetSnapshotBlockCommand,
  ListChangedBlocksCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { DescribeSnapshotsCommand, EC2Client, waitUntilSnapshotCompleted } from '@aws-sdk/client-ec2';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliFor } from '../support/e2e-cli.ts';
import { type StartedCloud, startCloudProcess } from '../support/processes.ts';
import { createSigV4Key } from '../support/sigv4-keys.ts';

// The acceptance test of the EBS direct API (issue 18): the unmodified @aws-sdk/client-ebs and
// @aws-sdk/client-ec2 against the local cloud, used as coldsnap uses them (64 concurrent
// PutSnapshotBlock, zero blocks skipped, the LINEAR checksum, DescribeSnapshots to wait), then the
// volsnap CLI on the same snapshot.

const BLOCK = 512 * 1024;
const GiB = 1024 ** 3;
const IMAGE_BLOCKS = 128; // 64 MiB
const CONCURRENCY = 64;
const [R1, R2] = ['eu-west-1', 'us-east-1'];
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-ebs-api-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-ebs-api-files-'));
const configPath = join(dataDir, 'config.json');
const cli = cliFor(configPath);
let cloud: StartedCloud;
let ebs: EBSClient;
let ec2: EC2Client;

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
  // A failed start resolves to the error, with the cloud's output.
  if (cloud instanceof Error) throw cloud;
  const api = JSON.parse(readFileSync(configPath, 'utf8')).regions[R1].endpoint as string;
  const key = await createSigV4Key(cli, { account: 'demo', region: R1 });
  const credentials = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  // 64 requests in flight need 64 sockets (the SDK's default agent allows 50).
  const requestHandler = { httpAgent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }) };
  ebs = new EBSClient({ region: R1, endpoint: `${api}/ebs`, credentials, requestHandler });
  ec2 = new EC2Client({ region: R1, endpoint: `${api}/ec2/`, credentials, requestHandler });
}, 240_000);
afterAll(async () => {
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

const blockOf = (image: Buffer, index: number) => image.subarray(index * BLOCK, (index + 1) * BLOCK);
const isZero = (block: Buffer) => block.every((byte) => byte === 0);
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest();

/**
 * Uploads the blocks of `image` that differ from `base` (all non-zero ones without a base) as
 * coldsnap does: zero blocks skipped, 64 PutSnapshotBlock in flight, then CompleteSnapshot with the
 * count and the LINEAR checksum (SHA-256 over the raw digests in index order). Returns the indices.
 */
async function upload(snapshotId: string, image: Buffer, base?: Buffer): Promise<number[]> {
  const indices: number[] = [];
  for (let i = 0; i < image.length / BLOCK; i++) {
    const block = blockOf(image, i);
    if (base ? !block.equals(blockOf(base, i)) : !isZero(block)) indices.push(i);
  }
  const limit = pLimit(CONCURRENCY);
  const answers = await Promise.all(
    indices.map((index) =>
      limit(() =>
        ebs.send(
          new PutSnapshotBlockCommand({
            SnapshotId: snapshotId,
            BlockIndex: index,
            BlockData: blockOf(image, index),
            DataLength: BLOCK,
            Checksum: sha256(blockOf(image, index)).toString('base64'),
            ChecksumAlgorithm: 'SHA256',
          }),
        ),
      ),
    ),
  );
  answers.forEach((answer, n) => {
    expect(answer.$metadata.httpStatusCode).toBe(201);
    expect(answer.Checksum).toBe(sha256(blockOf(image, indices[n] as number)).toString('base64'));
  });
  const linear = createHash('sha256');
  for (const index of indices) linear.update(sha256(blockOf(image, index)));
  const completed = await ebs.send(
    new CompleteSnapshotCommand({
      SnapshotId: snapshotId,
      ChangedBlocksCount: indices.length,
      Checksum: linear.digest('base64'),
      ChecksumAlgorithm: 'SHA256',
      ChecksumAggregationMethod: 'LINEAR',
    }),
  );
  expect(completed.$metadata.httpStatusCode).toBe(202);
  expect(['pending', 'completed']).toContain(completed.Status);
  return indices;
}

/** Waits with EC2 DescribeSnapshots, as `coldsnap wait` does: the SDK's own waiter. */
async function waitCompleted(snapshotId: string): Promise<void> {
  const result = await waitUntilSnapshotCompleted(
    { client: ec2, maxWaitTime: 180, minDelay: 1, maxDelay: 2 },
    { SnapshotIds: [snapshotId] },
  );
  expect(result.state).toBe('SUCCESS');
  const { Snapshots } = await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
  expect(Snapshots).toMatchObject([
    { SnapshotId: snapshotId, State: 'completed', Progress: '100%', VolumeSize: 1 },
  ]);
}

/** The volume a restore wrote is `image` followed by zeros to 1 GiB. */
function restoredEquals(path: string, image: Buffer): boolean {
  if (statSync(path).size !== GiB) return false;
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(image.length);
    if (readSync(fd, chunk, 0, chunk.length, 0) !== chunk.length || !chunk.equals(image)) return false;
    for (let at = image.length; at < GiB; at += chunk.length) {
      const n = readSync(fd, chunk, 0, chunk.length, at);
      if (!isZero(chunk.subarray(0, n))) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

describe('the EBS direct API, driven as coldsnap drives it by the unmodified AWS SDK clients', () => {
  // 64 MiB, a quarter of its blocks zero, the rest incompressible.
  const image = randomBytes(IMAGE_BLOCKS * BLOCK);
  for (let i = 0; i < IMAGE_BLOCKS; i += 4) image.fill(0, i * BLOCK, (i + 1) * BLOCK);
  const changed = Buffer.from(image);
  randomBytes(BLOCK).copy(changed, 5 * BLOCK); // a written block rewritten
  randomBytes(BLOCK).copy(changed, 8 * BLOCK); // a zero block written
  let first: string;

  it('uploads 64 MiB at 64 concurrent PutSnapshotBlock, completes, waits, lists and downloads every block byte for byte', async () => {
    const started = await ebs.send(
      new StartSnapshotCommand({
        VolumeSize: 1,
        Description: 'disk.img',
        Timeout: 10,
        Tags: [{ Key: 'tool', Value: 'coldsnap' }],
      }),
    );
    expect(started).toMatchObject({
      Status: 'pending',
      VolumeSize: 1,
      BlockSize: BLOCK,
      SnapshotId: expect.stringMatching(/^snap-/),
    });
    first = started.SnapshotId as string;
    const written = await upload(first, image);
    expect(written).toHaveLength(96);
    await waitCompleted(first);

    const listed: { BlockIndex?: number; BlockToken?: string }[] = [];
    let NextToken: string | undefined;
    do {
      const page = await ebs.send(
        new ListSnapshotBlocksCommand({ SnapshotId: first, MaxResults: 10000, NextToken }),
      );
      expect(page).toMatchObject({ VolumeSize: 1, BlockSize: BLOCK });
      listed.push(...(page.Blocks ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    expect(listed.map((b) => b.BlockIndex)).toEqual(written);

    const limit = pLimit(CONCURRENCY);
    const downloaded = Buffer.alloc(image.length);
    await Promise.all(
      listed.map((block) =>
        limit(async () => {
          const got = await ebs.send(
            new GetSnapshotBlockCommand({
              SnapshotId: first,
              BlockIndex: block.BlockIndex,
              BlockToken: block.BlockToken,
            }),
          );
          const bytes = Buffer.from(
            await (got.BlockData as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
          );
          expect(got).toMatchObject({
            DataLength: BLOCK,
            ChecksumAlgorithm: 'SHA256',
            Checksum: sha256(bytes).toString('base64'),
          });
          bytes.copy(downloaded, (block.BlockIndex as number) * BLOCK);
        }),
      ),
    );
    expect(downloaded.equals(image)).toBe(true);
  }, 300_000);

  it('writes an incremental snapshot with ParentSnapshotId, and ListChangedBlocks names exactly the blocks changed', async () => {
    const started = await ebs.send(
      new StartSnapshotCommand({ VolumeSize: 1, ParentSnapshotId: first, Timeout: 10 }),
    );
    expect(started.ParentSnapshotId).toBe(first);
    const second = started.SnapshotId as string;
    expect(await upload(second, changed, image)).toEqual([5, 8]);
    await waitCompleted(second);
    const changes = await ebs.send(
      new ListChangedBlocksCommand({ FirstSnapshotId: first, SecondSnapshotId: second, MaxResults: 10000 }),
    );
    expect(changes.ChangedBlocks?.map((b) => b.BlockIndex)).toEqual([5, 8]);
    // The CLI sees it as an ordinary snapshot of the first one's volume, with only the two blocks new.
    const shown = await cli.json('demo', R1, 'snapshot', 'show', second);
    const volumeId = (await cli.json('demo', R1, 'snapshot', 'show', first)).volumeId;
    expect(shown).toMatchObject({
      state: 'completed',
      volumeId,
      parentSnapshotId: first,
      stats: { newBlocks: 2, reusedBlocks: 95 },
    });
    const to = join(work, 'second.img');
    await cli.json('demo', R1, 'snapshot', 'restore', second, '--to', to);
    expect(restoredEquals(to, changed)).toBe(true);
  }, 300_000);

  it('the volsnap CLI restores the uploaded snapshot byte for byte, and copies it to the other region', async () => {
    const to = join(work, 'first.img');
    await cli.json('demo', R1, 'snapshot', 'restore', first, '--to', to);
    expect(restoredEquals(to, image)).toBe(true);
    const copy = await cli.json('demo', R2, 'snapshot', 'copy', first, '--source-region', R1);
    expect(copy).toMatchObject({
      state: 'completed',
      region: R2,
      copiedFrom: { region: R1, snapshotId: first },
    });
    const copied = join(work, 'copy.img');
    await cli.json('demo', R2, 'snapshot', 'restore', copy.snapshotId, '--to', copied);
    expect(restoredEquals(copied, image)).toBe(true);
  }, 300_000);

  it('fails a snapshot whose aggregate checksum is wrong: DescribeSnapshots says error, and it is no parent', async () => {
    const { SnapshotId } = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }));
    const block = blockOf(image, 1);
    await ebs.send(
      new PutSnapshotBlockCommand({
        SnapshotId,
        BlockIndex: 0,
        BlockData: block,
        DataLength: BLOCK,
        Checksum: sha256(block).toString('base64'),
        ChecksumAlgorithm: 'SHA256',
      }),
    );
    await ebs.send(
      new CompleteSnapshotCommand({
        SnapshotId,
        ChangedBlocksCount: 1,
        Checksum: sha256(block).toString('base64'),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
    let state: string | undefined;
    for (let i = 0; i < 120 && state !== 'error'; i++) {
      state = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [SnapshotId as string] })))
        .Snapshots?.[0]?.State;
      if (state !== 'error') await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(state).toBe('error');
    await expect(
      ebs.send(new StartSnapshotCommand({ VolumeSize: 1, ParentSnapshotId: SnapshotId })),
    ).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    await expect(
      ebs.send(
        new PutSnapshotBlockCommand({
          SnapshotId,
          BlockIndex: 1,
          BlockData: block,
          DataLength: BLOCK,
          Checksum: sha256(block).toString('base64'),
          ChecksumAlgorithm: 'SHA256',
        }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } });
  }, 300_000);
});
