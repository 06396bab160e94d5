import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forkReady } from '../../../scripts/local-cloud/processes.ts';
import { type CloudState, Supervisor } from '../../../scripts/local-cloud/supervisor.ts';

const dir = mkdtempSync(join(tmpdir(), 'volsnap-supervisor-'));
// A child as the local cloud's are: it says it is ready, then lives until told to stop.
const childModule = join(dir, 'child.mjs');
writeFileSync(
  childModule,
  "process.send({ ready: true, port: 0 }); setInterval(() => {}, 1000); process.on('SIGTERM', () => process.exit(0)); process.on('disconnect', () => process.exit(0));\n",
);
const stateFile = join(dir, 'cloud-state.json');
const state = () => JSON.parse(readFileSync(stateFile, 'utf8')) as CloudState;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function replaced(pid: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const now = existsSync(stateFile) ? state().children[0]?.pid : undefined;
    if (now && now !== pid) return now;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('not replaced');
}

describe('the local cloud supervisor', () => {
  it('starts a killed child again, logs why with the restart count, backs off a crash loop, and stops it for good', async () => {
    const lines: string[] = [];
    const supervisor = new Supervisor({ log: (line) => lines.push(line), stateFile });
    const first = await supervisor.add(
      { name: 'region test-1', kind: 'region', region: 'test-1' },
      (onExit) => forkReady('child', childModule, [], { onExit }),
    );
    const firstPid = first.child.pid as number;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(state().children[0]).toMatchObject({ name: 'region test-1', pid: firstPid, restarts: 0 });
    process.kill(firstPid, 'SIGKILL');
    const second = await replaced(firstPid);
    expect(lines[0]).toMatch(
      /^\[supervisor\] region test-1 killed by SIGKILL after [\d.]+ s \(pid \d+\): starting a new one, restart 1$/,
    );
    // Dead again within a minute of its start: a crash loop, so the next start waits.
    process.kill(second, 'SIGKILL');
    const third = await replaced(second);
    expect(lines[1]).toMatch(/starting a new one in 1 s \(crash loop\), restart 2$/);
    expect(state().children[0]).toMatchObject({ pid: third, restarts: 2 });
    await supervisor.stop();
    expect(alive(third)).toBe(false);
    expect(existsSync(stateFile)).toBe(false);
    expect(lines).toHaveLength(2); // a stop is no crash
  });
});
