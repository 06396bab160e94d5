// `npm run bench [-- --size 1GiB --quick --runs 3]`: times volsnap's data path on deterministic images
// against a local cloud it starts itself, next to the machine's own limits (sha256sum and a plain
// read of the same image), and writes bench/results.json and bench/results.md.
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseSize } from '../lib/cli/units.ts';
import { startLocalCloud } from './local-cloud/cloud.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BLOCK = 512 * 1024;
const { values } = parseArgs({
  options: {
    size: { type: 'string' },
    quick: { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
  },
});
const size = parseSize(values.size ?? (values.quick ? '256MiB' : '1GiB'));
const runs = Number(values.runs);
const work = join(ROOT, 'bench', 'work');

interface Measure {
  name: string;
  seconds: number[];
  bytes: number;
  maxRssKiB?: number[];
  note?: string;
}

/** Deterministic image: AES-CTR keystream (incompressible) with a quarter of the blocks zero, spread by a hash. */
async function makeImages(
  path: string,
  changedPath: string,
): Promise<{ zeroBlocks: number; changedBlocks: number }> {
  const blocks = size / BLOCK;
  const stream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16, 2));
  const changer = createCipheriv('aes-128-ctr', Buffer.alloc(16, 3), Buffer.alloc(16, 4));
  const zero = Buffer.alloc(BLOCK);
  const pick = (i: number, salt: string) =>
    createHash('sha256').update(`${salt}${i}`).digest().readUInt32LE(0);
  const a = await open(path, 'w');
  const b = await open(changedPath, 'w');
  let zeroBlocks = 0;
  let changedBlocks = 0;
  try {
    for (let i = 0; i < blocks; i++) {
      const data = stream.update(zero);
      const isZero = pick(i, 'zero') % 4 === 0;
      const block = isZero ? zero : data;
      if (isZero) zeroBlocks++;
      await a.write(block, 0, BLOCK, i * BLOCK);
      const isChanged = pick(i, 'change') % 100 === 0;
      if (isChanged) changedBlocks++;
      await b.write(isChanged ? changer.update(zero) : block, 0, BLOCK, i * BLOCK);
    }
  } finally {
    await a.close();
    await b.close();
  }
  return { zeroBlocks, changedBlocks };
}

function time(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ seconds: number; stdout: string; maxRssKiB?: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`));
      const rusage = /volsnap-rusage (\{.*\})/.exec(stderr)?.[1];
      resolve({ seconds, stdout, maxRssKiB: rusage ? JSON.parse(rusage).maxRssKiB : undefined });
    });
  });
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function main() {
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const image = join(work, 'image.raw');
  const changed = join(work, 'image-1pct.raw');
  console.log(`Making ${size / 2 ** 20} MiB test images…`);
  const shape = await makeImages(image, changed);
  const cloud = await startLocalCloud({ dataDir: join(work, 'cloud'), portBase: 'auto', fresh: true });
  const cliEnv = { ...process.env, VOLSNAP_CONFIG: cloud.configPath, VOLSNAP_REPORT_RUSAGE: '1' };
  const volsnap = async (...args: string[]) =>
    time(process.execPath, [join(ROOT, 'bin/volsnap.js'), '--json', ...args], cliEnv);
  const measures: Measure[] = [];
  try {
    const read: Measure = { name: 'plain read (cat)', seconds: [], bytes: size };
    const hash: Measure = { name: 'sha256sum', seconds: [], bytes: size };
    const full: Measure = { name: 'volsnap full snapshot', seconds: [], bytes: size, maxRssKiB: [] };
    const incremental: Measure = {
      name: 'volsnap 1% incremental snapshot',
      seconds: [],
      bytes: size,
      maxRssKiB: [],
    };
    const restore: Measure = { name: 'volsnap restore', seconds: [], bytes: size, maxRssKiB: [] };
    const [home, away] = cloud.regions.map((r) => r.name);
    const fullCopy: Measure = { name: `volsnap full copy ${home} → ${away}`, seconds: [], bytes: size };
    const incrementalCopy: Measure = {
      name: `volsnap 1% incremental copy ${home} → ${away}`,
      seconds: [],
      bytes: size,
    };
    // A copy is written by the destination's workers: its time is the server's, from its
    // createdAt to its completedAt (the CLI's polling would add up to 2 s).
    const copy = async (snapshotId: string, measure: Measure) => {
      const out = await volsnap(
        '--region',
        String(away),
        'snapshot',
        'copy',
        snapshotId,
        '--source-region',
        String(home),
      );
      const copied = JSON.parse(out.stdout).snapshot;
      if (copied.state !== 'completed')
        throw new Error(`copy ${copied.snapshotId} ended ${copied.state}: ${copied.stateReason}`);
      measure.seconds.push((Date.parse(copied.completedAt) - Date.parse(copied.createdAt)) / 1000);
      measure.note = `moved ${(copied.stats.newBytes / 2 ** 20).toFixed(1)} MiB, ${copied.stats.newBlocks} blocks`;
    };
    const exportVsnap: Measure = { name: 'volsnap export (vsnap)', seconds: [], bytes: size };
    const importVsnap: Measure = {
      name: `volsnap import (vsnap, from ${home} into ${away})`,
      seconds: [],
      bytes: size,
    };
    const serverSeconds = (created: string, completed: string) =>
      (Date.parse(completed) - Date.parse(created)) / 1000;
    for (let run = 0; run < runs; run++) {
      console.log(`Run ${run + 1} of ${runs}…`);
      read.seconds.push((await time('sh', ['-c', `cat '${image}' > /dev/null`])).seconds);
      hash.seconds.push((await time('sha256sum', [image])).seconds);
      // Fresh state for every run: a new volume, so the first snapshot is full.
      const volume = JSON.parse(
        (await volsnap('volume', 'create', '--name', `bench-${run}`, '--size', String(size))).stdout,
      );
      const first = await volsnap('snapshot', 'create', '--volume', volume.volumeId, '--file', image);
      full.seconds.push(first.seconds);
      full.maxRssKiB?.push(first.maxRssKiB ?? 0);
      await copy(JSON.parse(first.stdout).snapshot.snapshotId, fullCopy);
      const second = await volsnap('snapshot', 'create', '--volume', volume.volumeId, '--file', changed);
      incremental.seconds.push(second.seconds);
      incremental.maxRssKiB?.push(second.maxRssKiB ?? 0);
      incremental.note = `uploaded ${(JSON.parse(second.stdout).upload.newStoredBytes / 2 ** 20).toFixed(1)} MiB`;
      const snapshotId = JSON.parse(second.stdout).snapshot.snapshotId;
      await copy(snapshotId, incrementalCopy);
      const exported = JSON.parse(
        (await volsnap('snapshot', 'export', snapshotId, '--format', 'vsnap')).stdout,
      );
      exportVsnap.seconds.push(serverSeconds(exported.createdAt, exported.completedAt));
      exportVsnap.note = `${(exported.size / 2 ** 20).toFixed(1)} MiB object`;
      const { url } = JSON.parse((await volsnap('export', 'url', exported.exportId)).stdout);
      const imported = JSON.parse(
        (
          await volsnap(
            '--account',
            'demo-b',
            '--region',
            String(away),
            'snapshot',
            'import',
            '--url',
            url,
            '--format',
            'vsnap',
          )
        ).stdout,
      ).snapshot;
      if (imported.state !== 'completed')
        throw new Error(`import ended ${imported.state}: ${imported.stateReason}`);
      importVsnap.seconds.push(serverSeconds(imported.createdAt, imported.completedAt));
      const target = join(work, 'restored.raw');
      await rm(target, { force: true });
      const restored = await volsnap('snapshot', 'restore', snapshotId, '--to', target);
      restore.seconds.push(restored.seconds);
      restore.maxRssKiB?.push(restored.maxRssKiB ?? 0);
      if ((await sha256(target)) !== (await sha256(changed)))
        throw new Error('the restored image differs from its source');
    }
    measures.push(
      read,
      hash,
      full,
      incremental,
      restore,
      fullCopy,
      incrementalCopy,
      exportVsnap,
      importVsnap,
    );
  } finally {
    await cloud.stop();
  }
  const rows = measures.map((m) => {
    const seconds = median(m.seconds);
    return {
      name: m.name,
      seconds: Number(seconds.toFixed(2)),
      mbPerSecond: Number((m.bytes / 1e6 / seconds).toFixed(1)),
      maxRssMiB: m.maxRssKiB ? Number((Math.max(...m.maxRssKiB) / 1024).toFixed(0)) : undefined,
      note: m.note,
      runs: m.seconds.map((s) => Number(s.toFixed(2))),
    };
  });
  const hashRow = rows.find((r) => r.name === 'sha256sum');
  const result = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    image: {
      bytes: size,
      blockSize: BLOCK,
      zeroBlocks: shape.zeroBlocks,
      changedBlocks: shape.changedBlocks,
    },
    runs,
    results: rows.map((r) => ({
      ...r,
      timeVsSha256sum: hashRow ? Number((r.seconds / hashRow.seconds).toFixed(2)) : undefined,
    })),
  };
  const table = [
    `volsnap bench: ${size / 2 ** 20} MiB image (${shape.zeroBlocks} of ${size / BLOCK} blocks zero, ${shape.changedBlocks} changed for the incremental), median of ${runs}, ${result.machine.cpus} cores, Node ${process.version}, ${result.date.slice(0, 10)}`,
    '',
    '| what | seconds | MB/s of image | time ÷ sha256sum | client peak RSS | note |',
    '|---|---:|---:|---:|---:|---|',
    ...result.results.map(
      (r) =>
        `| ${r.name} | ${r.seconds} | ${r.mbPerSecond} | ${r.timeVsSha256sum ?? '-'} | ${r.maxRssMiB === undefined ? '-' : `${r.maxRssMiB} MiB`} | ${r.note ?? ''} |`,
    ),
  ].join('\n');
  await mkdir(join(ROOT, 'bench'), { recursive: true });
  await writeFile(join(ROOT, 'bench', 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(join(ROOT, 'bench', `results${values.quick ? '-quick' : ''}.md`), `${table}\n`);
  console.log(
    `\n${table}\n\nWritten to bench/results.json and bench/results${values.quick ? '-quick' : ''}.md.`,
  );
  await rm(work, { recursive: true, force: true });
}

await main();
