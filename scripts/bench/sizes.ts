// `npm run bench -- --sizes 256MiB,1GiB,4GiB [--runs N]`: how volsnap's cost grows with the volume.
// At each size, on the bench's kind of image and a fresh local cloud (so the emulators' disks hold
// one size at a time): full snapshot and restore (the CLI as shipped, timed with its peak RSS),
// full cross-region copy, export (vsnap) and import of it into the other region and another account
// (timed on the server, createdAt → completedAt). For each: seconds per GiB, the client's and the
// region processes' peak RSS, S3 and DynamoDB requests per GiB. The target (#20): seconds per GiB
// within 15% across sizes (max ÷ min ≤ 1.15), memory flat. Writes bench/results-sizes.{json,md}.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { startLocalCloud } from '../local-cloud/cloud.ts';
import { perGiB, RequestCounter, type RequestCounts, totalOf } from './requests.ts';
import {
  buildCli,
  GiB,
  makeImages,
  median,
  RegionMemory,
  serverSeconds,
  sha256,
  time,
  warmFile,
} from './tools.ts';

export const SIZE_OPERATIONS = [
  'full snapshot',
  'restore',
  'full cross-region copy',
  'export (vsnap)',
  'import (vsnap, other region)',
] as const;
type Operation = (typeof SIZE_OPERATIONS)[number];

/** One operation at one size: its runs and what the last one counted. */
interface SizeCell {
  seconds: number[];
  clientRssMiB: number[];
  regionRssMiB: number[];
  requests?: RequestCounts;
}

/** Seconds per GiB spread across sizes: the slowest size's ÷ the fastest's (target ≤ 1.15). */
export function spread(secondsPerGiB: number[]): number {
  const finite = secondsPerGiB.filter(Number.isFinite);
  if (finite.length < 2) return Number.NaN;
  return Math.max(...finite) / Math.min(...finite);
}

const sizeLabel = (bytes: number) => (bytes >= GiB ? `${bytes / GiB} GiB` : `${bytes / 2 ** 20} MiB`);

async function oneSize(root: string, work: string, size: number, runs: number) {
  const cells = new Map<Operation, SizeCell>(
    SIZE_OPERATIONS.map((op) => [op, { seconds: [], clientRssMiB: [], regionRssMiB: [] }]),
  );
  const image = join(work, 'image.raw');
  console.log(`${sizeLabel(size)}: making the image…`);
  await makeImages(size, image);
  const imageHash = await sha256(image);
  const cloud = await startLocalCloud({
    dataDir: join(work, 'cloud'),
    portBase: 'auto',
    fresh: true,
    // The reaper on its minute, as on AWS: on a loaded machine a part can time out past its retries
    // and be dead-lettered, and only the reaper sends it again (seen at a load average of 27).
    schedules: true,
  });
  const counter = new RequestCounter(cloud.regions);
  const memory = new RegionMemory(cloud.stateFile);
  const cli = await buildCli(root, join(work, 'volsnap.mjs'));
  const env = { ...process.env, VOLSNAP_CONFIG: cloud.configPath };
  const volsnap = (...args: string[]) => time(process.execPath, [cli, '--json', ...args], env);
  const [home, away] = cloud.regions.map((r) => r.name) as [string, string];
  /** Runs one operation: its time (`serverTime` from the record it prints, else the CLI's), RSS, requests. */
  const measured = async (
    op: Operation,
    args: string[],
    serverTime?: (out: { createdAt: string; completedAt: string; state?: string }) => number,
  ) => {
    await memory.reset();
    const { result, requests } = await counter.during(() => volsnap(...args));
    const out = JSON.parse(result.stdout);
    if (out.state !== undefined && out.state !== 'completed')
      throw new Error(`${op} at ${sizeLabel(size)} ended ${out.state}: ${out.stateReason}`);
    const cell = cells.get(op) as SizeCell;
    cell.seconds.push(serverTime ? serverTime(out) : result.seconds);
    if (!serverTime && result.maxRssKiB !== undefined)
      cell.clientRssMiB.push(Math.round(result.maxRssKiB / 1024));
    const regionPeak = await memory.peakMiB();
    if (regionPeak !== undefined) cell.regionRssMiB.push(regionPeak);
    cell.requests = requests;
    return out;
  };
  try {
    for (let r = 0; r < runs; r++) {
      console.log(`${sizeLabel(size)}: run ${r + 1} of ${runs}…`);
      const volume = JSON.parse(
        (await volsnap('volume', 'create', '--name', `sizes-${r}`, '--size', String(size))).stdout,
      );
      // From the page cache, as every timed read of the bench (tools.ts, warmFile).
      await warmFile(image);
      const shot = await measured('full snapshot', [
        'snapshot',
        'create',
        '--volume',
        volume.volumeId,
        '--file',
        image,
      ]);
      const target = join(work, 'restored.raw');
      await rm(target, { force: true });
      await measured('restore', ['snapshot', 'restore', shot.snapshotId, '--to', target]);
      if ((await sha256(target)) !== imageHash) throw new Error(`the ${sizeLabel(size)} restore differs`);
      await rm(target, { force: true });
      const copyArgs = ['--region', away, 'snapshot', 'copy', shot.snapshotId, '--source-region', home];
      await measured('full cross-region copy', copyArgs, serverSeconds);
      const exported = await measured(
        'export (vsnap)',
        ['snapshot', 'export', shot.snapshotId, '--format', 'vsnap'],
        serverSeconds,
      );
      const { url } = JSON.parse((await volsnap('export', 'url', exported.exportId)).stdout);
      const importArgs = ['--account', 'demo-b', '--region', away, 'snapshot', 'import', '--url', url];
      await measured('import (vsnap, other region)', [...importArgs, '--format', 'vsnap'], serverSeconds);
      await volsnap('export', 'delete', exported.exportId);
    }
  } finally {
    await cloud.stop();
    await rm(join(work, 'cloud'), { recursive: true, force: true });
    await rm(image, { force: true });
  }
  return cells;
}

/** The bench across sizes (see the file's head). */
export async function runSizesBench(root: string, sizes: number[], runs: number): Promise<void> {
  const work = join(root, 'bench', 'work-sizes');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const started = Date.now();
  const loads: number[] = [];
  const bySize = new Map<number, Map<Operation, SizeCell>>();
  const failures: string[] = [];
  for (const size of sizes) {
    loads.push(loadavg()[0] ?? Number.NaN);
    try {
      bySize.set(size, await oneSize(root, work, size, runs));
    } catch (error) {
      // One size failing (a loaded machine) leaves the others' figures: said in the table's head.
      failures.push(`${sizeLabel(size)}: ${(error as Error).message.split('\n')[0]}`);
      console.log(`${sizeLabel(size)} failed: ${(error as Error).message}`);
    }
    await writeResults(root, sizes, runs, bySize, loads, started, failures);
  }
  loads.push(loadavg()[0] ?? Number.NaN);
  await writeResults(root, sizes, runs, bySize, loads, started, failures);
  await rm(work, { recursive: true, force: true });
}

/** Writes bench/results-sizes.{json,md} from the sizes measured so far (after each size: a long run stopped early keeps them). */
async function writeResults(
  root: string,
  sizes: number[],
  runs: number,
  bySize: Map<number, Map<Operation, SizeCell>>,
  loads: number[],
  started: number,
  failures: string[],
): Promise<void> {
  const rows = SIZE_OPERATIONS.map((op) => {
    const perSize = sizes.map((size) => {
      const cell = bySize.get(size)?.get(op) ?? { seconds: [], clientRssMiB: [], regionRssMiB: [] };
      const requests = cell.requests ? perGiB(cell.requests, size) : undefined;
      return {
        size,
        seconds: median(cell.seconds),
        secondsPerGiB: median(cell.seconds) / (size / GiB),
        clientRssMiB: cell.clientRssMiB.length ? Math.max(...cell.clientRssMiB) : undefined,
        regionRssMiB: cell.regionRssMiB.length ? Math.max(...cell.regionRssMiB) : undefined,
        s3PerGiB: requests ? totalOf(requests.s3) : undefined,
        dynamodbPerGiB: requests ? totalOf(requests.dynamodb) : undefined,
        requests: cell.requests,
      };
    });
    const s = spread(perSize.map((c) => c.secondsPerGiB));
    return { operation: op, perSize, spread: s, met: Number.isFinite(s) && s <= 1.15 };
  });
  const minutes = (Date.now() - started) / 60_000;
  const fixed = (n: number | undefined, d = 2) =>
    n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d);
  const mib = (n: number | undefined) => (n === undefined ? '-' : `${n}`);
  const header = sizes.map(sizeLabel);
  const md = [
    `volsnap bench across sizes: ${header.join(', ')}, median of ${runs}, ${cpus().length} cores, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; load average ${loads.map((l) => l.toFixed(1)).join(' → ')} (1-minute, at each size's start and at the end); ${minutes.toFixed(1)} min in all.${failures.length ? ` Failed: ${failures.join('; ')}.` : ''} Snapshot and restore: the CLI's wall time; copy, export and import: the server's (createdAt → completedAt).`,
    '',
    `| seconds per GiB | ${header.join(' | ')} | spread (max ÷ min; target ≤ 1.15) | met |`,
    `|---|${header.map(() => '---:').join('|')}|---:|:---:|`,
    ...rows.map(
      (r) =>
        `| ${r.operation} | ${r.perSize.map((c) => fixed(c.secondsPerGiB)).join(' | ')} | ${fixed(r.spread)} | ${r.met ? 'yes' : 'no'} |`,
    ),
    '',
    `| peak RSS, MiB: client (CLI) / region process | ${header.join(' | ')} |`,
    `|---|${header.map(() => '---:').join('|')}|`,
    ...rows.map(
      (r) =>
        `| ${r.operation} | ${r.perSize.map((c) => `${mib(c.clientRssMiB)} / ${mib(c.regionRssMiB)}`).join(' | ')} |`,
    ),
    '',
    `| requests per GiB: S3 / DynamoDB | ${header.join(' | ')} |`,
    `|---|${header.map(() => '---:').join('|')}|`,
    ...rows.map(
      (r) =>
        `| ${r.operation} | ${r.perSize.map((c) => `${fixed(c.s3PerGiB, 0)} / ${fixed(c.dynamodbPerGiB, 0)}`).join(' | ')} |`,
    ),
  ].join('\n');
  const result = {
    date: new Date().toISOString(),
    sizes,
    runs,
    loadAverages: loads,
    minutes,
    failures,
    rows,
  };
  await writeFile(join(root, 'bench', 'results-sizes.json'), `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(join(root, 'bench', 'results-sizes.md'), `${md}\n`);
  console.log(`\n${md}\n\nWritten to bench/results-sizes.json and .md.`);
}
