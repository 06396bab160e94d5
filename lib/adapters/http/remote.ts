import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { VolsnapError } from '../../core/errors.ts';
import type { RemoteObject, RemoteOpener } from '../../core/imports.ts';

/** Addresses an import must not reach unless allowed: loopback, private, link-local, unspecified, multicast, CGNAT. */
const FORBIDDEN = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  FORBIDDEN.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  FORBIDDEN.addSubnet(network, prefix, 'ipv6');

/** Whether an import may reach `address` (an IPv4 or IPv6 literal). */
export function isPublicAddress(address: string): boolean {
  // An IPv4-mapped IPv6 address is its IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return isPublicAddress(mapped);
  const family = isIP(address);
  if (family === 0) return false;
  return !FORBIDDEN.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export interface HttpRemoteOptions {
  /** `host:port` pairs that may be fetched even though they resolve to forbidden addresses (the local cloud's emulators). */
  allow?: readonly string[];
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/**
 * Opens http(s) URLs for ranged reads, refusing server-side request forgery: a host that resolves
 * to a loopback, private, link-local or otherwise internal address is refused unless its
 * `host:port` is allowed. Redirects are not followed (a public URL could redirect inward).
 */
export function httpRemoteOpener(options: HttpRemoteOptions = {}): RemoteOpener {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;
  return async (text: string): Promise<RemoteObject> => {
    const url = new URL(text);
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new VolsnapError('request.invalid', 'Import from http(s) URLs only.');
    if (url.username !== '' || url.password !== '')
      throw new VolsnapError(
        'request.invalid',
        'The import URL carries a user name or password (user:pass@): volsnap does not send credentials. Use a presigned URL or a public one.',
      );
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    if (!(options.allow ?? []).includes(`${host}:${port}`)) {
      const addresses = isIP(host)
        ? [host]
        : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
      if (addresses.length === 0)
        throw new VolsnapError('import.sourceUnreadable', `The import URL's host ${host} does not resolve.`);
      const inward = addresses.find((a) => !isPublicAddress(a));
      if (inward) {
        throw new VolsnapError(
          'import.sourceForbidden',
          `The import URL's host ${host} resolves to ${inward}, a private, loopback or link-local address: volsnap does not fetch those.`,
        );
      }
    }
    const get = async (start: number, end: number): Promise<Response> => {
      let response: Response | undefined;
      // Network failures (a reused connection the server just closed) are retried a few times
      // before the part is given back to the queue.
      for (let attempt = 0; !response; attempt++) {
        try {
          response = await doFetch(url, {
            headers: { range: `bytes=${start}-${end - 1}` },
            redirect: 'manual',
            signal: AbortSignal.timeout(timeoutMs),
          });
        } catch (cause) {
          if (attempt < 3) {
            await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
            continue;
          }
          throw new VolsnapError(
            'storage.unavailable',
            `The import URL did not answer (${(cause as Error).message}).`,
            {
              cause,
            },
          );
        }
      }
      if (response.status === 206) return response;
      await response.arrayBuffer().catch(() => undefined);
      if (response.status === 200)
        throw new VolsnapError(
          'import.sourceUnreadable',
          'The import URL does not serve byte ranges (it answered 200 to a ranged GET).',
        );
      if (response.status >= 500 || response.status === 429)
        throw new VolsnapError(
          'storage.unavailable',
          `The import URL answered ${response.status}; retrying.`,
        );
      throw new VolsnapError(
        'import.sourceUnreadable',
        `The import URL answered ${response.status} ${response.statusText}.`,
      );
    };
    const probe = await get(0, 1);
    const size = Number(/\/(\d+)$/.exec(probe.headers.get('content-range') ?? '')?.[1]);
    await probe.arrayBuffer();
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new VolsnapError(
        'import.sourceUnreadable',
        'The import URL does not say its size (Content-Range).',
      );
    return {
      size,
      range: async (start, end) => {
        const bytes = new Uint8Array(await (await get(start, end)).arrayBuffer());
        if (bytes.length !== end - start)
          throw new VolsnapError(
            'storage.unavailable',
            `Asked the import URL for ${end - start} bytes, got ${bytes.length}.`,
          );
        return bytes;
      },
    };
  };
}
