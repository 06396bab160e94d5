import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { putObject } from '../../../lib/client/transfer.ts';

/**
 * A store that answers PUTs as S3 does for a write-once key (`If-None-Match: *`: 412 once it
 * exists), and can drop the answer to the first PUT after storing it, as a connection reset does.
 */
let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

async function store(options: { dropFirstAnswer?: boolean; exists?: boolean }) {
  const seen: { ifNoneMatch: string | undefined; bytes: number }[] = [];
  let stored = options.exists ?? false;
  server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const ifNoneMatch = req.headers['if-none-match'];
      seen.push({
        ifNoneMatch: typeof ifNoneMatch === 'string' ? ifNoneMatch : undefined,
        bytes: Buffer.concat(chunks).length,
      });
      if (ifNoneMatch === '*' && stored) {
        res.writeHead(412).end();
        return;
      }
      stored = true;
      if (options.dropFirstAnswer && seen.length === 1) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { etag: '"e"' }).end();
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/segments/a/seg-x`, seen };
}

describe('write-once PUTs', () => {
  it('send If-None-Match: *, and count a 412 to a retry as the earlier attempt having landed', async () => {
    const s = await store({ dropFirstAnswer: true });
    await expect(putObject(s.url, Buffer.alloc(1000), { ifNoneMatch: true })).resolves.toBe('');
    expect(s.seen).toEqual([
      { ifNoneMatch: '*', bytes: 1000 },
      { ifNoneMatch: '*', bytes: 1000 },
    ]);
  });

  it('fail on a 412 to the first attempt: someone else wrote that key', async () => {
    const s = await store({ exists: true });
    await expect(putObject(s.url, Buffer.alloc(10), { ifNoneMatch: true })).rejects.toMatchObject({
      status: 412,
    });
    expect(s.seen).toHaveLength(1);
  });

  it('send no condition on other PUTs', async () => {
    const s = await store({});
    await expect(putObject(s.url, Buffer.alloc(10))).resolves.toBe('"e"');
    expect(s.seen).toEqual([{ ifNoneMatch: undefined, bytes: 10 }]);
  });
});
