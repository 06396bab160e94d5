import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { describeFailure, EXIT_CODES } from '../../../lib/cli/errors.ts';
import { ApiClient, ApiError } from '../../../lib/client/api-client.ts';
import { pollUntil, settle } from '../../../lib/client/poll.ts';
import { getObject, putObject, TransferError, watchTransfers } from '../../../lib/client/transfer.ts';
import { UploadJournal } from '../../../lib/client/upload-journal.ts';
import { VolsnapError } from '../../../lib/core/shared/errors.ts';
import { ROOT } from '../../support/processes.ts';

// A local HTTP server plays the API (or the object store) and fails as a bad day does: 503s, 429s
// with Retry-After, connections dropped before or after the request took effect, stalls.
let server: Server | undefined;
afterEach(
  () =>
    new Promise<void>((resolve) => {
      server?.closeAllConnections();
      return server ? server.close(() => resolve()) : resolve();
    }),
);

type Handler = Parameters<typeof createServer>[1] & {};
async function serve(handler: NonNullable<Handler>): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const snapshot = (state: string) => ({ snapshotId: 'snap-1', state, progress: 0, volumeSize: 1 });

describe('the exit code says the kind of failure', () => {
  const code = (error: unknown) => describeFailure(error)?.exitCode;
  it('usage 2, not found 3, conflict 4, transient 5, data 6, anything else 1', () => {
    expect(EXIT_CODES).toEqual({ failure: 1, usage: 2, notFound: 3, conflict: 4, transient: 5, data: 6 });
    expect(code(new ApiError(400, 'request.invalid', 'bad'))).toBe(2);
    expect(code(new ApiError(404, 'snapshot.notFound', 'no'))).toBe(3);
    expect(code(new VolsnapError('volume.notFound', 'no'))).toBe(3);
    expect(code(new ApiError(409, 'snapshot.invalidState', 'no'))).toBe(4);
    expect(code(new ApiError(409, 'idempotency.conflict', 'no'))).toBe(4);
    for (const transient of [
      new ApiError(503, 'storage.unavailable', 'later'),
      new ApiError(429, 'request.throttled', 'later'),
      new ApiError(500, 'internal', 'Internal error. Retry later'),
      new ApiError(0, 'client.unreachable', 'no answer'),
      new ApiError(0, 'client.timeout', 'no answer in time'),
      new TransferError('upload failed after 5 attempts: connect ECONNREFUSED'),
      new TransferError('upload stalled', undefined, 'transfer.stalled'),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' }),
    ])
      expect(code(transient), String(transient)).toBe(5);
    expect(code(new ApiError(400, 'snapshot.manifestInvalid', 'block 3 differs'))).toBe(6);
    expect(code(new VolsnapError('data.corrupt', 'bad bytes'))).toBe(6);
    expect(code(new TransferError('download answered 403 Forbidden', 403))).toBe(1);
    expect(code(new ApiError(403, 'access.denied', 'no'))).toBe(1);
    expect(code(new TypeError('a bug'))).toBe(1);
  });

  it('a reset outside the client is client.unreachable, not internal; a stack only with --debug', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' });
    expect(describeFailure(reset)).toMatchObject({ error: 'client.unreachable' });
    expect(describeFailure(reset)?.stack).toBeUndefined();
    const stalled = new TransferError('upload stalled', undefined, 'transfer.stalled');
    expect(describeFailure(stalled)).toMatchObject({ error: 'transfer.stalled', exitCode: 5 });
    expect(describeFailure(stalled, { verbose: true })?.stack).toContain('TransferError');
  });
});

describe('a wait on the service outlasts its transient failures', () => {
  it('a poll tries again after 503, 429 (waiting its Retry-After) and a reset, until the state settles', async () => {
    const answers = ['503', '429', 'reset', 'pending', '503', 'completed'];
    const seen: string[] = [];
    const endpoint = await serve((request, response) => {
      const answer = answers.shift() ?? 'completed';
      seen.push(answer);
      if (answer === 'reset') return void request.socket.destroy();
      if (answer === '503' || answer === '429') {
        response.writeHead(Number(answer), {
          'content-type': 'application/json',
          ...(answer === '429' ? { 'retry-after': '7' } : {}),
        });
        return void response.end(JSON.stringify({ error: 'storage.unavailable', message: 'later' }));
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(snapshot(answer)));
    });
    const waits: number[] = [];
    const sleep = async (ms: number) => void waits.push(ms);
    // The client's own retries are off here (retryForMs 0): the poll's are under test.
    const api = new ApiClient({ endpoint, sleep, retryForMs: 0 });
    const retried: string[] = [];
    const done = await pollUntil(
      () => api.getSnapshot('snap-1'),
      (s) => s.state !== 'pending',
      { sleep, onRetry: (error) => retried.push(error.code) },
    );
    expect(done.state).toBe('completed');
    expect(seen).toEqual(['503', '429', 'reset', 'pending', '503', 'completed']);
    // 503 without Retry-After backs off; the 429's Retry-After (7 s) is waited as it says.
    expect(waits).toContain(7000);
    expect(retried).toEqual([
      'storage.unavailable',
      'storage.unavailable',
      'client.unreachable',
      'storage.unavailable',
    ]);
  });

  it('a poll still throws what is not transient', async () => {
    const endpoint = await serve((_request, response) => {
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: 'snapshot.notFound', message: 'gone' }));
    });
    const api = new ApiClient({ endpoint, sleep: async () => {} });
    await expect(
      pollUntil(
        () => api.getSnapshot('snap-1'),
        () => false,
        { sleep: async () => {} },
      ),
    ).rejects.toMatchObject({ code: 'snapshot.notFound' });
  });
});

describe('a request whose answer is lost asks the service what happened', () => {
  it('complete: the answer dropped after it took effect, the snapshot read back says completed', async () => {
    let state = 'pending';
    const seen: string[] = [];
    const endpoint = await serve((request, response) => {
      seen.push(`${request.method} ${request.url}`);
      if (request.method === 'POST') {
        state = 'completed';
        return void request.socket.destroy();
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(snapshot(state)));
    });
    // The client's own retries are off (retryForMs 0): settle's asking is under test.
    const api = new ApiClient({ endpoint, sleep: async () => {}, retryForMs: 0 });
    const answered = await settle(
      () => api.completeSnapshot('snap-1', 'manifestUpload-1'),
      async () => {
        const now = await api.getSnapshot('snap-1');
        return now.state === 'pending' ? undefined : now;
      },
      { sleep: async () => {} },
    );
    expect(answered.state).toBe('completed');
    expect(seen).toEqual(['POST /v1/snapshots/snap-1/complete', 'GET /v1/snapshots/snap-1']);
  });

  it('a timeout is client.timeout; still pending means the request is sent again; a refusal is not retried', async () => {
    let posts = 0;
    const endpoint = await serve((request, response) => {
      if (request.method === 'POST' && ++posts === 1) return; // never answers: the client times out
      if (request.method === 'POST' && posts === 3) {
        response.writeHead(409, { 'content-type': 'application/json' });
        return void response.end(JSON.stringify({ error: 'snapshot.invalidState', message: 'no' }));
      }
      response.writeHead(request.method === 'POST' ? 202 : 200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(snapshot('pending')));
    });
    const api = new ApiClient({ endpoint, sleep: async () => {}, timeoutMs: 300, retryForMs: 0 });
    const lost = await api.completeSnapshot('snap-1').catch((e) => e);
    expect(lost).toMatchObject({ status: 0, code: 'client.timeout' });
    expect(describeFailure(lost)?.exitCode).toBe(5);
    const resent = await settle(
      () => api.completeSnapshot('snap-1'),
      async () => undefined,
      { sleep: async () => {} },
    );
    expect(resent.state).toBe('pending');
    expect(posts).toBe(2);
    await expect(
      settle(
        () => api.completeSnapshot('snap-1'),
        async () => undefined,
        { sleep: async () => {} },
      ),
    ).rejects.toMatchObject({ code: 'snapshot.invalidState' });
    expect(posts).toBe(3);
  });
});

describe('a transfer that stalls', () => {
  it('is noticed while it waits, and given up after the stall timeout as transfer.stalled, not retried', async () => {
    let requests = 0;
    // Takes the request, then answers nothing: object storage stopped (SIGSTOP) mid-transfer.
    const url = await serve(() => void requests++);
    const notices: (number | undefined)[] = [];
    watchTransfers({ stallTimeoutMs: 2500, noticeMs: 1000, onStall: (n) => notices.push(n?.idleSeconds) });
    try {
      const error = await putObject(`${url}/seg`, Buffer.alloc(1000), { ifNoneMatch: true }).catch((e) => e);
      expect(error).toBeInstanceOf(TransferError);
      expect(error).toMatchObject({ code: 'transfer.stalled' });
      expect(error.message).toContain('moved no byte for 3 s (see --stall-timeout)');
      expect(requests).toBe(1);
      expect(notices.filter((n) => n !== undefined).length).toBeGreaterThanOrEqual(1);
      // Cleared once the transfer is over.
      expect(notices.at(-1)).toBeUndefined();
      await expect(getObject(`${url}/seg`)).rejects.toMatchObject({ code: 'transfer.stalled' });
    } finally {
      watchTransfers({ stallTimeoutMs: 60_000, noticeMs: 5_000, onStall: undefined });
    }
  });
});

describe('the upload journal a rerun with the same client token resumes from', () => {
  it('knows a segment by its bytes, skips a line torn by a kill, and is gone once removed', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volsnap-journal-')), 'uploads');
    const first = await UploadJournal.open(dir, 'snap-1');
    const a = Buffer.alloc(100, 1);
    const b = Buffer.alloc(100, 2);
    await first.record('segment-a', UploadJournal.digest(a), a.length);
    appendFileSync(join(dir, 'snap-1.jsonl'), '{"segmentId":"segment-b","sha');
    const rerun = await UploadJournal.open(dir, 'snap-1');
    expect(rerun.storedAs(UploadJournal.digest(a), a.length)).toBe('segment-a');
    expect(rerun.storedAs(UploadJournal.digest(b), b.length)).toBeUndefined();
    expect(rerun.storedAs(UploadJournal.digest(a), a.length + 1)).toBeUndefined();
    expect((await UploadJournal.open(dir, 'snap-2')).storedAs(UploadJournal.digest(a), 100)).toBeUndefined();
    await rerun.remove();
    expect(existsSync(join(dir, 'snap-1.jsonl'))).toBe(false);
  });
});

describe('an export whose answer is lost (exports take no client token)', () => {
  it('is found among the exports of the snapshot listed afterwards, not asked for twice', async () => {
    const made = {
      exportId: 'export-1',
      snapshotId: 'snap-1',
      format: 'vsnap',
      key: 'exports/export-1.vsnap',
      state: 'pending',
      size: 1,
      progress: 0,
      createdAt: '2026-12-01T00:00:00.000Z',
    };
    let exports: (typeof made)[] = [];
    const seen: string[] = [];
    const endpoint = await serve((request, response) => {
      seen.push(`${request.method} ${request.url}`);
      if (request.method === 'POST') {
        exports = [made];
        return void request.socket.destroy();
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ exports }));
    });
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        `${ROOT}bin/volsnap.js`,
        '--endpoint',
        endpoint,
        '--json',
        'snapshot',
        'export',
        'snap-1',
        '--no-wait',
      ],
      { env: { ...process.env, VOLSNAP_CONFIG: '', VOLSNAP_DEBUG: '' } },
    );
    expect(JSON.parse(stdout)).toMatchObject({ exportId: 'export-1' });
    expect(seen).toEqual(['GET /v1/exports', 'POST /v1/snapshots/snap-1/export', 'GET /v1/exports']);
  });
});
