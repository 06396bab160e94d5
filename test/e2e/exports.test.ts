import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createZstdCompressor } from '../../lib/adapters/zstd.ts';
import {
  parseVsnapFooter,
  parseVsnapHeader,
  parseVsnapIndex,
  readVsnapBlock,
  VSNAP_FOOTER_SIZE,
  vsnapHeaderLength,
} from '../../lib/core/format/vsnap.ts';
import { cli, type StartedCloud, startCloudProcess } from '../support/processes.ts';

const BLOCK = 512 * 1024;
const SIZE = 16 * 1024 * 1024;
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-exports-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-exports-files-'));
const configPath = join(dataDir, 'config.json');
/** Work messages the local cloud loses on their first delivery (its worker died), while the test says so. */
const loseWorkFile = join(dataDir, 'lose-work.json');
process.env.VOLSNAP_LOCAL_LOSE_WORK_FILE = loseWorkFile;
let cloud: StartedCloud;

async function json(...args: string[]) {
  const result = await cli(['--config', configPath, '--json', ...args]);
  if (result.code !== 0) throw new Error(`volsnap ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** A ranged GET through a presigned URL, as an importer does it. */
async function range(url: string, start: number, end: number): Promise<Buffer> {
  const response = await fetch(url, { headers: { range: `bytes=${start}-${end - 1}` } });
  expect(response.status).toBe(206);
  return Buffer.from(await response.arrayBuffer());
}

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
});
afterAll(async () => {
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

describe('exports through the CLI, downloaded through presigned URLs, imported elsewhere', () => {
  const image = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE / BLOCK; i++) {
    if (i % 3 === 0) continue;
    (i % 3 === 1 ? Buffer.alloc(BLOCK, `row ${i}\n`) : randomBytes(BLOCK)).copy(image, i * BLOCK);
  }
  writeFileSync(join(work, 'disk.img'), image);
  let snapshotId: string;

  beforeAll(async () => {
    const volume = await json('volume', 'create', '--name', 'disk', '--size', '16MiB');
    snapshotId = (
      await json('snapshot', 'create', '--volume', volume.volumeId, '--file', join(work, 'disk.img'))
    ).snapshotId;
  });

  it('exports vsnap: the footer, header and index come in three ranged GETs, then every block verifies', async () => {
    const exported = await json('snapshot', 'export', snapshotId, '--format', 'vsnap');
    expect(exported).toMatchObject({ state: 'completed', format: 'vsnap', snapshotId });
    expect(exported.sizeBytes).toBeLessThan(SIZE);
    const { url, sizeBytes: size } = await json('export', 'url', exported.exportId, '--expires', '10m');
    expect(size).toBe(exported.sizeBytes);
    const footer = parseVsnapFooter(await range(url, size - VSNAP_FOOTER_SIZE, size), size);
    const headerLength = vsnapHeaderLength(await range(url, 0, 32));
    const metadata = parseVsnapHeader(await range(url, 0, headerLength), footer);
    expect(metadata).toMatchObject({ sourceSnapshotId: snapshotId, sourceRegion: 'eu-west-1' });
    const entries = parseVsnapIndex(
      await range(url, footer.indexOffset, footer.indexOffset + footer.indexLength),
      footer,
      headerLength,
    );
    const zstd = createZstdCompressor();
    const restored = Buffer.alloc(footer.volumeSize);
    await Promise.all(
      entries.map(async (e) => {
        const plain = readVsnapBlock(zstd, e, await range(url, e.offset, e.offset + e.storedLength));
        Buffer.from(plain).copy(restored, e.blockIndex * BLOCK);
      }),
    );
    expect(restored.equals(image)).toBe(true);
  });

  it('lets account B import in region 2 what A exported in region 1, as vsnap, raw and qcow2: each restores byte for byte', async () => {
    for (const format of ['vsnap', 'raw', 'qcow2']) {
      const exported = await json('snapshot', 'export', snapshotId, '--format', format);
      const { url } = await json('export', 'url', exported.exportId);
      const imported = await json(
        '--account',
        'demo-b',
        '--region',
        'us-east-1',
        'snapshot',
        'import',
        '--url',
        url,
        '--format',
        format,
        ...(format === 'raw' ? ['--size', '16MiB'] : []),
      );
      expect(imported).toMatchObject({ state: 'completed', region: 'us-east-1', importedFrom: { format } });
      expect(JSON.stringify(imported)).not.toContain('X-Amz-Signature');
      const to = join(work, `imported-${format}.img`);
      await json(
        '--account',
        'demo-b',
        '--region',
        'us-east-1',
        'snapshot',
        'restore',
        imported.snapshotId,
        '--to',
        to,
      );
      expect(readFileSync(to).equals(image)).toBe(true);
    }
  });

  it('imports local qcow2 files qemu-img made (plain and compressed), uploaded through presigned part URLs', async () => {
    const { execFileSync } = await import('node:child_process');
    const raw = join(work, 'disk.img');
    for (const options of [[], ['-c']]) {
      const qcow2 = join(work, `disk${options.join('')}.qcow2`);
      execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...options, raw, qcow2]);
      const imported = await json(
        '--account',
        'demo-b',
        'snapshot',
        'import',
        '--file',
        qcow2,
        '--format',
        'qcow2',
      );
      expect(imported).toMatchObject({
        state: 'completed',
        sizeBytes: SIZE,
        importedFrom: { format: 'qcow2' },
      });
      // Workers wrote it under a lease: neither its owner nor an account it is shared with sees
      // the lease and part bookkeeping, and the grantee sees neither shares nor holds.
      for (const field of ['leaseUntil', 'leaseParts', 'dispatches', 'partsDone'])
        expect(imported, field).not.toHaveProperty(field);
      await json('--account', 'demo-b', 'snapshot', 'share', imported.snapshotId, 'demo');
      const seen = await json('snapshot', 'show', imported.snapshotId);
      expect(seen).toMatchObject({ snapshotId: imported.snapshotId, state: 'completed' });
      for (const field of ['leaseUntil', 'leaseParts', 'dispatches', 'partsDone', 'holds', 'sharedWith'])
        expect(seen, field).not.toHaveProperty(field);
      const to = join(work, `from-file${options.join('')}.img`);
      await json('--account', 'demo-b', 'snapshot', 'restore', imported.snapshotId, '--to', to);
      expect(readFileSync(to).equals(image), options.join(' ')).toBe(true);
    }
  });

  it('refuses imports from where the service may not fetch, and from URLs that answer errors', async () => {
    const api = JSON.parse(readFileSync(configPath, 'utf8')).regions['eu-west-1'].endpoint;
    const inward = await cli([
      '--config',
      configPath,
      'snapshot',
      'import',
      '--url',
      `${api}/v1/health`,
      '--format',
      'vsnap',
    ]);
    expect(inward.code).toBe(2);
    expect(inward.stderr).toContain('import.sourceForbidden');
    const exported = await json('snapshot', 'export', snapshotId, '--format', 'vsnap');
    const { url } = await json('export', 'url', exported.exportId);
    await json('export', 'delete', exported.exportId);
    const gone = await cli(['--config', configPath, 'snapshot', 'import', '--url', url, '--format', 'vsnap']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/import\.sourceUnreadable: The import URL answered 404/);
  });

  it('exports raw, full length; deleting the export makes its URL fail', async () => {
    const exported = await json('snapshot', 'export', snapshotId, '--format', 'raw');
    expect(exported).toMatchObject({ state: 'completed', sizeBytes: SIZE });
    const { url } = await json('export', 'url', exported.exportId);
    const response = await fetch(url);
    expect(Buffer.from(await response.arrayBuffer()).equals(image)).toBe(true);
    const listed = await json('export', 'list');
    expect(listed.map((e: { exportId: string }) => e.exportId)).toContain(exported.exportId);
    await json('export', 'delete', exported.exportId);
    expect((await fetch(url)).status).toBe(404);
    const gone = await cli(['--config', configPath, 'export', 'show', exported.exportId]);
    expect(gone.stderr).toContain('export.notFound');
  });
});

describe('a dead worker is replaced by the reaper (every minute; 3-minute lease), for every kind', () => {
  const image = randomBytes(SIZE);
  writeFileSync(join(work, 'recover.img'), image);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it(
    'a copy, an import and an export whose part 0 message was lost complete, and are measured',
    async () => {
      const volume = await json('volume', 'create', '--name', 'recover', '--size', '16MiB');
      const source = await json(
        'snapshot',
        'create',
        '--volume',
        volume.volumeId,
        '--file',
        join(work, 'recover.img'),
      );
      // Each kind's normal time (one part each at this size), for the figures: the CLI waits for it.
      const normal: Record<string, number> = {};
      const timed = async (kind: string, ...args: string[]) => {
        const at = Date.now();
        expect((await json(...args)).state).toBe('completed');
        normal[kind] = (Date.now() - at) / 1000;
      };
      await timed('export', 'snapshot', 'export', source.snapshotId, '--format', 'raw');
      await timed(
        'copy',
        '--region',
        'us-east-1',
        'snapshot',
        'copy',
        source.snapshotId,
        '--source-region',
        'eu-west-1',
      );
      await timed(
        'import',
        'snapshot',
        'import',
        '--file',
        join(work, 'recover.img'),
        '--format',
        'raw',
        '--size',
        '16MiB',
      );
      // Staged: the first delivery of part 0 of each is lost, as if its worker died on receiving it.
      writeFileSync(
        loseWorkFile,
        JSON.stringify([
          { kind: 'snapshot.copyPart', part: 0 },
          { kind: 'snapshot.importPart', part: 0 },
          { kind: 'export.part', part: 0 },
        ]),
      );
      const started = Date.now();
      const exported = await json('snapshot', 'export', source.snapshotId, '--format', 'raw', '--no-wait');
      const copy = await json(
        '--region',
        'us-east-1',
        'snapshot',
        'copy',
        source.snapshotId,
        '--source-region',
        'eu-west-1',
        '--no-wait',
      );
      const imported = await json(
        'snapshot',
        'import',
        '--file',
        join(work, 'recover.img'),
        '--format',
        'raw',
        '--size',
        '16MiB',
        '--no-wait',
      );
      const shows: Record<string, string[]> = {
        export: ['export', 'show', exported.exportId],
        copy: ['--region', 'us-east-1', 'snapshot', 'show', copy.snapshotId],
        import: ['snapshot', 'show', imported.snapshotId],
      };
      const took: Record<string, number> = {};
      const states: Record<string, string> = {};
      while (Object.keys(took).length < 3 && Date.now() - started < 10 * 60_000) {
        for (const [kind, args] of Object.entries(shows)) {
          if (took[kind] !== undefined) continue;
          states[kind] = (await json(...args)).state;
          if (states[kind] !== 'pending') took[kind] = Math.round((Date.now() - started) / 1000);
        }
        await sleep(5000);
      }
      writeFileSync(loseWorkFile, '[]');
      const figures = `Recovery after a lost part (lease 3 min, reaper every minute): ${Object.entries(took)
        .map(([kind, seconds]) => `${kind} ${seconds} s (normally ${normal[kind]?.toFixed(1)} s)`)
        .join(', ')}`;
      console.log(figures);
      writeFileSync(join(dataDir, 'recovery-figures.txt'), `${figures}\n`);
      expect(states).toEqual({ export: 'completed', copy: 'completed', import: 'completed' });
      // Each was lost once indeed, and each is whole.
      for (const id of [exported.exportId, copy.snapshotId, imported.snapshotId])
        expect(cloud.output()).toMatch(new RegExp(`lost a delivered message[^\n]*${id}`));
      const { url } = await json('export', 'url', exported.exportId);
      expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(image)).toBe(true);
      for (const [region, snapshot] of [
        ['us-east-1', copy.snapshotId],
        ['eu-west-1', imported.snapshotId],
      ]) {
        const to = join(work, `recovered-${snapshot}.img`);
        await json('--region', region, 'snapshot', 'restore', snapshot, '--to', to);
        expect(readFileSync(to).equals(image)).toBe(true);
      }
    },
    12 * 60_000,
  );

  it('deletes a pending export at once, though the local S3 cannot abort its upload; it is gone afterwards', async () => {
    const volume = await json('volume', 'create', '--name', 'pending-export', '--size', '16MiB');
    const source = await json(
      'snapshot',
      'create',
      '--volume',
      volume.volumeId,
      '--file',
      join(work, 'recover.img'),
    );
    writeFileSync(loseWorkFile, JSON.stringify([{ kind: 'export.part', part: 0 }]));
    const exported = await json('snapshot', 'export', source.snapshotId, '--format', 'raw', '--no-wait');
    expect((await json('export', 'show', exported.exportId)).state).toBe('pending');
    writeFileSync(loseWorkFile, '[]');
    const deleted = await cli(['--config', configPath, 'export', 'delete', exported.exportId]);
    expect(deleted.code, deleted.stderr).toBe(0);
    const gone = await cli(['--config', configPath, 'export', 'show', exported.exportId]);
    expect(gone.stderr).toContain('export.notFound');
    const listed = await json('export', 'list');
    expect(listed.map((e: { exportId: string }) => e.exportId)).not.toContain(exported.exportId);
  });
});
