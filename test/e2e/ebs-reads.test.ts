import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EBSClient,
  GetSnapshotBlockCommand,
  ListChangedBlocksCommand,
  ListSnapshotBlocksCommand,
  ResourceNotFoundException,
  ValidationException,
} from '@aws-sdk/client-ebs';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliFor } from '../support/e2e-cli.ts';
import { type StartedCloud, startCloudProcess } from '../support/processes.ts';
import { createSigV4Key } from '../support/sigv4-keys.ts';

// The EBS direct API's reads, driven by the unmodified @aws-sdk/client-ebs against the local cloud,
// on snapshots the volsnap CLI made.

const BLOCK = 512 * 1024;
const BLOCKS = 96;
const REGION = 'eu-west-1';
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-ebs-reads-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-ebs-files-'));
const configPath = join(dataDir, 'config.json');
const { json } = cliFor(configPath);
let cloud: StartedCloud;
let endpoint: string;

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
  if (cloud instanceof Error) throw cloud; // its message holds the cloud's output
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  endpoint = `${config.regions[REGION].endpoint}/ebs`;
}, 300_000);
afterAll(async () => {
  if (!cloud || cloud instanceof Error) return;
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud.output());
  cloud.process.kill('SIGINT');
  await cloud.exited;
});

/** 48 MiB: every 4th block zero, the rest incompressible. */
function makeImage(): Buffer {
  const image = randomBytes(BLOCKS * BLOCK);
  for (let i = 0; i < BLOCKS; i += 4) image.fill(0, i * BLOCK, (i + 1) * BLOCK);
  return image;
}

const blockOf = (image: Buffer, index: number) => image.subarray(index * BLOCK, (index + 1) * BLOCK);
const isZero = (block: Buffer) => block.every((byte) => byte === 0);

async function ebsClientOf(account: string): Promise<EBSClient> {
  const key = await createSigV4Key(cliFor(configPath), { account, region: REGION });
  return new EBSClient({
    region: REGION,
    endpoint,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
  });
}

/** Every block of a snapshot, listed page by page (MaxResults 100, as small as the API allows). */
async function listAll(ebs: EBSClient, snapshotId: string) {
  const blocks: { BlockIndex: number; BlockToken: string }[] = [];
  let pages = 0;
  let NextToken: string | undefined;
  do {
    const page = await ebs.send(
      new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 100, NextToken }),
    );
    pages++;
    expect(page).toMatchObject({ VolumeSize: 1, BlockSize: BLOCK });
    expect(page.ExpiryTime).toBeInstanceOf(Date);
    for (const block of page.Blocks ?? [])
      blocks.push({ BlockIndex: block.BlockIndex ?? -1, BlockToken: block.BlockToken ?? '' });
    NextToken = page.NextToken;
  } while (NextToken);
  return { blocks, pages };
}

describe('the EBS direct API reads CLI-made snapshots with the unmodified SDK client', () => {
  const image = makeImage();
  const changed = Buffer.from(image);
  // Block 5 rewritten, block 8 (zero) written, block 9 zeroed.
  randomBytes(BLOCK).copy(changed, 5 * BLOCK);
  randomBytes(BLOCK).copy(changed, 8 * BLOCK);
  changed.fill(0, 9 * BLOCK, 10 * BLOCK);
  const imagePath = join(work, 'disk.img');
  const changedPath = join(work, 'disk-2.img');
  writeFileSync(imagePath, image);
  writeFileSync(changedPath, changed);
  let parent: { snapshotId: string };
  let child: { snapshotId: string; parentSnapshotId: string };
  let ebs: EBSClient;

  it('lists every written block of a CLI-made snapshot and downloads each one byte for byte, 64 at a time', async () => {
    const volumeId = (await json('demo', REGION, 'volume', 'create', '--name', 'disk', '--size', '48MiB'))
      .volumeId;
    parent = await json('demo', REGION, 'snapshot', 'create', '--volume', volumeId, '--file', imagePath);
    child = await json('demo', REGION, 'snapshot', 'create', '--volume', volumeId, '--file', changedPath);
    expect(child.parentSnapshotId).toBe(parent.snapshotId);
    ebs = await ebsClientOf('demo');

    const { blocks, pages } = await listAll(ebs, parent.snapshotId);
    const written = Array.from({ length: BLOCKS }, (_, i) => i).filter((i) => !isZero(blockOf(image, i)));
    expect(blocks.map((b) => b.BlockIndex)).toEqual(written);
    expect(pages).toBe(1);
    const limit = pLimit(64);
    await Promise.all(
      blocks.map((block) =>
        limit(async () => {
          const answer = await ebs.send(
            new GetSnapshotBlockCommand({
              SnapshotId: parent.snapshotId,
              BlockIndex: block.BlockIndex,
              BlockToken: block.BlockToken,
            }),
          );
          const bytes = Buffer.from((await answer.BlockData?.transformToByteArray()) ?? []);
          const expected = blockOf(image, block.BlockIndex);
          expect(answer.DataLength).toBe(BLOCK);
          expect(answer.ChecksumAlgorithm).toBe('SHA256');
          expect(answer.Checksum).toBe(createHash('sha256').update(expected).digest('base64'));
          expect(bytes.equals(expected)).toBe(true);
        }),
      ),
    );
  });

  it('names exactly the blocks the CLI-made child changed against its parent', async () => {
    const answer = await ebs.send(
      new ListChangedBlocksCommand({
        FirstSnapshotId: parent.snapshotId,
        SecondSnapshotId: child.snapshotId,
      }),
    );
    expect(answer).toMatchObject({ VolumeSize: 1, BlockSize: BLOCK });
    expect(answer.NextToken).toBeUndefined();
    const changes = (answer.ChangedBlocks ?? []).map((c) => [
      c.BlockIndex,
      Boolean(c.FirstBlockToken),
      Boolean(c.SecondBlockToken),
    ]);
    expect(changes).toEqual([
      [5, true, true],
      [8, false, true],
      [9, true, false],
    ]);
    const five = answer.ChangedBlocks?.[0];
    const read = async (SnapshotId: string, BlockToken: string | undefined) =>
      Buffer.from(
        (await (
          await ebs.send(new GetSnapshotBlockCommand({ SnapshotId, BlockIndex: 5, BlockToken }))
        ).BlockData?.transformToByteArray()) ?? [],
      );
    expect((await read(parent.snapshotId, five?.FirstBlockToken)).equals(blockOf(image, 5))).toBe(true);
    expect((await read(child.snapshotId, five?.SecondBlockToken)).equals(blockOf(changed, 5))).toBe(true);
  });

  it('answers the errors the SDK knows: another account’s snapshot is not found, a forged token is invalid', async () => {
    const stranger = await ebsClientOf('demo-b');
    await expect(
      stranger.send(new ListSnapshotBlocksCommand({ SnapshotId: parent.snapshotId })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    const [first] = (await listAll(ebs, parent.snapshotId)).blocks;
    const forged = Buffer.from(first?.BlockToken ?? '', 'base64');
    forged[8] = (forged[8] ?? 0) ^ 1;
    const refused = await ebs
      .send(
        new GetSnapshotBlockCommand({
          SnapshotId: parent.snapshotId,
          BlockIndex: first?.BlockIndex,
          BlockToken: forged.toString('base64'),
        }),
      )
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ValidationException);
    expect(refused).toMatchObject({ Reason: 'INVALID_BLOCK_TOKEN', $metadata: { httpStatusCode: 400 } });
  });
});
