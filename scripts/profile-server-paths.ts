// `npx tsx scripts/profile-server-paths.ts [--size 1GiB] [--runs 1] [--check] [--cpu-prof DIR]`: times the
// server-side paths (full cross-region copy, export in every format, import of every format into
// the other region) against the full snapshot of the same run, on the bench's kind of image, and
// counts the S3 requests each makes (the local S3 counts every request, presigned ones too). With
// `--check`, the copy and every import are restored and compared with the image byte for byte. With
// `--cpu-prof`, the region processes write CPU profiles into DIR and each row's share of them is
// printed at the end (scripts/bench/profile-summary.ts).
// A profile for working on those paths; `npm run bench` is the reference.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { parseSize } from '../lib/cli/units.ts';
import { type ProfileWindow, printProfiles, profileRegionProcesses } from './bench/profile-summary.ts';
import { makeImages } from './bench/tools.ts';
import { startLocalCloud } from './local-cloud/cloud.ts';
import { REQUEST_COUNTS_PATH } from './local-cloud/s3-emulator.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1GiB' },
    runs: { type: 'string', default: '1' },
    check: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
  },
});
const size = parseSize(values.size);
const work = join(ROOT, 'bench', 'profile-work');
const run = promisify(execFile);

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function timed(command: string, args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ seconds: number; stdout: string }>((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve({ seconds: Number(process.hrtime.bigint() - started) / 1e9, stdout });
    });
  });
}

type Counts = Record<string, number>;

const serverSeconds = (record: { createdAt: string; completedAt: string }) =>
  (Date.parse(record.completedAt) - Date.parse(record.createdAt)) / 1000;

async function main() {
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const profiles = values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined;
  if (profiles) await profileRegionProcesses(profiles);
  const windows: ProfileWindow[] = [];
  const image = join(work, 'image.raw');
  console.log(`Making a ${size / 2 ** 20} MiB image…`);
  await makeImages(size, image);
  const imageHash = await sha256(image);
  const cloud = await startLocalCloud({
    dataDir: join(work, 'cloud'),
    portBase: 'auto',
    fresh: true,
    schedules: false,
  });
  const cliBundle = join(work, 'volsnap.mjs');
  await run(process.execPath, [join(ROOT, 'scripts/build-cli.js'), cliBundle], { cwd: ROOT });
  const env = { ...process.env, VOLSNAP_CONFIG: cloud.configPath };
  const volsnap = async (...args: string[]) => {
    const out = await timed(process.execPath, [cliBundle, '--json', ...args], env);
    return { seconds: out.seconds, json: JSON.parse(out.stdout) };
  };
  const [home, away] = cloud.regions.map((r) => r.name) as [string, string];
  const counts = async (): Promise<Counts> => {
    const all: Counts = {};
    for (const region of cloud.regions) {
      const got = (await (await fetch(`${region.s3}${REQUEST_COUNTS_PATH}`)).json()) as Counts;
      for (const [op, n] of Object.entries(got)) all[op] = (all[op] ?? 0) + n;
    }
    return all;
  };
  const rows: { name: string; seconds: number; requests: Counts }[] = [];
  const measured = async <T>(name: string, step: () => Promise<{ seconds: number; value: T }>) => {
    const before = await counts();
    const from = Number(process.hrtime.bigint() / 1000n);
    const { seconds, value } = await step();
    windows.push({ name, from, to: Number(process.hrtime.bigint() / 1000n) });
    const after = await counts();
    const requests: Counts = {};
    for (const [op, n] of Object.entries(after))
      if (n - (before[op] ?? 0) > 0) requests[op] = n - (before[op] ?? 0);
    rows.push({ name, seconds, requests });
    console.log(`${name}: ${seconds.toFixed(2)} s, ${JSON.stringify(requests)}`);
    return value;
  };
  const restoresToImage = async (region: string, account: string[], snapshotId: string, what: string) => {
    if (!values.check) return;
    const target = join(work, 'restored.raw');
    await rm(target, { force: true });
    await volsnap(...account, '--region', region, 'snapshot', 'restore', snapshotId, '--to', target);
    const got = await sha256(target);
    if (got !== imageHash) throw new Error(`${what} does not restore to the image`);
    console.log(`  ${what} restores byte for byte`);
  };
  try {
    for (let r = 0; r < Number(values.runs); r++) {
      const volume = (await volsnap('volume', 'create', '--name', `p${r}`, '--size', String(size))).json;
      const snapshot = await measured('full snapshot', async () => {
        const out = await volsnap('snapshot', 'create', '--volume', volume.volumeId, '--file', image);
        return { seconds: out.seconds, value: out.json };
      });
      const copy = await measured(`full copy ${home} → ${away}`, async () => {
        const out = await volsnap(
          '--region',
          away,
          'snapshot',
          'copy',
          snapshot.snapshotId,
          '--source-region',
          home,
        );
        if (out.json.state !== 'completed')
          throw new Error(`copy ended ${out.json.state}: ${out.json.stateReason}`);
        return { seconds: serverSeconds(out.json), value: out.json };
      });
      await restoresToImage(away, [], copy.snapshotId, 'the copy');
      for (const format of ['vsnap', 'raw', 'qcow2']) {
        const exported = await measured(`export (${format})`, async () => {
          const out = await volsnap('snapshot', 'export', snapshot.snapshotId, '--format', format);
          return { seconds: serverSeconds(out.json), value: out.json };
        });
        const { url } = (await volsnap('export', 'url', exported.exportId)).json;
        const imported = await measured(`import (${format}, into ${away})`, async () => {
          const out = await volsnap(
            '--account',
            'demo-b',
            '--region',
            away,
            'snapshot',
            'import',
            '--url',
            url,
            '--format',
            format,
            ...(format === 'raw' ? ['--size', String(size)] : []),
          );
          if (out.json.state !== 'completed')
            throw new Error(`import ended ${out.json.state}: ${out.json.stateReason}`);
          return { seconds: serverSeconds(out.json), value: out.json };
        });
        await restoresToImage(away, ['--account', 'demo-b'], imported.snapshotId, `the ${format} import`);
        await volsnap('export', 'delete', exported.exportId);
      }
    }
  } finally {
    await cloud.stop();
  }
  printTable(rows);
  if (profiles) await printProfiles(profiles, windows);
  await rm(work, { recursive: true, force: true });
}

/** The rows as a table: median seconds, the median ratio to the full snapshot of the same run, requests per GiB. */
function printTable(rows: { name: string; seconds: number; requests: Counts }[]): void {
  const full = rows.filter((row) => row.name === 'full snapshot').map((row) => row.seconds);
  const gib = size / 2 ** 30;
  console.log('\n| what | seconds | × full snapshot | S3 requests per GiB |\n|---|---:|---:|---|');
  const names = [...new Set(rows.map((row) => row.name))];
  for (const name of names) {
    const mine = rows.filter((row) => row.name === name);
    const ratios = mine.map((row, i) => row.seconds / (full[i] ?? Number.NaN)).sort((a, b) => a - b);
    const seconds = mine.map((row) => row.seconds).sort((a, b) => a - b);
    const last = mine.at(-1)?.requests ?? {};
    const total = Object.values(last).reduce((a, b) => a + b, 0);
    const detail = Object.entries(last)
      .map(([op, n]) => `${op} ${Math.round(n / gib)}`)
      .join(', ');
    console.log(
      `| ${name} | ${seconds[Math.floor(seconds.length / 2)]?.toFixed(2)} | ${ratios[Math.floor(ratios.length / 2)]?.toFixed(2)} | ${Math.round(total / gib)} (${detail}) |`,
    );
  }
}

await main();
