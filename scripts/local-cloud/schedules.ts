// The local cloud's schedules, kept apart from the region process that runs them. On AWS a rate
// schedule is an EventBridge rule: it fires on its rate whatever happens to the functions' containers.
// A region process here restarts (./supervisor.ts); were its timers to start over with each process,
// a process killed more often than a rate would never run that schedule (the reaper of a region
// whose process dies every 90 s never ran, and stranded work stayed pending). So when each schedule
// last fired is kept in a file of the data dir, and a new process fires what is due at once.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** When each schedule (`function rate(…)`) last fired, in epoch ms. */
export type ScheduleRuns = Record<string, number>;

/**
 * How long from `now` until a schedule of `rateMs` should next fire, given when it last fired
 * (undefined: never, a rule just made, which EventBridge first fires one rate later). A run that
 * is due or overdue (the process was down when it was due) fires at once: 0. Only one overdue run
 * fires, as EventBridge does not make up for missed ones either.
 */
export function nextRunDelayMs(lastRunMs: number | undefined, rateMs: number, nowMs: number): number {
  if (lastRunMs === undefined || lastRunMs > nowMs) return rateMs;
  return Math.max(0, lastRunMs + rateMs - nowMs);
}

/**
 * The file keeping {@link ScheduleRuns} (JSON, replaced whole by a rename so that a kill mid-write
 * leaves the old one). Unreadable or absent, no schedule has run yet. Written at each firing: a
 * few writes a minute.
 */
export class ScheduleRunsFile {
  constructor(readonly path: string) {}

  read(): ScheduleRuns {
    try {
      const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as unknown;
      if (!parsed || typeof parsed !== 'object') return {};
      return Object.fromEntries(
        Object.entries(parsed).filter((entry): entry is [string, number] => typeof entry[1] === 'number'),
      );
    } catch {
      return {};
    }
  }

  /** Records that `schedule` fired at `atMs` (the others as the file has them). */
  record(schedule: string, atMs: number): void {
    const runs = { ...this.read(), [schedule]: atMs };
    mkdirSync(dirname(this.path), { recursive: true });
    const temporary = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(runs)}\n`);
    renameSync(temporary, this.path);
  }
}
