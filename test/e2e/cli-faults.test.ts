import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BUNDLE, cli, descendants, type StartedCloud, startCloudProcess } from '../support/processes.ts';

// The CLI on a bad day, staged on the local cloud: an API answer lost after the request took
// effect (a proxy drops it), object storage stopped (SIGSTOP of the region's s3rver) and killed.
const R1 = 'eu-west-1';
const SIZE = 48 * 2 ** 20;
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-faults-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-faults-files-'));
const configPath = join(dataDir, 'config.json');
const imagePath = join(work, 'disk.img');
let cloud: StartedCloud;
let volumeId: string;
let proxy: Server | undefined;

const run = (...args: string[]) => cli(['--config', configPath, '--region', R1, ...args]);
const json = async (...args: string[]) => {
  const result = await run('--json', ...args);
  if (result.code !== 0) throw new Error(`volsnap ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
};

/**
 * The region's s3rver: the cloud's child whose emulator config serves the region. Its `regions`,
 * not any mention: the other region's s3rver names this one too, among the roles it accepts.
 */
function s3rverOf(region: string): number {
  const pid = cloud.process.pid ?? 0;
  const prefix = 'VOLSNAP_S3_EMULATOR=';
  for (const child of descendants(pid)) {
    try {
      const environ = readFileSync(`/proc/${child}/environ`, 'utf8').split('\0');
      const config = environ.find((v) => v.startsWith(prefix));
      const cmdline = readFileSync(`/proc/${child}/cmdline`, 'utf8');
      if (!config || !cmdline.includes('s3-emulator-process')) continue;
      const { regions } = JSON.parse(config.slice(prefix.length)) as { regions: string[] };
      if (regions.includes(region)) return child;
    } catch {
      // gone while we looked
    }
  }
  throw new Error(`no s3rver for ${region} among the cloud's children`);
}

/** Segments recorded in the (one) upload journal beside the config: what a CLI run has stored. */
function journalLines(): number {
  const journals = join(dataDir, 'uploads');
  const files = existsSync(journals) ? readdirSync(journals).filter((f) => f.endsWith('.jsonl')) : [];
  const text = files[0] ? readFileSync(join(journals, files[0]), 'utf8') : '';
  return text.split('\n').filter((line) => line.endsWith('}')).length;
}

/** Every line of stderr but the `warning:` notes, which must hold no stack frame. */
function failureLines(stderr: string): string[] {
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toMatch(/TransferError|node:internal/);
  return stderr.split('\n').filter((line) => line !== '' && !line.startsWith('warning: '));
}

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
  writeFileSync(imagePath, randomBytes(SIZE));
  volumeId = (await json('volume', 'create', '--name', 'disk', '--size', '48MiB')).volumeId;
});
afterAll(async () => {
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  proxy?.close();
  if (cloud?.process.exitCode === null) {
    cloud.process.kill('SIGINT');
    await cloud.exited;
  }
});

describe('the CLI tells the truth when the service or object storage fails', () => {
  it('a complete whose answer is lost after it took effect is read back and reported completed', async () => {
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    const api = new URL(config.regions[R1].endpoint);
    const completes: number[] = [];
    const gets: string[] = [];
    // Forwards everything to the API; the answer to `complete` is dropped once the API gave it.
    proxy = createServer((request, response) => {
      const lose = request.method === 'POST' && /\/complete$/.test(request.url ?? '');
      if (lose) completes.push(Date.now());
      if (request.method === 'GET' && completes.length > 0) gets.push(request.url ?? '');
      const upstream = httpRequest(
        {
          host: api.hostname,
          port: api.port,
          path: request.url,
          method: request.method,
          headers: request.headers,
        },
        (answer) => {
          if (lose) {
            answer.resume();
            answer.on('end', () => request.socket.destroy());
            return;
          }
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        },
      );
      request.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy?.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const result = await run(
      '--endpoint',
      endpoint,
      '--json',
      'snapshot',
      'create',
      '--volume',
      volumeId,
      '--file',
      imagePath,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const snapshot = JSON.parse(result.stdout);
    expect(snapshot.state).toBe('completed');
    expect(completes).toHaveLength(1);
    expect(gets).toContain(`/v1/snapshots/${snapshot.snapshotId}`);
    expect((await json('snapshot', 'show', snapshot.snapshotId)).state).toBe('completed');
  });

  it('object storage stopped mid-create: the CLI says it stalled, then gives up after --stall-timeout', async () => {
    const s3 = s3rverOf(R1);
    process.kill(s3, 'SIGSTOP');
    let result: Awaited<ReturnType<typeof run>>;
    try {
      result = await run(
        'snapshot',
        'create',
        '--volume',
        volumeId,
        '--file',
        imagePath,
        '--stall-timeout',
        '8',
      );
    } finally {
      process.kill(s3, 'SIGCONT');
    }
    expect(result.stderr).toMatch(
      /^warning: snapshot stalled: no byte moved for \d+ s \(giving up after 8 s, --stall-timeout\)$/m,
    );
    const lines = failureLines(result.stderr);
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^error: transfer\.stalled: (upload|download) stalled: object storage moved no byte for 8 s/,
    );
    expect(result.code).toBe(5);
  });

  it('a rerun with the same --client-token after a killed CLI uploads only the segments not stored yet', async () => {
    const big = join(work, 'big.img');
    const bytes = randomBytes(128 * 2 ** 20);
    writeFileSync(big, bytes);
    const volume = (await json('volume', 'create', '--name', 'big', '--size', '128MiB')).volumeId;
    const args = ['snapshot', 'create', '--volume', volume, '--file', big, '--client-token', 'resume-1'];
    const child = spawn(
      process.execPath,
      [CLI_BUNDLE, '--config', configPath, '--region', R1, ...args, '--concurrency', '1'],
      { stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const recorded = journalLines;
    // Killed once it recorded two uploaded segments (of about eight).
    while (recorded() < 2 && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 20));
    child.kill('SIGKILL');
    expect(await exited).toBeNull();
    const storedBefore = recorded();
    expect(storedBefore).toBeGreaterThanOrEqual(2);

    const rerun = await json(...args);
    expect(rerun.state).toBe('completed');
    const { report } = rerun;
    expect(report.alreadyStoredSegments).toBe(storedBefore);
    expect(report.uploadedSegments).toBe(report.segments - storedBefore);
    expect(report.uploadedSegments).toBeGreaterThan(0);
    // The journal is gone once the snapshot completed, and the snapshot restores byte for byte.
    expect(recorded()).toBe(0);
    const restored = join(work, 'big-restored.img');
    expect((await run('snapshot', 'restore', rerun.snapshotId, '--to', restored)).code).toBe(0);
    expect(readFileSync(restored).equals(bytes)).toBe(true);
  });

  it('a rerun with the same --client-token from another host (no journal there) uploads only the segments the service does not have', async () => {
    const big = join(work, 'other-host.img');
    const bytes = randomBytes(128 * 2 ** 20);
    writeFileSync(big, bytes);
    const volume = (await json('volume', 'create', '--name', 'moved', '--size', '128MiB')).volumeId;
    const args = ['snapshot', 'create', '--volume', volume, '--file', big, '--client-token', 'resume-2'];
    const child = spawn(
      process.execPath,
      [CLI_BUNDLE, '--config', configPath, '--region', R1, ...args, '--concurrency', '1'],
      { stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // Killed once this host's journal holds two segments: each was reported to the service first.
    while (journalLines() < 2 && child.exitCode === null)
      await new Promise((resolve) => setTimeout(resolve, 20));
    child.kill('SIGKILL');
    expect(await exited).toBeNull();
    const storedBefore = journalLines();
    expect(storedBefore).toBeGreaterThanOrEqual(2);
    // This host's journal goes (the host is gone); the rerun runs on another, with a config of its own.
    rmSync(join(dataDir, 'uploads'), { recursive: true, force: true });
    const otherHost = mkdtempSync(join(tmpdir(), 'volsnap-e2e-other-host-'));
    copyFileSync(configPath, join(otherHost, 'config.json'));
    const rerun = await cli(['--config', join(otherHost, 'config.json'), '--region', R1, '--json', ...args]);
    expect(rerun.code, rerun.stderr).toBe(0);
    const answer = JSON.parse(rerun.stdout);
    expect(answer.state).toBe('completed');
    const { report } = answer;
    console.log(
      `Rerun from another host: ${report.alreadyStoredSegments} of ${report.segments} segments were already stored (this host's journal had ${storedBefore}), ${report.uploadedSegments} uploaded.`,
    );
    expect(report.alreadyStoredSegments).toBeGreaterThanOrEqual(storedBefore);
    expect(report.uploadedSegments).toBe(report.segments - report.alreadyStoredSegments);
    expect(report.uploadedSegments).toBeGreaterThan(0);
    const restored = join(work, 'other-host-restored.img');
    expect((await run('snapshot', 'restore', answer.snapshotId, '--to', restored)).code).toBe(0);
    expect(readFileSync(restored).equals(bytes)).toBe(true);
  });

  it('object storage killed mid-create: the cloud starts it again, and the CLI completes or says why in one line (exit 5), no stack', async () => {
    const file = join(work, 'killed.img');
    const bytes = randomBytes(128 * 2 ** 20);
    writeFileSync(file, bytes);
    const volume = (await json('volume', 'create', '--name', 'killed', '--size', '128MiB')).volumeId;
    const token = 'killed-1';
    const args = ['snapshot', 'create', '--volume', volume, '--file', file, '--client-token', token];
    const child = spawn(process.execPath, [CLI_BUNDLE, '--config', configPath, '--region', R1, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    // Killed once the CLI is under way: its first segment stored (its journal says so), more in flight.
    while (journalLines() < 1 && child.exitCode === null)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const killed = s3rverOf(R1);
    process.kill(killed, 'SIGKILL');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const lines = failureLines(stderr);
    // The local cloud starts a killed s3rver again, as S3 would still be there: the CLI's retried
    // uploads may then carry the snapshot to completion. Either way it tells the truth.
    const snapshot = (await json('snapshot', 'list', '--volume', volume))[0];
    if (code === 0) {
      expect(lines, stderr).toEqual([]);
      expect(snapshot?.state).toBe('completed');
      const restored = join(work, 'killed-restored.img');
      expect((await run('snapshot', 'restore', snapshot.snapshotId, '--to', restored)).code).toBe(0);
      expect(readFileSync(restored).equals(bytes)).toBe(true);
    } else {
      expect(lines, stderr).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^error: (transfer\.failed|client\.unreachable|client\.timeout|storage\.unavailable|internal): \S/,
      );
      expect(code).toBe(5);
      expect(snapshot?.state).not.toBe('completed');
    }
    // And it was started again: another s3rver serves the region.
    let again: number | undefined;
    for (let i = 0; i < 150 && (again === undefined || again === killed); i++) {
      again = (() => {
        try {
          return s3rverOf(R1);
        } catch {
          return undefined;
        }
      })();
      if (again === undefined || again === killed) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(again).toBeDefined();
    expect(again).not.toBe(killed);
  });
});
