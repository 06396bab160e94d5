// Finds the local cloud's processes through its state file (never by their names in `ps`), and
// kills or stalls them as a host's bad day would.
import { readFileSync } from 'node:fs';
import type { CloudState, SupervisedState } from '../local-cloud/supervisor.ts';

/** What can be killed or stalled: a region's functions, its S3, DynamoDB Local's JVM or its guard (the SigV4 proxy). */
export type Target = 'region' | 's3' | 'dynamodb' | 'dynamodb-guard';

/** The local cloud's children, as its state file (`DIR/cloud-state.json`) says now. */
export function cloudState(stateFile: string): CloudState {
  return JSON.parse(readFileSync(stateFile, 'utf8')) as CloudState;
}

/** The pid of `target` in `region`, when it runs (undefined while it is being restarted). */
export function pidOf(stateFile: string, target: Target, region: string): number | undefined {
  const kind: SupervisedState['kind'] = target === 'dynamodb-guard' ? 'dynamodb' : target;
  const child = cloudState(stateFile).children.find((c) => c.kind === kind && c.region === region);
  if (!child) throw new Error(`The local cloud has no ${kind} in ${region}.`);
  // DynamoDB Local itself is the JVM its guard runs.
  return target === 'dynamodb' ? child.innerPids[0] : child.pid;
}

/** The restarts the supervisor made of `target`'s kind in `region`. */
export function restartsOf(stateFile: string, target: Target, region: string): number {
  const kind = target === 'dynamodb-guard' ? 'dynamodb' : target;
  return cloudState(stateFile).children.find((c) => c.kind === kind && c.region === region)?.restarts ?? 0;
}

/** Sends `signal`; false when the process was not there. */
export function signal(pid: number | undefined, name: NodeJS.Signals | 0): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits until the supervisor has replaced `target` after `pid` died: a new pid in the state file
 * that answers signal 0. Resolves with how long it took; rejects after `timeoutMs`.
 */
export async function waitForReplacement(
  stateFile: string,
  target: Target,
  region: string,
  pid: number,
  timeoutMs = 120_000,
): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    let now: number | undefined;
    try {
      now = pidOf(stateFile, target, region);
    } catch {
      now = undefined; // the file being replaced
    }
    if (now && now !== pid && signal(now, 0)) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${target} in ${region} was not replaced within ${timeoutMs / 1000} s.`);
}
