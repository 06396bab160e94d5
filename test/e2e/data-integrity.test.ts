import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createZstdCompressor } from '../../lib/adapters/zstd.ts';
import { ApiClient } from '../../lib/client/api-client.ts';
import { putObject } from '../../lib/client/transfer.ts';
import { BLOCK_SIZE } from '../../lib/core/format/blocks.ts';
import { encodeManifest } from '../../lib/core/format/manifest.ts';
import { SegmentBuilder } from '../../lib/core/format/segment.ts';
import { cli, type StartedCloud, startCloudProcess } from '../support/processes.ts';

/**
 * Segments and manifests are written once, and `completed` means the service checked the data
 * (issue 14, points 2 and 3): through the CLI and the API against the local cloud.
 */
const SIZE = 8 * 1024 * 1024;
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-integrity-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-integrity-files-'));
const configPath = join(dataDir, 'config.json');
const zstd = createZstdCompressor();
let cloud: StartedCloud;
let api: ApiClient;
let accountId: string;
const run = (...args: string[]) => cli(['--config', configPath, ...args]);
const json = async (...args: string[]) => {
  const result = await run('--json', ...args);
  if (result.code !== 0) throw new Error(`volsnap ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
};

beforeAll(async () => {
  // --verbose: the log then shows which function verified each part (a worker, for the large upload).
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir, '--verbose']);
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  accountId = config.accounts.demo.accountId;
  api = new ApiClient({
    endpoint: config.regions['eu-west-1'].endpoint,
    apiKey: config.accounts.demo.apiKey,
  });
});
afterAll(async () => {
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

/** A PUT as anyone holding the URL would send it, with or without `If-None-Match: *`. */
function rawPut(url: string, body: Buffer, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'PUT', headers: { 'content-length': String(body.length), ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The size of a segment object as s3rver stores it on disk. */
function storedSize(segmentId: string): number | undefined {
  const walk = (dir: string): number | undefined => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        const found = walk(path);
        if (found !== undefined) return found;
      } else if (entry.name === `${segmentId}._S3rver_object` && path.includes(`segments/${accountId}`))
        return statSync(path).size;
    }
    return undefined;
  };
  return walk(join(dataDir, 'eu-west-1', 's3'));
}

/** One segment of the given blocks, and the manifest entries that place them at `indices`. */
function segmentOf(blocks: Buffer[], indices: number[], segmentId: string) {
  const builder = new SegmentBuilder(zstd);
  const entries = blocks.map((block, i) => ({
    blockIndex: indices[i] ?? i,
    segmentId,
    ...builder.add(block),
  }));
  return { object: Buffer.from(builder.seal()), entries };
}

describe('segments are written once', () => {
  it('refuses a re-PUT through a URL issued while the snapshot was written; it still restores byte for byte', async () => {
    const volumeId = (await json('volume', 'create', '--name', 'once', '--size', '8MiB')).volumeId;
    // A CLI snapshot first: the one written through the API below inherits nothing it relies on.
    const disk = randomBytes(SIZE);
    const diskPath = join(work, 'once.img');
    writeFileSync(diskPath, disk);
    expect((await json('snapshot', 'create', '--volume', volumeId, '--file', diskPath)).state).toBe(
      'completed',
    );

    // As the owner, through the API: a pending snapshot, written like the CLI writes one.
    const changed = randomBytes(SIZE);
    const pending = await api.createSnapshot({ volumeId });
    const { segments } = await api.uploadUrls(pending.snapshotId, 2);
    const [used, unused] = segments;
    if (!used || !unused) throw new Error('the service issued fewer URLs than asked');
    const blocks = Array.from({ length: SIZE / BLOCK_SIZE }, (_, i) =>
      changed.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE),
    );
    const { object, entries } = segmentOf(
      blocks,
      blocks.map((_, i) => i),
      used.segmentId,
    );
    await putObject(used.url, object, { ifNoneMatch: true });
    // Junk to an issued URL the manifest will not name (no quota would ever count it).
    expect(await rawPut(unused.url, randomBytes(1024 * 1024), { 'if-none-match': '*' })).toBe(200);
    const target = await api.uploadUrls(pending.snapshotId, 0, { manifest: true });
    await putObject(
      target.manifestUrl ?? '',
      encodeManifest({
        volumeSize: SIZE,
        blockSize: BLOCK_SIZE,
        segments: new Map([[used.segmentId, object.length]]),
        entries,
      }),
      { ifNoneMatch: true },
    );
    const completed = await api.completeSnapshot(pending.snapshotId, target.manifestUploadId);
    expect(completed.state).toBe('completed');
    // The unused key holds an empty tombstone: the junk is gone at once.
    expect(storedSize(unused.segmentId)).toBe(0);

    // Reusing the URLs issued while it was pending: refused (412 with the header the URL signs,
    // 403 without it: the signature covers If-None-Match). Needs the local S3 to enforce both.
    const junk = randomBytes(object.length);
    expect([403, 412]).toContain(await rawPut(used.url, junk, { 'if-none-match': '*' }));
    expect([403, 412]).toContain(await rawPut(used.url, junk));
    expect([403, 412]).toContain(await rawPut(unused.url, junk, { 'if-none-match': '*' }));
    expect([403, 412]).toContain(await rawPut(target.manifestUrl ?? '', junk, { 'if-none-match': '*' }));
    expect(storedSize(used.segmentId)).toBe(object.length);

    const restored = join(work, 'once-restored.img');
    const result = await run('snapshot', 'restore', completed.snapshotId, '--to', restored);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(readFileSync(restored).equals(changed)).toBe(true);
  });
});

describe('completed means the service checked the data', () => {
  it('has workers check the segments of a large upload as they land, while the CLI uploads the rest', async () => {
    const size = 320 * 1024 * 1024;
    const volumeId = (await json('volume', 'create', '--name', 'large', '--size', '320MiB')).volumeId;
    const diskPath = join(work, 'large.img');
    writeFileSync(diskPath, randomBytes(size));
    const created = await json('snapshot', 'create', '--volume', volumeId, '--file', diskPath);
    expect(created).toMatchObject({
      state: 'completed',
      progress: 100,
      stats: { newBlocks: size / BLOCK_SIZE },
    });
    expect(created).not.toHaveProperty('verification');
    // The CLI reported segments as they landed, and a worker read and hashed them before completion.
    const checkedByWorkers = new RegExp(
      `snapshot\\.checkSegment[^\\n]*${created.snapshotId}[^\\n]*"checked"`,
    );
    expect(cloud.output()).toMatch(checkedByWorkers);
    const restored = join(work, 'large-restored.img');
    expect((await run('snapshot', 'restore', created.snapshotId, '--to', restored)).code).toBe(0);
    expect(readFileSync(restored).equals(readFileSync(diskPath))).toBe(true);
  }, 240_000);

  it('fails a lying manifest (a block hash that is not its content) and never uses it as a parent', async () => {
    const volumeId = (await json('volume', 'create', '--name', 'liar', '--size', '8MiB')).volumeId;
    const pending = await api.createSnapshot({ volumeId });
    expect(pending.parentSnapshotId).toBeUndefined();
    const { segments } = await api.uploadUrls(pending.snapshotId, 1);
    const segment = segments[0];
    if (!segment) throw new Error('no segment URL');
    const { object, entries } = segmentOf(
      [randomBytes(BLOCK_SIZE), randomBytes(BLOCK_SIZE)],
      [0, 3],
      segment.segmentId,
    );
    await putObject(segment.url, object, { ifNoneMatch: true });
    const lie = entries.map((e) => (e.blockIndex === 3 ? { ...e, hash: randomBytes(32) } : e));
    const target = await api.uploadUrls(pending.snapshotId, 0, { manifest: true });
    await putObject(
      target.manifestUrl ?? '',
      encodeManifest({
        volumeSize: SIZE,
        blockSize: BLOCK_SIZE,
        segments: new Map([[segment.segmentId, object.length]]),
        entries: lie,
      }),
      { ifNoneMatch: true },
    );
    await expect(api.completeSnapshot(pending.snapshotId, target.manifestUploadId)).rejects.toMatchObject({
      status: 400,
      code: 'snapshot.manifestInvalid',
    });
    const failed = await api.getSnapshot(pending.snapshotId);
    expect(failed.state).toBe('error');
    expect(failed.stateReason).toContain('Block 3');
    expect(failed.stateReason).toContain(segment.segmentId);
    // Completing again does not revive it.
    await expect(api.completeSnapshot(pending.snapshotId, target.manifestUploadId)).rejects.toMatchObject({
      code: 'snapshot.invalidState',
    });

    const refused = await run('snapshot', 'restore', pending.snapshotId, '--to', join(work, 'liar.img'));
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('error');

    // The next CLI snapshot of the volume is a full one, written against no parent.
    const disk = randomBytes(SIZE);
    const diskPath = join(work, 'liar-next.img');
    writeFileSync(diskPath, disk);
    const next = await json('snapshot', 'create', '--volume', volumeId, '--file', diskPath);
    expect(next.state).toBe('completed');
    expect(next.parentSnapshotId).toBeUndefined();
    expect(next.stats).toMatchObject({ blockCount: SIZE / BLOCK_SIZE, reusedBlocks: 0 });
    const restored = join(work, 'liar-next-restored.img');
    expect((await run('snapshot', 'restore', next.snapshotId, '--to', restored)).code).toBe(0);
    expect(readFileSync(restored).equals(disk)).toBe(true);
  });
});
