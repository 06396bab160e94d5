import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  httpRemoteOpener,
  isPublicAddress,
  pinnedFetch,
  pinnedLookup,
} from '../../../../lib/adapters/http/remote.ts';

// The URLs an import may read (lib/adapters/http/remote.ts); the importer's own refusals are in imports.test.ts.
describe('import URLs', () => {
  it('refuse private, loopback and link-local addresses (server-side request forgery), unless allowed', async () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.20.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '::1',
      'fe80::1',
      'fd00::1',
      '0.0.0.0',
    ])
      expect(isPublicAddress(address), address).toBe(false);
    for (const address of ['93.184.216.34', '2606:4700::1111'])
      expect(isPublicAddress(address), address).toBe(true);
    const fetched: string[] = [];
    const fakeFetch = (async (url: URL) => {
      fetched.push(String(url));
      return new Response(new Uint8Array([7, 8]), {
        status: 206,
        headers: { 'content-range': 'bytes 0-1/4096' },
      });
    }) as unknown as typeof fetch;
    const opener = httpRemoteOpener({ fetch: fakeFetch, allow: ['127.0.0.1:4511'] });
    await expect(opener('http://169.254.169.254/latest/meta-data')).rejects.toMatchObject({
      code: 'import.sourceForbidden',
    });
    await expect(opener('http://127.0.0.1:4512/x')).rejects.toMatchObject({ code: 'import.sourceForbidden' });
    await expect(opener('http://[::1]:80/x')).rejects.toMatchObject({ code: 'import.sourceForbidden' });
    await expect(opener('file:///etc/passwd')).rejects.toMatchObject({ code: 'request.invalid' });
    expect(fetched).toEqual([]);
    expect((await opener('http://127.0.0.1:4511/bucket/key')).size).toBe(4096);
  });

  it('refuse every non-global address of the IANA special-purpose registries, and IPv6 forms carrying an internal IPv4', () => {
    for (const address of [
      '::127.0.0.1', // IPv4-compatible (::/96), as URLs write it
      '::7f00:1',
      '64:ff9b::7f00:1', // NAT64 of 127.0.0.1
      '64:ff9b::a9fe:a9fe', // NAT64 of 169.254.169.254
      '64:ff9b:1::5db8:d822', // local-use NAT64
      '2002:7f00:1::1', // 6to4 of 127.0.0.1
      '2002:a9fe:a9fe::1', // 6to4 of 169.254.169.254
      '2001:0:4136:e378:8000:63bf:3fff:fdd2', // Teredo
      '2001:db8::1',
      '3fff::1',
      '100::1',
      '5f00::1',
      'fec0::1',
      'ff02::1',
      '::ffff:10.0.0.1',
      '::',
      '192.0.0.8',
      '192.0.2.1',
      '192.88.99.1',
      '198.18.0.1',
      '198.51.100.7',
      '203.0.113.9',
      '100.64.0.1',
      '255.255.255.255',
      'fe80::1%lo',
    ])
      expect(isPublicAddress(address), address).toBe(false);
    for (const address of ['1.1.1.1', '2a00:1450:4001::1', '2002:5db8:d822::1', '64:ff9b::5db8:d822'])
      expect(isPublicAddress(address), address).toBe(true);
  });

  it('refuse URLs naming those addresses before any request', async () => {
    const fetched: string[] = [];
    const opener = httpRemoteOpener({
      fetch: (async (url: URL) => {
        fetched.push(String(url));
        return new Response('x', { status: 206, headers: { 'content-range': 'bytes 0-0/1' } });
      }) as unknown as typeof fetch,
    });
    for (const url of [
      'http://[::127.0.0.1]:5695/',
      'http://[64:ff9b::7f00:1]:5695/',
      'http://[2002:7f00:1::1]/',
    ])
      await expect(opener(url), url).rejects.toMatchObject({ code: 'import.sourceForbidden' });
    expect(fetched).toEqual([]);
  });

  it('connect only to the address checked: a name that resolves to a public address, then to 127.0.0.1, never reaches 127.0.0.1 (DNS rebinding)', async () => {
    let trapped = 0;
    const trap = createServer((_request, response) => {
      trapped++;
      response.writeHead(206, { 'content-range': 'bytes 0-0/4096' });
      response.end('x');
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
    const port = (trap.address() as AddressInfo).port;
    const answers = ['1.1.1.1', '127.0.0.1'];
    let resolved = 0;
    try {
      const opener = httpRemoteOpener({
        resolve: async () => [answers[Math.min(resolved++, answers.length - 1)] ?? ''],
        timeoutMs: 300,
      });
      // The connection goes to 1.1.1.1 (unreachable here, or not a volsnap source): it fails,
      // and whatever it is, it is not the trap.
      await expect(opener(`http://rebind.example:${port}/x`)).rejects.toBeInstanceOf(Error);
      expect(resolved).toBe(1);
      expect(trapped).toBe(0);
      // The pinned lookup answers every connection with the checked address, whatever it is asked.
      const lookup = pinnedLookup(['1.1.1.1']);
      const all = await new Promise((resolve) =>
        lookup('rebind.example', { all: true }, (_error: unknown, addresses: unknown) => resolve(addresses)),
      );
      expect(all).toEqual([{ address: '1.1.1.1', family: 4 }]);
      // And the pinned transport reads from the pinned address whatever the URL's name resolves to.
      const response = await pinnedFetch(['127.0.0.1'])(new URL(`http://not-resolvable.invalid:${port}/x`), {
        headers: { range: 'bytes=0-0' },
      });
      expect(response.status).toBe(206);
      expect(response.headers.get('content-range')).toBe('bytes 0-0/4096');
      expect(await response.text()).toBe('x');
      expect(trapped).toBe(1);
    } finally {
      await new Promise<void>((resolve) => trap.close(() => resolve()));
    }
  });

  it('refuse URLs that answer an error or serve no ranges, saying which', async () => {
    const answer = (status: number) =>
      httpRemoteOpener({
        allow: ['127.0.0.1:9'],
        fetch: (async () => new Response('x', { status })) as unknown as typeof fetch,
      })('http://127.0.0.1:9/x');
    await expect(answer(403)).rejects.toMatchObject({ code: 'import.sourceUnreadable', message: /403/ });
    await expect(answer(404)).rejects.toMatchObject({ code: 'import.sourceUnreadable', message: /404/ });
    await expect(answer(200)).rejects.toMatchObject({
      code: 'import.sourceUnreadable',
      message: /byte ranges/,
    });
  });

  it('probe with two bytes and read no more than each range asks, whatever the server sends', async () => {
    const object = Buffer.alloc(3 * 1024 * 1024, 7);
    const ranges: string[] = [];
    let overSend = false;
    // Like s3rver: `bytes=0-0` answers the whole object (its end 0 is taken for none).
    const server = createServer((request, response) => {
      const range = String(request.headers.range ?? '');
      ranges.push(range);
      const [start = 0, end = 0] = range.replace('bytes=', '').split('-').map(Number);
      const last = (end || object.length - 1) + (overSend ? 1024 : 0);
      response.writeHead(206, { 'content-range': `bytes ${start}-${last}/${object.length}` });
      response.end(object.subarray(start, last + 1));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const remote = await httpRemoteOpener({ allow: [`127.0.0.1:${port}`] })(`http://127.0.0.1:${port}/x`);
      expect(remote.size).toBe(object.length);
      expect(ranges).toEqual(['bytes=0-1']);
      expect(Buffer.from(await remote.range(1024, 1030)).equals(object.subarray(1024, 1030))).toBe(true);
      // Into a buffer given (a view of it), or bytes of its own when the range does not fit it.
      const into = Buffer.alloc(8192, 1);
      const read = await remote.range(2000, 6096, into);
      expect(read.buffer).toBe(into.buffer);
      expect(Buffer.from(read).equals(object.subarray(2000, 6096))).toBe(true);
      const own = await remote.range(0, 10_000, into);
      expect(own.buffer).not.toBe(into.buffer);
      expect(Buffer.from(own).equals(object.subarray(0, 10_000))).toBe(true);
      overSend = true;
      await expect(remote.range(0, 4096)).rejects.toMatchObject({
        code: 'storage.unavailable',
        message: /sent more/,
      });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
