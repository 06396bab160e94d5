import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createZstdCompressor } from '../../lib/adapters/zstd.ts';
import { ApiClient, ApiError, type SegmentRangeUrl } from '../../lib/client/api-client.ts';
import { decodeManifest, type Manifest, type ManifestEntry } from '../../lib/core/format/manifest.ts';
import { planReads, type SegmentRange } from '../../lib/core/format/restore-plan.ts';
import { readSegmentBlock, SEGMENT_FOOTER_SIZE } from '../../lib/core/format/segment.ts';
import { cliFor } from '../support/e2e-cli.ts';
import { type StartedCloud, startCloudProcess } from '../support/processes.ts';

const BLOCK = 512 * 1024;
const BLOCKS = 8;
const REGION = 'eu-west-1';
const SECRET = Buffer.from('SECRET-V1-do-not-share');
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-isolation-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-isolation-files-'));
const configPath = join(dataDir, 'config.json');
const { json } = cliFor(configPath);
const zstd = createZstdCompressor();
let cloud: StartedCloud;

/** The API as an account of the config file, with its own key: what any script of that account can do. */
function apiAs(account: string): ApiClient {
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  return new ApiClient({
    endpoint: config.regions[REGION].endpoint,
    apiKey: config.accounts[account].apiKey,
  });
}

/** A GET of a presigned URL, with the Range header given (or none). */
async function get(url: string, range?: SegmentRange): Promise<{ status: number; bytes: Buffer }> {
  const response = await fetch(
    url,
    range ? { headers: { range: `bytes=${range.start}-${range.end - 1}` } } : {},
  );
  return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()) };
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();
const extentOf = (e: ManifestEntry): SegmentRange => ({
  segmentId: e.segmentId,
  start: e.offset,
  end: e.offset + e.storedLength,
});

beforeAll(async () => {
  cloud = await startCloudProcess([
    '--fresh',
    '--port-base',
    'auto',
    '--regions',
    REGION,
    '--data-dir',
    dataDir,
  ]);
});
afterAll(async () => {
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

describe("a shared snapshot's reader gets the bytes of its blocks and of nothing else", () => {
  // demo (A) writes v1 with a secret in block 0, rewrites block 0, writes v2, and shares only v2 with demo-b (B).
  const v1Image = randomBytes(BLOCKS * BLOCK);
  SECRET.copy(v1Image, 0);
  const secretBlock = Buffer.from(v1Image.subarray(0, BLOCK));
  const v2Image = Buffer.from(v1Image);
  randomBytes(BLOCK).copy(v2Image, 0);
  Buffer.from('PUBLIC-V2').copy(v2Image, 0);
  let v2Id: string;
  let v2Manifest: Manifest;
  /** v1's segment, which v2 reuses for blocks 1-7 and which still holds the secret block. */
  let reused: { segmentId: string; size: number; indexOffset: number; secret: SegmentRange };
  /** Every URL B was given, with the range it was given for. */
  const granted: SegmentRangeUrl[] = [];

  it('lets B restore v2 byte for byte through the CLI', async () => {
    writeFileSync(join(work, 'v1.img'), v1Image);
    writeFileSync(join(work, 'v2.img'), v2Image);
    const volume = await json('demo', REGION, 'volume', 'create', '--name', 'secret-disk', '--size', '4MiB');
    const snapshotOf = async (file: string) =>
      await json(
        'demo',
        REGION,
        'snapshot',
        'create',
        '--volume',
        volume.volumeId,
        '--file',
        join(work, file),
      );
    const v1 = await snapshotOf('v1.img');
    const v2 = await snapshotOf('v2.img');
    expect(v2).toMatchObject({
      state: 'completed',
      parentSnapshotId: v1.snapshotId,
      stats: { newBlocks: 1, reusedBlocks: BLOCKS - 1 },
    });
    v2Id = v2.snapshotId;
    // Where the secret lies, as only A can tell from v1's manifest.
    const a = apiAs('demo');
    const v1Manifest = decodeManifest((await get((await a.manifestUrl(v1.snapshotId)).url)).bytes);
    const secretEntry = v1Manifest.entries.find((e) => e.blockIndex === 0) as ManifestEntry;
    const inSegment = v1Manifest.entries.filter((e) => e.segmentId === secretEntry.segmentId);
    expect(inSegment).toHaveLength(BLOCKS);
    reused = {
      segmentId: secretEntry.segmentId,
      size: v1Manifest.segments.get(secretEntry.segmentId) ?? 0,
      // The index follows the last block.
      indexOffset: Math.max(...inSegment.map((e) => e.offset + e.storedLength)),
      secret: extentOf(secretEntry),
    };
    await json('demo', REGION, 'snapshot', 'share', v2Id, 'demo-b');

    const target = join(work, 'restored-by-b.img');
    const report = await json('demo-b', REGION, 'snapshot', 'restore', v2Id, '--to', target);
    expect(report).toMatchObject({ snapshotId: v2Id, report: { blocks: BLOCKS, fetchedBlocks: BLOCKS } });
    expect(readFileSync(target).equals(v2Image)).toBe(true);
  });

  it("gives B URLs for v2's blocks only, none of which reads v1's block or its hash", async () => {
    const b = apiAs('demo-b');
    const manifestBytes = (await get((await b.manifestUrl(v2Id)).url)).bytes;
    v2Manifest = decodeManifest(manifestBytes);
    expect(v2Manifest.segments.has(reused.segmentId)).toBe(true);
    expect(
      v2Manifest.entries.some((e) => e.segmentId === reused.segmentId && e.offset === reused.secret.start),
    ).toBe(false);
    // Every range B may ask for: each block alone, and the runs a restore asks for.
    const asked: SegmentRange[] = [
      ...v2Manifest.entries.map(extentOf),
      ...planReads(v2Manifest, undefined, 0).map(({ segmentId, start, end }) => ({ segmentId, start, end })),
    ];
    const { ranges } = await b.segmentUrls(v2Id, asked);
    expect(ranges.map(({ segmentId, start, end }) => ({ segmentId, start, end }))).toEqual(asked);
    granted.push(...ranges);
    const downloads = [manifestBytes];
    for (const range of ranges) {
      const { status, bytes } = await get(range.url, range);
      expect(status).toBe(206);
      expect(bytes.length).toBe(range.end - range.start);
      downloads.push(bytes);
    }
    for (const bytes of downloads) {
      expect(bytes.includes(SECRET)).toBe(false);
      expect(bytes.includes(sha256(secretBlock))).toBe(false);
    }
    // What B decodes is v2's blocks, and none is v1's block 0.
    for (const [i, entry] of v2Manifest.entries.entries()) {
      const plain = Buffer.from(
        readSegmentBlock(zstd, { ...entry, plainLength: BLOCK }, downloads[i + 1] as Buffer),
      );
      expect(plain.equals(secretBlock)).toBe(false);
      expect(plain.equals(v2Image.subarray(entry.blockIndex * BLOCK, (entry.blockIndex + 1) * BLOCK))).toBe(
        true,
      );
    }
  });

  it('refuses B every other range: the secret block, the whole segment, its index and footer, a run past a shared block', async () => {
    const b = apiAs('demo-b');
    const next = v2Manifest.entries.find(
      (e) => e.segmentId === reused.segmentId && e.offset === reused.secret.end,
    ) as ManifestEntry;
    const attempts: [string, SegmentRange][] = [
      ['the secret block', reused.secret],
      ['the whole segment', { segmentId: reused.segmentId, start: 0, end: reused.size }],
      [
        'the index',
        { segmentId: reused.segmentId, start: reused.indexOffset, end: reused.size - SEGMENT_FOOTER_SIZE },
      ],
      [
        'the blocks and the index',
        { segmentId: reused.segmentId, start: next.offset, end: reused.indexOffset + 1 },
      ],
      [
        'the footer',
        { segmentId: reused.segmentId, start: reused.size - SEGMENT_FOOTER_SIZE, end: reused.size },
      ],
      [
        'the secret block and the shared one after it',
        { ...reused.secret, end: next.offset + next.storedLength },
      ],
      ['half of a shared block', { segmentId: reused.segmentId, start: next.offset, end: next.offset + 100 }],
    ];
    for (const [what, range] of attempts) {
      const refusal = await b.segmentUrls(v2Id, [range]).catch((e) => e);
      expect(refusal, what).toBeInstanceOf(ApiError);
      expect(refusal, what).toMatchObject({ status: 400, code: 'snapshot.rangeNotShared' });
    }
    // The former whole-segment form is gone for everyone.
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    const old = await fetch(`${config.regions[REGION].endpoint}/v1/snapshots/${v2Id}/segment-urls`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${config.accounts['demo-b'].apiKey}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ segmentIds: [reused.segmentId] }),
    });
    expect(old.status).toBe(400);
    // The owner still reads any range of its own segment.
    const owner = await apiAs('demo').segmentUrls(v2Id, [
      { segmentId: reused.segmentId, start: 0, end: reused.size },
    ]);
    expect(owner.ranges).toHaveLength(1);
  });

  // Needs a local S3 that verifies SigV4 signatures and the headers they sign (s3rver checks none).
  it('makes S3 refuse a URL given for one range when it is fetched with another Range, or none', async () => {
    const url = granted.find(
      (g) => g.segmentId === reused.segmentId && g.start === reused.secret.end,
    ) as SegmentRangeUrl;
    expect((await get(url.url, url)).status).toBe(206);
    expect((await get(url.url)).status).toBe(403);
    expect((await get(url.url, { ...url, start: 0 })).status).toBe(403);
    expect((await get(url.url, { ...url, start: 0, end: reused.size })).status).toBe(403);
  });
});
