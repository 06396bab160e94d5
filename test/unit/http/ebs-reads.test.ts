import { randomBytes } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { BLOCK_SIZE, blockHash } from '../../../lib/core/format/blocks.ts';
import { decodeManifest } from '../../../lib/core/format/manifest.ts';
import type { Caller } from '../../../lib/core/identity/identity.ts';
import { ObjectLayout } from '../../../lib/core/ports/objects.ts';
import type { Snapshot } from '../../../lib/core/snapshots/snapshots.ts';
import { READ_ROUTE_KEYS, readRoutesOver } from '../../../lib/http/ebs/reads.ts';
import type { HttpLambda } from '../../../lib/http/stack.ts';
import { directReads } from '../../../lib/wiring/direct.ts';
import {
  answerOf,
  type EbsRequest,
  keysAuthenticator,
  signedEbsEvent,
  type TestSigV4Key,
  testSigV4Key,
} from '../../support/ebs-events.ts';
import { lambdaContext } from '../../support/events.ts';
import { type MemoryRegion, memoryRegion } from '../../support/memory-region.ts';
import { writeSnapshot } from '../../support/writes.ts';

const DAY = 24 * 3600;

let region: MemoryRegion;
let owner: Caller;
let grantee: Caller;
let stranger: Caller;
let keys: Record<'owner' | 'grantee' | 'stranger', TestSigV4Key>;
let routes: Record<string, HttpLambda>;

beforeAll(() => {
  // awsHandler reads its region from the container's configuration.
  vi.stubEnv('VOLSNAP_REGION', 'eu-west-1');
  vi.stubEnv('VOLSNAP_BUCKET', 'region-bucket');
  vi.stubEnv('VOLSNAP_TABLE', 'region-table');
});

beforeEach(async () => {
  region = memoryRegion('eu-west-1');
  [owner, grantee, stranger] = await Promise.all([
    region.account('a-co'),
    region.account('b-co'),
    region.account('c-co'),
  ]);
  keys = { owner: testSigV4Key(owner), grantee: testSigV4Key(grantee), stranger: testSigV4Key(stranger) };
  routes = readRoutesOver(() => region.region.get(directReads), {
    authenticate: keysAuthenticator(Object.values(keys), () => region.clock.now()),
    limiter: null,
  });
});

/** A block whose bytes start with `label` (the rest zero: it compresses). */
function labelled(label: string): Buffer {
  const block = Buffer.alloc(BLOCK_SIZE);
  block.write(label);
  return block;
}

/** A volume image of `count` blocks: `content(i)` for each, undefined for a zero block. */
function image(count: number, content: (i: number) => Buffer | undefined): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => content(i) ?? Buffer.alloc(BLOCK_SIZE)));
}

/** A completed snapshot of `data`, written as the CLI writes one (segments, manifest, completion). */
async function cliSnapshot(
  caller: Caller,
  volumeId: string,
  data: Buffer,
  segmentTargetSize?: number,
): Promise<Snapshot> {
  const pending = await region.snapshots.create(caller, { volumeId });
  return (await writeSnapshot(region, caller, pending, data, segmentTargetSize ? { segmentTargetSize } : {}))
    .snapshot;
}

async function volumeOf(caller: Caller, blocks: number) {
  return region.volumes.register(caller, { name: `disk-${blocks}`, sizeBytes: blocks * BLOCK_SIZE });
}

async function call(request: EbsRequest, key: TestSigV4Key = keys.owner) {
  const handler = routes[request.routeKey];
  if (!handler) throw new Error(`no route ${request.routeKey}`);
  return answerOf(await handler(await signedEbsEvent(request, key, region.clock.now()), lambdaContext));
}

const list = (snapshotId: string, query: Record<string, string | undefined> = {}, key?: TestSigV4Key) =>
  call({ routeKey: READ_ROUTE_KEYS.listSnapshotBlocks, pathParameters: { snapshotId }, query }, key);

const getBlock = (
  snapshotId: string,
  blockIndex: number,
  blockToken: string | undefined,
  key?: TestSigV4Key,
) =>
  call(
    {
      routeKey: READ_ROUTE_KEYS.getSnapshotBlock,
      pathParameters: { snapshotId, blockIndex: String(blockIndex) },
      query: { blockToken },
    },
    key,
  );

const changed = (
  secondSnapshotId: string,
  query: Record<string, string | undefined> = {},
  key?: TestSigV4Key,
) => call({ routeKey: READ_ROUTE_KEYS.listChangedBlocks, pathParameters: { secondSnapshotId }, query }, key);

/** Every page of a listing, following NextToken. */
async function allPages(next: (pageToken?: string) => ReturnType<typeof call>) {
  const pages = [];
  let token: string | undefined;
  do {
    const page = await next(token);
    expect(page.status).toBe(200);
    pages.push(page.json);
    token = page.json.NextToken;
  } while (token);
  return pages;
}

function expectEbsError(
  answer: Awaited<ReturnType<typeof call>>,
  status: number,
  type: string,
  reason?: string,
) {
  expect({
    status: answer.status,
    type: answer.headers['x-amzn-errortype'],
    body: answer.json,
  }).toMatchObject({
    status,
    type,
    body: { __type: type, ...(reason ? { Reason: reason } : {}) },
  });
  expect(answer.bytes).toBeUndefined();
}

describe('ListSnapshotBlocks', () => {
  it('lists only the written blocks of a CLI-made snapshot, in index order, with expiry, size in GiB and block size', async () => {
    const volume = await volumeOf(owner, 12);
    const data = image(12, (i) => ([1, 2, 5, 11].includes(i) ? labelled(`block ${i}`) : undefined));
    const snapshot = await cliSnapshot(owner, volume.volumeId, data);
    const answer = await list(snapshot.snapshotId);
    expect(answer.status).toBe(200);
    expect(answer.json.Blocks.map((b: { BlockIndex: number }) => b.BlockIndex)).toEqual([1, 2, 5, 11]);
    expect(answer.json).toMatchObject({
      ExpiryTime: Math.floor(region.clock.now() / 1000) + 7 * DAY,
      VolumeSize: 1,
      BlockSize: 524288,
    });
    expect(answer.json.NextToken).toBeUndefined();
    for (const block of answer.json.Blocks) {
      expect(block.BlockToken).toMatch(/^[A-Za-z0-9+/=]{1,256}$/);
    }
  });

  it('pages by MaxResults with a NextToken on every page but the last; StartingBlockIndex starts mid-volume and is ignored with a NextToken', async () => {
    const volume = await volumeOf(owner, 260);
    const snapshot = await cliSnapshot(
      owner,
      volume.volumeId,
      image(260, (i) => (i % 13 === 7 ? undefined : labelled(`b${i}`))),
    );
    const written = Array.from({ length: 260 }, (_, i) => i).filter((i) => i % 13 !== 7);
    const pages = await allPages((pageToken) =>
      list(snapshot.snapshotId, {
        maxResults: '100',
        pageToken,
        startingBlockIndex: pageToken ? '250' : undefined,
      }),
    );
    expect(pages.map((p) => p.Blocks.length)).toEqual([100, 100, written.length - 200]);
    expect(pages.flatMap((p) => p.Blocks.map((b: { BlockIndex: number }) => b.BlockIndex))).toEqual(written);
    for (const page of pages) expect(page).toMatchObject({ VolumeSize: 1, BlockSize: 524288 });

    const fromMiddle = await list(snapshot.snapshotId, { startingBlockIndex: '200' });
    expect(fromMiddle.json.Blocks.map((b: { BlockIndex: number }) => b.BlockIndex)).toEqual(
      written.filter((i) => i >= 200),
    );
    const pastTheEnd = await list(snapshot.snapshotId, { startingBlockIndex: '5000' });
    expect(pastTheEnd.json).toMatchObject({ Blocks: [], VolumeSize: 1, BlockSize: 524288 });
    expect(pastTheEnd.json.NextToken).toBeUndefined();
  });

  it('answers at least 100 blocks for a MaxResults below 100, and refuses one above 10000 or not a number', async () => {
    const volume = await volumeOf(owner, 150);
    const snapshot = await cliSnapshot(
      owner,
      volume.volumeId,
      image(150, (i) => labelled(`b${i}`)),
    );
    const small = await list(snapshot.snapshotId, { maxResults: '5' });
    expect(small.json.Blocks).toHaveLength(100);
    expect(small.json.NextToken).toEqual(expect.any(String));
    const exact = await list(snapshot.snapshotId, { maxResults: '150' });
    expect(exact.json.Blocks).toHaveLength(150);
    expect(exact.json.NextToken).toBeUndefined();
    expectEbsError(
      await list(snapshot.snapshotId, { maxResults: '10001' }),
      400,
      'ValidationException',
      'INVALID_PARAMETER_VALUE',
    );
    expectEbsError(
      await list(snapshot.snapshotId, { maxResults: 'many' }),
      400,
      'ValidationException',
      'INVALID_PARAMETER_VALUE',
    );
    expectEbsError(
      await list(snapshot.snapshotId, { startingBlockIndex: '-1' }),
      400,
      'ValidationException',
      'INVALID_PARAMETER_VALUE',
    );
  });

  it('refuses a forged, expired or another listing’s NextToken with INVALID_PAGE_TOKEN', async () => {
    const volume = await volumeOf(owner, 150);
    const snapshot = await cliSnapshot(
      owner,
      volume.volumeId,
      image(150, (i) => labelled(`b${i}`)),
    );
    const other = await cliSnapshot(
      owner,
      volume.volumeId,
      image(150, (i) => labelled(`c${i}`)),
    );
    const token: string = (await list(snapshot.snapshotId, { maxResults: '100' })).json.NextToken;
    const forged = Buffer.from(token, 'base64');
    forged.writeUInt32LE(3, 1); // another next index, the MAC unchanged
    const invalid = (answer: Awaited<ReturnType<typeof call>>) =>
      expectEbsError(answer, 400, 'ValidationException', 'INVALID_PAGE_TOKEN');
    invalid(await list(snapshot.snapshotId, { pageToken: forged.toString('base64') }));
    invalid(await list(snapshot.snapshotId, { pageToken: 'bm90IGEgdG9rZW4=' }));
    invalid(await list(other.snapshotId, { pageToken: token }));
    invalid(await changed(other.snapshotId, { firstSnapshotId: snapshot.snapshotId, pageToken: token }));
    expect((await list(snapshot.snapshotId, { pageToken: token })).json.Blocks).toHaveLength(50);
    region.clock.advance(3600 * 1000 + 1000);
    invalid(await list(snapshot.snapshotId, { pageToken: token }));
  });
});

describe('GetSnapshotBlock', () => {
  it('answers each listed block’s bytes with its length and base64 SHA-256, a token of an earlier page still valid', async () => {
    const volume = await volumeOf(owner, 240);
    const data = image(240, (i) =>
      i % 2 ? labelled(`odd ${i}`) : i === 0 ? randomBytes(BLOCK_SIZE) : undefined,
    );
    const snapshot = await cliSnapshot(owner, volume.volumeId, data, 4 * BLOCK_SIZE);
    const pages = await allPages((pageToken) => list(snapshot.snapshotId, { maxResults: '100', pageToken }));
    expect(pages.length).toBeGreaterThan(1);
    const blocks = pages.flatMap((p) => p.Blocks) as { BlockIndex: number; BlockToken: string }[];
    for (const { BlockIndex, BlockToken } of [blocks[0], blocks[1], blocks.at(-1)] as typeof blocks) {
      const answer = await getBlock(snapshot.snapshotId, BlockIndex, BlockToken);
      const expected = data.subarray(BlockIndex * BLOCK_SIZE, (BlockIndex + 1) * BLOCK_SIZE);
      expect(answer.status).toBe(200);
      expect(answer.bytes?.equals(expected)).toBe(true);
      expect(answer.headers).toMatchObject({
        'x-amz-data-length': '524288',
        'x-amz-checksum': blockHash(expected).toString('base64'),
        'x-amz-checksum-algorithm': 'SHA256',
        'content-type': 'application/octet-stream',
      });
    }
  });

  it('refuses a token of another index or snapshot, a forged, an expired or a missing token', async () => {
    const volume = await volumeOf(owner, 4);
    const first = await cliSnapshot(
      owner,
      volume.volumeId,
      image(4, (i) => labelled(`a${i}`)),
    );
    const second = await cliSnapshot(
      owner,
      volume.volumeId,
      image(4, (i) => labelled(`b${i}`)),
    );
    const [zero, one] = (await list(first.snapshotId)).json.Blocks as { BlockToken: string }[];
    const invalid = (answer: Awaited<ReturnType<typeof call>>) =>
      expectEbsError(answer, 400, 'ValidationException', 'INVALID_BLOCK_TOKEN');
    invalid(await getBlock(first.snapshotId, 1, zero?.BlockToken));
    invalid(await getBlock(second.snapshotId, 0, zero?.BlockToken));
    const forged = Buffer.from(one?.BlockToken ?? '', 'base64');
    forged[10] = (forged[10] ?? 0) ^ 1; // a byte of the hash
    invalid(await getBlock(first.snapshotId, 1, forged.toString('base64')));
    invalid(await getBlock(first.snapshotId, 1, 'AAAA'));
    expectEbsError(
      await getBlock(first.snapshotId, 1, undefined),
      400,
      'ValidationException',
      'INVALID_PARAMETER_VALUE',
    );
    expect((await getBlock(first.snapshotId, 1, one?.BlockToken)).status).toBe(200);
    region.clock.advance(7 * DAY * 1000 - 1000);
    expect((await getBlock(first.snapshotId, 1, one?.BlockToken)).status).toBe(200);
    region.clock.advance(2000);
    invalid(await getBlock(first.snapshotId, 1, one?.BlockToken));
  });

  it('answers a 500, never wrong bytes, when the stored block does not match its SHA-256', async () => {
    const volume = await volumeOf(owner, 2);
    const snapshot = await cliSnapshot(
      owner,
      volume.volumeId,
      image(2, () => randomBytes(BLOCK_SIZE)),
    );
    const [block] = (await list(snapshot.snapshotId)).json.Blocks as { BlockToken: string }[];
    const manifest = decodeManifest(
      (await region.ports.objects.get(ObjectLayout.manifest(snapshot.snapshotId))) ?? Buffer.alloc(0),
    );
    const entry = manifest.entries[0];
    if (!entry) throw new Error('no entry');
    const key = ObjectLayout.segment(owner.accountId, entry.segmentId);
    const segment = Buffer.from((await region.ports.objects.get(key)) ?? Buffer.alloc(0));
    segment[entry.offset + 1000] = (segment[entry.offset + 1000] ?? 0) ^ 0xff; // the block is stored raw
    await region.ports.objects.put(key, segment);
    const answer = await getBlock(snapshot.snapshotId, 0, block?.BlockToken);
    expectEbsError(answer, 500, 'InternalServerException');
    expect(answer.json.Message).not.toContain(entry.segmentId);
  });
});

describe('who may read', () => {
  it('reads a snapshot shared with the caller’s account and a public one; another account’s private one is a 404', async () => {
    const volume = await volumeOf(owner, 2);
    const data = image(2, (i) => labelled(`x${i}`));
    const shared = await cliSnapshot(owner, volume.volumeId, data);
    const published = await cliSnapshot(owner, volume.volumeId, data);
    const secret = await cliSnapshot(owner, volume.volumeId, data);
    await region.snapshots.share(owner, shared.snapshotId, grantee.accountId);
    await region.snapshots.publish(owner, published.snapshotId);
    const token = (await list(secret.snapshotId)).json.Blocks[0].BlockToken;

    const viaGrant = await list(shared.snapshotId, {}, keys.grantee);
    expect(viaGrant.json.Blocks).toHaveLength(2);
    expect(
      (await getBlock(shared.snapshotId, 0, viaGrant.json.Blocks[0].BlockToken, keys.grantee)).bytes,
    ).toEqual(data.subarray(0, BLOCK_SIZE));
    expect((await list(published.snapshotId, {}, keys.stranger)).json.Blocks).toHaveLength(2);
    expectEbsError(
      await list(shared.snapshotId, {}, keys.stranger),
      404,
      'ResourceNotFoundException',
      'SNAPSHOT_NOT_FOUND',
    );
    expectEbsError(
      await list(secret.snapshotId, {}, keys.grantee),
      404,
      'ResourceNotFoundException',
      'SNAPSHOT_NOT_FOUND',
    );
    // A block token is no capability: the snapshot must be readable by the caller too.
    expectEbsError(
      await getBlock(secret.snapshotId, 0, token, keys.grantee),
      404,
      'ResourceNotFoundException',
      'SNAPSHOT_NOT_FOUND',
    );
    expectEbsError(
      await changed(secret.snapshotId, { firstSnapshotId: shared.snapshotId }, keys.grantee),
      404,
      'ResourceNotFoundException',
      'SNAPSHOT_NOT_FOUND',
    );
    expectEbsError(
      await list('snap-0000000000000000'),
      404,
      'ResourceNotFoundException',
      'SNAPSHOT_NOT_FOUND',
    );
  });

  it('cannot read a pending snapshot', async () => {
    const volume = await volumeOf(owner, 2);
    const pending = await region.snapshots.create(owner, { volumeId: volume.volumeId });
    expectEbsError(await list(pending.snapshotId), 404, 'ResourceNotFoundException', 'SNAPSHOT_NOT_FOUND');
    expectEbsError(await changed(pending.snapshotId), 404, 'ResourceNotFoundException', 'SNAPSHOT_NOT_FOUND');
  });

  it('refuses a request signed with a wrong secret before reading anything', async () => {
    const volume = await volumeOf(owner, 2);
    const snapshot = await cliSnapshot(
      owner,
      volume.volumeId,
      image(2, (i) => labelled(`x${i}`)),
    );
    const wrong = { ...keys.owner, secretAccessKey: 'x'.repeat(40) };
    expectEbsError(await list(snapshot.snapshotId, {}, wrong), 403, 'InvalidSignatureException');
  });
});

describe('ListChangedBlocks', () => {
  it('names exactly the blocks a CLI-made child changed against its parent, FirstBlockToken absent where the parent had none', async () => {
    const volume = await volumeOf(owner, 10);
    const parentData = image(10, (i) => ([0, 1, 2, 5, 8].includes(i) ? labelled(`p${i}`) : undefined));
    const parent = await cliSnapshot(owner, volume.volumeId, parentData);
    // Block 1 rewritten, 3 written for the first time, 5 zeroed, 8 rewritten with the same bytes.
    const childData = image(10, (i) =>
      i === 1
        ? labelled('c1')
        : i === 3
          ? labelled('c3')
          : i === 5
            ? undefined
            : [0, 2, 8].includes(i)
              ? labelled(`p${i}`)
              : undefined,
    );
    const child = await cliSnapshot(owner, volume.volumeId, childData);
    expect(child.parentSnapshotId).toBe(parent.snapshotId);
    const answer = await changed(child.snapshotId, { firstSnapshotId: parent.snapshotId });
    expect(answer.status).toBe(200);
    const blocks = answer.json.ChangedBlocks as {
      BlockIndex: number;
      FirstBlockToken?: string;
      SecondBlockToken?: string;
    }[];
    expect(
      blocks.map((b) => [b.BlockIndex, Boolean(b.FirstBlockToken), Boolean(b.SecondBlockToken)]),
    ).toEqual([
      [1, true, true],
      [3, false, true],
      [5, true, false],
    ]);
    expect(answer.json).toMatchObject({
      VolumeSize: 1,
      BlockSize: 524288,
      ExpiryTime: Math.floor(region.clock.now() / 1000) + 7 * DAY,
    });
    expect(answer.json.NextToken).toBeUndefined();
    // Each token reads its own snapshot's block.
    const [one] = blocks;
    expect((await getBlock(parent.snapshotId, 1, one?.FirstBlockToken)).bytes).toEqual(labelled('p1'));
    expect((await getBlock(child.snapshotId, 1, one?.SecondBlockToken)).bytes).toEqual(labelled('c1'));
    expectEbsError(
      await getBlock(child.snapshotId, 1, one?.FirstBlockToken),
      400,
      'ValidationException',
      'INVALID_BLOCK_TOKEN',
    );
    // Without a first snapshot, every block of the second.
    const alone = await changed(child.snapshotId);
    expect(alone.json.ChangedBlocks.map((b: { BlockIndex: number }) => b.BlockIndex)).toEqual([
      0, 1, 2, 3, 8,
    ]);
  });

  it('answers empty pages with a NextToken while unchanged blocks are walked, and StartingBlockIndex starts mid-volume', async () => {
    const volume = await volumeOf(owner, 460);
    const parentData = image(460, (i) => labelled(`p${i}`));
    const parent = await cliSnapshot(owner, volume.volumeId, parentData);
    const childData = Buffer.from(parentData);
    labelled('changed 450').copy(childData, 450 * BLOCK_SIZE);
    labelled('changed 20').copy(childData, 20 * BLOCK_SIZE);
    const child = await cliSnapshot(owner, volume.volumeId, childData);
    const pages = await allPages((pageToken) =>
      changed(child.snapshotId, { firstSnapshotId: parent.snapshotId, maxResults: '100', pageToken }),
    );
    // MaxResults 100: a page looks at no more than 400 blocks.
    expect(pages.map((p) => p.ChangedBlocks.map((b: { BlockIndex: number }) => b.BlockIndex))).toEqual([
      [20],
      [450],
    ]);
    const fromMiddle = await allPages((pageToken) =>
      changed(child.snapshotId, {
        firstSnapshotId: parent.snapshotId,
        maxResults: '100',
        startingBlockIndex: '30',
        pageToken,
      }),
    );
    expect(fromMiddle.map((p) => p.ChangedBlocks.length)).toEqual([0, 1]);
    expect(fromMiddle[0]?.NextToken).toEqual(expect.any(String));
    expect(fromMiddle[1]?.ChangedBlocks[0].BlockIndex).toBe(450);
  });

  it('refuses snapshots of different volumes with UNRELATED_SNAPSHOTS', async () => {
    const [a, b] = await Promise.all([
      volumeOf(owner, 2),
      region.volumes.register(owner, { name: 'other', sizeBytes: 2 * BLOCK_SIZE }),
    ]);
    const data = image(2, (i) => labelled(`x${i}`));
    const first = await cliSnapshot(owner, a.volumeId, data);
    const second = await cliSnapshot(owner, b.volumeId, data);
    expectEbsError(
      await changed(second.snapshotId, { firstSnapshotId: first.snapshotId }),
      400,
      'ValidationException',
      'UNRELATED_SNAPSHOTS',
    );
  });
});
