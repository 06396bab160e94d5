// The chaos monkey: at random (seeded) moments kills or stalls one of the local cloud's processes.
import { pidOf, signal, type Target } from './control.ts';

export interface MonkeyCounts {
  /** Kills by target, e.g. `region eu-west-1`: 3. */
  kills: Record<string, number>;
  stalls: Record<string, number>;
}

export interface MonkeyOptions {
  stateFile: string;
  regions: readonly string[];
  random: () => number;
  /** Time between two strikes: uniform in [min, max] ms. */
  everyMs: [number, number];
  /** How long a stalled process stays stopped: uniform in [min, max] ms. */
  stallMs: [number, number];
  log: (line: string) => void;
}

const KILLS: [Target, number][] = [
  ['region', 0.3],
  ['s3', 0.15],
  ['dynamodb', 0.08],
  ['dynamodb-guard', 0.07],
];
const STALLS: [Target, number][] = [
  ['s3', 0.2],
  ['dynamodb', 0.12],
  ['region', 0.08],
];

/**
 * Strikes until `until()` says stop, then resumes whatever it stalled. Kills are SIGKILL (the
 * supervisor starts a new process); stalls are SIGSTOP, then SIGCONT after the drawn time.
 */
export async function runMonkey(options: MonkeyOptions, until: () => boolean): Promise<MonkeyCounts> {
  const counts: MonkeyCounts = { kills: {}, stalls: {} };
  const stalled = new Set<number>();
  const pick = <T>(choices: readonly T[]) => choices[Math.floor(options.random() * choices.length)] as T;
  const between = ([min, max]: [number, number]) => min + options.random() * (max - min);
  try {
    while (!until()) {
      await sleep(between(options.everyMs));
      if (until()) break;
      const region = pick(options.regions);
      const roll = options.random();
      const kill = weighted(KILLS, roll);
      const stall = kill ? undefined : (weighted(STALLS, roll - sumOf(KILLS)) ?? 's3');
      const target = (kill ?? stall) as Target;
      const pid = pidOf(options.stateFile, target, region);
      const name = `${target} ${region}`;
      if (kill) {
        if (!signal(pid, 'SIGKILL')) continue; // being restarted already
        counts.kills[name] = (counts.kills[name] ?? 0) + 1;
        options.log(`chaos: SIGKILL ${name} (pid ${pid})`);
        continue;
      }
      const ms = between(options.stallMs);
      if (!pid || !signal(pid, 'SIGSTOP')) continue;
      stalled.add(pid);
      counts.stalls[name] = (counts.stalls[name] ?? 0) + 1;
      options.log(`chaos: SIGSTOP ${name} (pid ${pid}) for ${(ms / 1000).toFixed(1)} s`);
      setTimeout(() => {
        signal(pid, 'SIGCONT');
        stalled.delete(pid);
      }, ms);
    }
  } finally {
    for (const pid of stalled) signal(pid, 'SIGCONT');
  }
  return counts;
}

/** The choice whose band of [0, 1) `roll` falls in (bands in order, as wide as their weight). */
export function weighted<T>(choices: readonly [T, number][], roll: number): T | undefined {
  let left = roll;
  for (const [choice, weight] of choices) {
    if (left < weight) return choice;
    left -= weight;
  }
  return undefined;
}

function sumOf(choices: readonly [unknown, number][]): number {
  return choices.reduce((sum, [, weight]) => sum + weight, 0);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
