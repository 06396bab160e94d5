// Where an operation's CPU went: the seconds of CPU (user + system) each process of the local cloud
// used during it, read from /proc/PID/stat before and after (Linux). On a machine of 2 cores the
// sum over processes bounds the wall time from below (sum ÷ cores), which is what the bench's
// notes on its targets cite: "the full snapshot used 3.1 CPU-s in the CLI, 2.4 in s3rver…".
import { readFile } from 'node:fs/promises';
import type { CloudState } from '../local-cloud/supervisor.ts';

/** CPU seconds per process kind, summed over the regions (`cli`, `region`, `s3`, `dynamodb`, `guard`, …). */
export type CpuSeconds = Record<string, number>;

/** Clock ticks per second of /proc's times: 100 on every Linux build this runs on (USER_HZ). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a live process has used, or undefined when it is not there (or not Linux). */
export async function processCpuSeconds(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  // Fields after the command name (which may hold spaces, so split after its closing parenthesis):
  // state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / TICKS_PER_SECOND : undefined;
}

/** The processes to watch: kind → pids. */
export type Watched = Record<string, number[]>;

/**
 * The local cloud's processes by kind, from its state file: `region` (the functions), `s3`
 * (s3rver), `dynamodb` (DynamoDB Local's JVM) and `guard` (its SigV4 proxy, which also counts
 * requests), plus `local cloud` for this process (the supervisor, the queues' dispatcher).
 */
export async function cloudProcesses(stateFile: string): Promise<Watched> {
  const state = JSON.parse(await readFile(stateFile, 'utf8')) as CloudState;
  const watched: Watched = { region: [], s3: [], dynamodb: [], guard: [], 'local cloud': [process.pid] };
  for (const child of state.children) {
    if (child.pid === undefined) continue;
    if (child.kind === 'dynamodb') {
      watched.guard?.push(child.pid);
      watched.dynamodb?.push(...child.innerPids);
    } else watched[child.kind]?.push(child.pid);
  }
  return watched;
}

async function sample(watched: Watched): Promise<Map<number, number>> {
  const seconds = new Map<number, number>();
  for (const pids of Object.values(watched))
    for (const pid of pids) {
      const used = await processCpuSeconds(pid);
      if (used !== undefined) seconds.set(pid, used);
    }
  return seconds;
}

/** What each kind used between two samples. A process gone by the second counts nothing: its use since the first is lost (the bench restarts none). */
export function cpuBetween(
  watched: Watched,
  before: ReadonlyMap<number, number>,
  after: ReadonlyMap<number, number>,
): CpuSeconds {
  const used: CpuSeconds = {};
  for (const [kind, pids] of Object.entries(watched)) {
    let total = 0;
    for (const pid of pids) total += Math.max(0, (after.get(pid) ?? 0) - (before.get(pid) ?? 0));
    used[kind] = Math.round(total * 100) / 100;
  }
  return used;
}

/** Measures the CPU the watched processes use while `work` runs. */
export async function cpuDuring<T>(
  watched: () => Promise<Watched>,
  work: () => Promise<T>,
): Promise<{ result: T; cpu: CpuSeconds }> {
  const processes = await watched();
  const before = await sample(processes);
  const result = await work();
  return { result, cpu: cpuBetween(processes, before, await sample(processes)) };
}

/** The total of a breakdown. */
export const cpuTotal = (cpu: CpuSeconds): number =>
  Math.round(Object.values(cpu).reduce((a, b) => a + b, 0) * 100) / 100;
