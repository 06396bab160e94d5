// What the bench's parts share: its deterministic images, timing a command (with GNU time's peak
// RSS), a file's SHA-256, the shipped CLI's bundle, and the local cloud's region processes' peak RSS.
import { execFile, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dataCursor } from '../../lib/client/data-extents.ts';
import { cloudProcesses } from './cpu.ts';

export const BLOCK = 512 * 1024;
export const GiB = 2 ** 30;
export const run = promisify(execFile);

/**
 * Reads `path`'s data (not its holes) into the page cache and throws it away, so that the timed
 * command after it reads from memory whichever tool it is. On these machines a cold 1 GiB read from
 * disk took 21.6 s against 0.24 s warm, and the cache does not keep the bench's images between rows:
 * without this, a row's time was mostly how much of its input the rows before left cached (restic
 * backs up a copy it has just written). Memory: one 8 MiB buffer.
 */
export async function warmFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.allocUnsafe(8 * 2 ** 20);
    const cursor = await dataCursor(handle, size);
    for (let at = 0; at < size; ) {
      const range = cursor ? cursor.next(at) : { start: at, end: size };
      if (!range) break;
      for (let offset = range.start; offset < Math.min(range.end, size); offset += buffer.length) {
        const { bytesRead } = await handle.read(
          buffer,
          0,
          Math.min(buffer.length, range.end - offset),
          offset,
        );
        if (bytesRead === 0) break;
      }
      at = range.end;
    }
  } finally {
    await handle.close();
  }
}

/**
 * Writes the bench's image of `size` bytes (AES-CTR keystream, incompressible; a quarter of the
 * blocks zero, spread by a hash) to `path`, and with `changedPath` a second version with 1% of the
 * blocks rewritten. Deterministic: the same size gives the same bytes.
 */
export async function makeImages(size: number, path: string, changedPath?: string) {
  const blocks = size / BLOCK;
  const stream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16, 2));
  const changer = createCipheriv('aes-128-ctr', Buffer.alloc(16, 3), Buffer.alloc(16, 4));
  const zero = Buffer.alloc(BLOCK);
  const pick = (i: number, salt: string) =>
    createHash('sha256').update(`${salt}${i}`).digest().readUInt32LE(0);
  const a = await open(path, 'w');
  const b = changedPath === undefined ? undefined : await open(changedPath, 'w');
  let zeroBlocks = 0;
  let changedBlocks = 0;
  try {
    for (let i = 0; i < blocks; i++) {
      const data = stream.update(zero);
      const isZero = pick(i, 'zero') % 4 === 0;
      const block = isZero ? zero : data;
      if (isZero) zeroBlocks++;
      await a.write(block, 0, BLOCK, i * BLOCK);
      if (!b) continue;
      const isChanged = pick(i, 'change') % 100 === 0;
      if (isChanged) changedBlocks++;
      await b.write(isChanged ? changer.update(zero) : block, 0, BLOCK, i * BLOCK);
    }
  } finally {
    await a.close();
    await b?.close();
  }
  return { zeroBlocks, changedBlocks };
}

const hasTime = existsSync('/usr/bin/time');

/** Runs a command to its end; its wall time and (with GNU time) its peak RSS and CPU seconds (user + system). */
export function time(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ seconds: number; stdout: string; maxRssKiB?: number; cpuSeconds?: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const [cmd, argv] = hasTime
      ? ['/usr/bin/time', ['-f', 'bench-maxrss-kib %M bench-cpu-s %U %S', command, ...args]]
      : [command, args];
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`));
      const rss = /bench-maxrss-kib (\d+)/.exec(stderr)?.[1];
      const cpu = /bench-cpu-s ([\d.]+) ([\d.]+)/.exec(stderr);
      resolve({
        seconds,
        stdout,
        maxRssKiB: rss ? Number(rss) : undefined,
        cpuSeconds: cpu ? Number(cpu[1]) + Number(cpu[2]) : undefined,
      });
    });
  });
}

export async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export const median = (xs: number[]) =>
  [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** The CLI as shipped: one bundled module (npm run build:cli), not the sources through tsx. */
export async function buildCli(root: string, target: string): Promise<string> {
  await run(process.execPath, [join(root, 'scripts/build-cli.js'), target], { cwd: root });
  return target;
}

/** Server time of a record the CLI printed: from `createdAt` to `completedAt`, seconds. */
export const serverSeconds = (record: { createdAt: string; completedAt: string }) =>
  (Date.parse(record.completedAt) - Date.parse(record.createdAt)) / 1000;

/**
 * The peak RSS of the local cloud's region processes (each runs its region's functions in process),
 * reset before an operation and read after: Linux keeps it as VmHWM and clears it on `5` written
 * to /proc/PID/clear_refs. Where that is not allowed, the peak since the process started.
 */
export class RegionMemory {
  readonly #stateFile: string;

  constructor(stateFile: string) {
    this.#stateFile = stateFile;
  }

  async #pids(): Promise<number[]> {
    return (await cloudProcesses(this.#stateFile)).region ?? [];
  }

  async reset(): Promise<void> {
    for (const pid of await this.#pids()) await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => {});
  }

  /** The largest peak of any region process since the last reset, MiB. */
  async peakMiB(): Promise<number | undefined> {
    let peak: number | undefined;
    for (const pid of await this.#pids()) {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
      if (Number.isFinite(kib)) peak = Math.max(peak ?? 0, Math.round(kib / 1024));
    }
    return peak;
  }
}
