import { spawn } from 'node:child_process';

/** One CLI run: its exit code (null when it had to be killed at the timeout), output and time. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `command args`, killing it (SIGKILL) after `timeoutMs`: a CLI that hangs is a finding, not a hung run. */
export function runCli(
  command: readonly string[],
  args: readonly string[],
  timeoutMs: number,
): Promise<CliRun> {
  const started = Date.now();
  const [file, ...prefix] = command;
  const child = spawn(file as string, [...prefix, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? null : code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The last line of a CLI's stderr that says something (its `error:` line, when it failed). */
export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.at(-1)?.slice(0, 300) ?? '';
}

/** Whether output holds a JavaScript stack trace (the CLI prints one only with --debug). */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+[(:]\d+/m.test(text) && /Error\b/.test(text);
}
