// `npx tsx scripts/profile-ebs.ts [--size 256MiB] [--runs 1] [--cpu-prof DIR]`: the bench's EBS
// direct API rows alone (scripts/bench/ebs.ts: an upload through client-ebs at 64 concurrent
// requests, a download of the CLI's full snapshot), beside the CLI's full snapshot and restore of
// the same image in the same cloud, with the S3 requests of each by operation. With `--cpu-prof`,
// the regions' processes (the functions) write V8 CPU profiles into DIR when they stop (open them
// in Chrome's DevTools; scripts/cpu-profile-preload.mjs). A profile for working on the EBS paths; `npm run bench` is the reference.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { parseSize } from '../lib/cli/units.ts';
import { type CpuSeconds, cloudProcesses, cpuDuring } from './bench/cpu.ts';
import { EBS_DOWNLOAD, EBS_UPLOAD, EbsBench } from './bench/ebs.ts';
import { printProfiles, profileRegionProcesses } from './bench/profile-summary.ts';
import { makeImages } from './bench/tools.ts';
import { startLocalCloud } from './local-cloud/cloud.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '256MiB' },
    runs: { type: 'string', default: '1' },
    'cpu-prof': { type: 'string' },
  },
});
const size = parseSize(values.size);
const work = join(ROOT, 'bench', 'profile-ebs-work');
const run = promisify(execFile);

function timed(command: string, args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ seconds: number; stdout: string }>((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${args.join(' ')} exited ${code}: ${stderr}`));
      else resolvePromise({ seconds: Number(process.hrtime.bigint() - started) / 1e9, stdout });
    });
  });
}

const load = () =>
  loadavg()
    .map((n) => n.toFixed(1))
    .join(' ');

async function main() {
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const profiles = values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined;
  if (profiles) await profileRegionProcesses(profiles);
  const image = join(work, 'image.raw');
  const changed = join(work, 'image-1pct.raw');
  console.log(`Making a ${size / 2 ** 20} MiB image…`);
  await makeImages(size, image, changed);
  const imageBytes = await readFile(image);
  const imageSha256 = createHash('sha256').update(imageBytes).digest('hex');
  const cloud = await startLocalCloud({
    dataDir: join(work, 'cloud'),
    portBase: 'auto',
    fresh: true,
    schedules: false,
  });
  const stateFile = join(work, 'cloud', 'cloud-state.json');
  /** Each step's window in the profiles' clock (µs). */
  const windows: { name: string; from: number; to: number }[] = [];
  try {
    const cliBundle = join(work, 'volsnap.mjs');
    await run(process.execPath, [join(ROOT, 'scripts/build-cli.js'), cliBundle], { cwd: ROOT });
    const env = { ...process.env, VOLSNAP_CONFIG: cloud.configPath, NODE_OPTIONS: '' };
    // With --cpu-prof the CLI writes a profile of each command it runs, named by the step.
    let cliProfile: string | undefined;
    const cliProfiles = profiles ? resolve(profiles, 'cli') : undefined;
    const volsnap = (...args: string[]) => {
      const profiling =
        cliProfiles && cliProfile
          ? ['--cpu-prof', `--cpu-prof-dir=${cliProfiles}`, `--cpu-prof-name=${cliProfile}.cpuprofile`]
          : [];
      return timed(process.execPath, [...profiling, cliBundle, '--json', ...args], env);
    };
    const ebs = await EbsBench.start({ cloud, volsnap });
    const target = join(work, 'restored.raw');
    for (let r = 0; r < Number(values.runs); r++) {
      const volume = JSON.parse(
        (await volsnap('volume', 'create', '--name', `profile-${r}`, '--size', String(size))).stdout,
      );
      const measured = async <T>(name: string, step: () => Promise<T>, seconds?: (value: T) => number) => {
        const s3 = await ebs.s3Counts();
        const dynamodb = await ebs.dynamodbCounts();
        const started = process.hrtime.bigint();
        cliProfile = name.replace(/\W+/g, '-');
        const { result: value, cpu } = await cpuDuring(() => cloudProcesses(stateFile), step).finally(() => {
          cliProfile = undefined;
        });
        const ended = process.hrtime.bigint();
        windows.push({ name, from: Number(started / 1000n), to: Number(ended / 1000n) });
        const wall = Number(ended - started) / 1e9;
        // The window in the profiles' clock (µs), for scripts/bench/profile-summary.ts --from --to.
        console.log(`${name} window (µs): --from ${started / 1000n} --to ${ended / 1000n}`);
        const s3Note = (await ebs.perGiB(s3, size)).note;
        const dynamo = await ebs.since(dynamodb, await ebs.dynamodbCounts());
        const taken = seconds ? seconds(value) : wall;
        console.log(
          `${name}: ${taken.toFixed(2)} s, ${s3Note}; DynamoDB ${JSON.stringify(dynamo.byOperation)}; CPU-s of the cloud ${JSON.stringify(cpu)} (load ${load()})`,
        );
        return { value, seconds: taken };
      };
      const full = await measured('full snapshot', () =>
        volsnap('snapshot', 'create', '--volume', volume.volumeId, '--file', image),
      );
      const snapshotId = JSON.parse(full.value.stdout).snapshotId as string;
      await measured('1% incremental snapshot', () =>
        volsnap('snapshot', 'create', '--volume', volume.volumeId, '--file', changed),
      );
      await rm(target, { force: true });
      const restore = await measured('restore', () =>
        volsnap('snapshot', 'restore', snapshotId, '--to', target),
      );
      await rm(target, { force: true });
      const rows: Record<'upload' | 'download', { seconds: number[]; note?: string; cpu?: CpuSeconds }> = {
        upload: { seconds: [] },
        download: { seconds: [] },
      };
      const dynamodb = await ebs.dynamodbCounts();
      await ebs.run(
        { upload: rows.upload, download: rows.download },
        { image: imageBytes, fullSnapshotId: snapshotId, target, imageSha256, stateFile },
      );
      const dynamo = await ebs.since(dynamodb, await ebs.dynamodbCounts());
      for (const [name, row, peer] of [
        [EBS_UPLOAD, rows.upload, full.seconds],
        [EBS_DOWNLOAD, rows.download, restore.seconds],
      ] as const) {
        const seconds = row.seconds[0] ?? Number.NaN;
        console.log(
          `${name}: ${seconds.toFixed(2)} s (${(seconds / peer).toFixed(2)}× the CLI's), ${row.note}; CPU-s ${JSON.stringify(row.cpu)} (load ${load()})`,
        );
      }
      const marks = Object.entries(ebs.marks).map(([name, ns]) => `${name} ${ns / 1000n}`);
      console.log(`marks (µs, the CPU profiles' clock): ${marks.join(', ')}`);
      // The EBS rows' windows too, so that the region processes' profiles are summarized for them.
      for (const row of ['upload', 'download'] as const) {
        const from = ebs.marks[`${row} start`];
        const to = ebs.marks[`${row} end`];
        if (from !== undefined && to !== undefined)
          windows.push({ name: `EBS API ${row}`, from: Number(from / 1000n), to: Number(to / 1000n) });
      }
      console.log(
        `upload phases: PUTs ${ebs.lastUpload.puts.toFixed(2)} s, completion ${ebs.lastUpload.completion.toFixed(2)} s; DynamoDB over both rows ${JSON.stringify(dynamo.byOperation)}`,
      );
      await rm(target, { force: true });
    }
  } finally {
    await cloud.stop();
  }
  // The regions' profiles are written as their processes stop: summarize them, and the CLI's.
  if (profiles) await printProfiles(profiles, windows);
}

await main();
