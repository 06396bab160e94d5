import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The pids of every living descendant of `pid` (from /proc). */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const child of parents.get(p) ?? []) {
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A started `npm start` equivalent: the local cloud as users run it, in its own process. */
export interface StartedCloud {
  process: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `bin/local-cloud.js ARGS` and resolves once it prints that it is ready (or fails). */
export function startCloudProcess(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<StartedCloud> {
  const child = spawn(process.execPath, [`${ROOT}bin/local-cloud.js`, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('is ready')) resolve({ process: child, output: () => output, exited });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) =>
      reject(new Error(`local cloud exited with ${code} before it was ready:\n${output}`)),
    );
  }).then(
    (started) => started as StartedCloud,
    (error) => {
      // Resolve to a failed start so tests can assert on the message; shaped like a started cloud
      // (its output, its exited process), so that an afterAll that saves the output still can.
      return Object.assign(error as Error, { output: () => output, exited, process: child }) as never;
    },
  );
}

/** Runs the CLI; resolves with its exit code and output (never rejects on a non-zero exit). */
/**
 * The bundled CLI the e2e setup builds (inside the repository, so it finds zstd-napi), one per
 * checkout: worktrees sharing one node_modules must not run each other's build.
 */
export const CLI_BUNDLE = `${ROOT}node_modules/.cache/volsnap-e2e-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}/volsnap.mjs`;

export async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      // The bundle when the e2e setup built it; the sources through tsx otherwise.
      [existsSync(CLI_BUNDLE) ? CLI_BUNDLE : `${ROOT}bin/volsnap.js`, ...args],
      { cwd: ROOT, env },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** `pid command-line state`, for messages about processes that should not be there. */
export function describeProcess(pid: number): string {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return `${pid} ${cmdline} (state ${stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)})`;
  } catch {
    return `${pid} (gone)`;
  }
}
