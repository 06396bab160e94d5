import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, formatFailure } from '../../../lib/cli/errors.ts';
import { ApiError } from '../../../lib/client/api-client.ts';
import { TransferError } from '../../../lib/client/transfer.ts';
import { ROOT } from '../../support/processes.ts';

// The CLI from its sources, with a config naming an endpoint where nothing listens: what is decided
// before any request (arguments, configuration), and a service that cannot be reached.
let dir: string;
let config: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volsnap-cli-errors-'));
  config = join(dir, 'config.json');
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  writeFileSync(
    config,
    JSON.stringify({
      defaultRegion: 'eu-west-1',
      regions: { 'eu-west-1': { endpoint: `http://127.0.0.1:${port}` } },
      defaultAccount: 'demo',
      accounts: { demo: { accountId: 'acct-0000000000000000', apiKey: 'vsk_key-0000000000000000.x' } },
    }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function volsnap(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, VOLSNAP_DEBUG: '', VOLSNAP_CONFIG: '' };
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [`${ROOT}bin/volsnap.js`, '--config', config, ...args],
      { cwd: dir, env },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The one `error: <code>: …` line a failure prints, with no stack frame. */
function errorLine(stderr: string, code: string): string {
  expect(stderr).not.toMatch(/^\s+at /m);
  const lines = stderr.split('\n').filter((line) => line !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^error: ${code.replace('.', '\\.')}: \\S`));
  return lines[0] as string;
}

/** The JSON error object a failure prints under --json: the API's shape. */
function errorJson(stderr: string, code: string): { error: string; message: string } {
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
  const body = JSON.parse(stderr);
  expect(body).toMatchObject({ error: code, message: expect.any(String) });
  return body;
}

describe('every CLI failure is one error line with a code, or a JSON error, never a stack', () => {
  it('volume create without --size (nor --snapshot)', async () => {
    const text = await volsnap('volume', 'create', '--name', 'disk');
    expect(text.code).toBe(2);
    expect(errorLine(text.stderr, 'request.invalid')).toBe(
      'error: request.invalid: give --size, or --snapshot to make the volume from a snapshot (see `volsnap volume create --help`)',
    );
    const json = await volsnap('--json', 'volume', 'create', '--name', 'disk');
    expect(json.code).toBe(2);
    expect(errorJson(json.stderr, 'request.invalid').message).toContain('give --size');
  });

  it('an unknown option, before or after --json', async () => {
    const text = await volsnap('volume', 'list', '--colour');
    expect(text.code).toBe(2);
    expect(errorLine(text.stderr, 'request.invalid')).toContain(
      "unknown option '--colour' (see `volsnap volume list --help`)",
    );
    for (const args of [
      ['--json', 'volume', 'list', '--colour'],
      ['volume', 'list', '--colour', '--json'],
    ]) {
      const json = await volsnap(...args);
      expect(json.code).toBe(2);
      expect(errorJson(json.stderr, 'request.invalid').message).toContain("unknown option '--colour'");
    }
  });

  it('a missing argument, a bad option value, an unknown command, a group without its command', async () => {
    const missing = await volsnap('snapshot', 'show');
    expect(errorLine(missing.stderr, 'request.invalid')).toContain("missing required argument 'snapshot-id'");
    const size = await volsnap('volume', 'create', '--name', 'disk', '--size', '10XB');
    expect(errorLine(size.stderr, 'request.invalid')).toContain("'10XB' is not a size");
    const unknown = await volsnap('snapshots');
    expect(errorLine(unknown.stderr, 'request.invalid')).toContain("unknown command 'snapshots'");
    const group = await volsnap('volume');
    expect(errorLine(group.stderr, 'request.invalid')).toBe(
      'error: request.invalid: `volsnap volume` needs a command: create, list, show, delete (see `volsnap volume --help`)',
    );
    for (const result of [missing, size, unknown, group]) expect(result.code).toBe(2);
    // Asking for help is no failure.
    const help = await volsnap('volume', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: volsnap volume');
    expect(help.stderr).toBe('');
  });

  it('a configuration problem exits 2; a service it cannot reach exits 5 (transient)', async () => {
    const account = await volsnap('--account', 'nobody', 'volume', 'list');
    expect(account.code).toBe(2);
    expect(errorLine(account.stderr, 'config.invalid')).toContain("No account 'nobody'");
    const json = await volsnap('--json', '--account', 'nobody', 'volume', 'list');
    expect(errorJson(json.stderr, 'config.invalid').message).toContain("No account 'nobody'");
    // Without retries (a refused connection is tried again for 10 s by default).
    const unreachable = await volsnap('--retry-for', '0', 'volume', 'list');
    expect(unreachable.code).toBe(5);
    expect(errorLine(unreachable.stderr, 'client.unreachable')).toContain('Cannot reach http://127.0.0.1:');
  });
});

describe('how a failure is described', () => {
  it('a transfer that failed (object storage gone) is transfer.failed, with its HTTP status if any', () => {
    const failure = describeFailure(
      new TransferError('upload failed after 5 attempts: connect ECONNREFUSED 127.0.0.1:5711'),
    );
    expect(failure).toMatchObject({ error: 'transfer.failed', exitCode: 5 });
    expect(formatFailure(failure as NonNullable<typeof failure>, false)).toBe(
      'error: transfer.failed: upload failed after 5 attempts: connect ECONNREFUSED 127.0.0.1:5711\n',
    );
    expect(describeFailure(new TransferError('download answered 403 Forbidden', 403))?.details).toEqual({
      status: 403,
    });
  });

  it('an unexpected error is internal, with its message; its stack only when asked for', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
    const plain = describeFailure(bug);
    expect(formatFailure(plain as NonNullable<typeof plain>, false)).toBe(
      "error: internal: Cannot read properties of undefined (reading 'x')\n",
    );
    const verbose = describeFailure(bug, { verbose: true });
    const printed = formatFailure(verbose as NonNullable<typeof verbose>, false);
    expect(printed.split('\n')[0]).toBe("error: internal: Cannot read properties of undefined (reading 'x')");
    expect(printed).toMatch(/^\s+at /m);
    expect(JSON.parse(formatFailure(verbose as NonNullable<typeof verbose>, true))).toMatchObject({
      error: 'internal',
      stack: expect.stringContaining('TypeError'),
    });
    expect(describeFailure('a thrown string')).toMatchObject({
      error: 'internal',
      message: 'a thrown string',
    });
  });

  it("the API's errors keep their code, request id and details; a file the system refuses is io.failed", () => {
    const api = describeFailure(
      new ApiError(409, 'volume.hasSnapshots', 'Volume vol-1 still has 1 snapshot(s).', 'req-1', {
        snapshotIds: ['snap-1'],
      }),
    );
    expect(api).toEqual({
      error: 'volume.hasSnapshots',
      message: 'Volume vol-1 still has 1 snapshot(s).',
      requestId: 'req-1',
      details: { snapshotIds: ['snap-1'] },
      exitCode: 4,
    });
    expect(formatFailure(api as NonNullable<typeof api>, false)).toBe(
      'error: volume.hasSnapshots: Volume vol-1 still has 1 snapshot(s). (request req-1)\n',
    );
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open '/dev/sdz'"), {
      code: 'ENOENT',
      syscall: 'open',
    });
    expect(describeFailure(enoent)).toMatchObject({ error: 'io.failed', exitCode: 3 });
  });
});
