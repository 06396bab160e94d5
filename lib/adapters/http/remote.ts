import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { VolsnapError } from '../../core/shared/errors.ts';
import type { RemoteObject, RemoteOpener } from '../../core/tasks/imports.ts';

/**
 * Addresses an import must not reach unless allowed: everything the IANA special-purpose registries
 * (RFC 6890 and successors) do not mark globally reachable. IPv6 outside 2000::/3 (global unicast)
 * is refused whole; the IPv6 forms that carry an IPv4 address (mapped, NAT64 64:ff9b::/96, 6to4
 * 2002::/16) are judged by that address.
 */
const FORBIDDEN_V4 = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // shared address space (CGNAT)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation (TEST-NET-1)
  ['192.31.196.0', 24], // AS112-v4
  ['192.52.193.0', 24], // AMT
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // private
  ['192.175.48.0', 24], // direct delegation AS112
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation (TEST-NET-2)
  ['203.0.113.0', 24], // documentation (TEST-NET-3)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the limited broadcast address
] as const)
  FORBIDDEN_V4.addSubnet(network, prefix, 'ipv4');

const GLOBAL_UNICAST_V6 = new BlockList();
GLOBAL_UNICAST_V6.addSubnet('2000::', 3, 'ipv6');
const FORBIDDEN_V6 = new BlockList();
for (const [network, prefix] of [
  ['2001::', 23], // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID…
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: judged by its IPv4 address below, never reached directly
  ['2620:4f:8000::', 48], // direct delegation AS112
  ['3fff::', 20], // documentation
] as const)
  FORBIDDEN_V6.addSubnet(network, prefix, 'ipv6');

/** The eight 16-bit groups of an IPv6 literal (`::`, a dotted IPv4 tail and a zone allowed). */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.replace(/%.*$/, '').toLowerCase();
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const head = parse(halves[0] ?? '');
  const rest = halves.length === 2 ? parse(halves[1] ?? '') : [];
  const groups =
    halves.length === 2 ? [...head, ...Array(8 - head.length - rest.length).fill(0), ...rest] : head;
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff)
    ? groups
    : undefined;
}

const ipv4Of = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;

/** Whether an import may reach `address` (an IPv4 or IPv6 literal). */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address.replace(/%.*$/, ''));
  if (family === 4) return !FORBIDDEN_V4.check(address, 'ipv4');
  if (family !== 6) return false;
  const g = ipv6Groups(address);
  if (!g) return false;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // ::ffff:a.b.c.d (IPv4-mapped) and 64:ff9b::a.b.c.d (NAT64, RFC 6052) are their IPv4 address.
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff)
    return isPublicAddress(ipv4Of(g6, g7));
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0)
    return isPublicAddress(ipv4Of(g6, g7));
  // 2002:AABB:CCDD::/48 (6to4) reaches the IPv4 address AA.BB.CC.DD.
  if (g0 === 0x2002) return isPublicAddress(ipv4Of(g1, g2));
  const canonical = g.map((x) => x.toString(16)).join(':');
  // Outside global unicast: ::/128, ::1, ::/96 (IPv4-compatible), 64:ff9b:1::/48, 100::/64,
  // 5f00::/16, fc00::/7, fe80::/10, fec0::/10, ff00::/8…
  if (!GLOBAL_UNICAST_V6.check(canonical, 'ipv6')) return false;
  return !FORBIDDEN_V6.check(canonical, 'ipv6');
}

/** Answers every lookup with the addresses already checked: the connection goes where the check looked. */
export function pinnedLookup(addresses: readonly string[]): LookupFunction {
  const answers = addresses.map((address) => ({ address, family: isIP(address) }));
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    const first = answers[0];
    if (!first) callback(Object.assign(new Error('no checked address'), { code: 'ENOTFOUND' }));
    else if (options?.all) callback(null, answers);
    else callback(null, first.address, first.family);
  }) as LookupFunction;
}

/**
 * A fetch over node:http(s) whose connections go to `addresses` only (TLS still verifies the URL's
 * host name): DNS is not asked again, so a name cannot resolve to a public address for the check
 * and to an internal one for the connection (DNS rebinding). Redirects are not followed.
 */
export function pinnedFetch(addresses: readonly string[]): typeof fetch {
  const lookupPinned = pinnedLookup(addresses);
  return ((input: URL | string, init?: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(String(input));
      const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        url,
        {
          method: 'GET',
          headers: Object.fromEntries(new Headers(init?.headers).entries()),
          lookup: lookupPinned,
          signal: init?.signal ?? undefined,
          agent: false,
        },
        (response: IncomingMessage) => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(response.headers))
            if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
          resolve(
            new Response(Readable.toWeb(response) as ReadableStream, {
              status: response.statusCode ?? 502,
              statusText: response.statusMessage ?? '',
              headers,
            }),
          );
        },
      );
      request.on('error', reject);
      request.end();
    })) as typeof fetch;
}

export interface HttpRemoteOptions {
  /** `host:port` pairs that may be fetched even though they resolve to forbidden addresses (the local cloud's emulators). */
  allow?: readonly string[];
  /** Replaces the transport (tests); the default connects only to the addresses checked. */
  fetch?: typeof fetch;
  /** Resolves a host name to its addresses (tests; default: the system resolver). */
  resolve?: (host: string) => Promise<string[]>;
  /** How long a ranged GET may take (30 s), plus a second per 256 KiB it asks for. */
  timeoutMs?: number;
}

/**
 * Opens http(s) URLs for ranged reads, refusing server-side request forgery: a host that resolves
 * to a loopback, private, link-local or otherwise internal address is refused unless its
 * `host:port` is allowed. Redirects are not followed (a public URL could redirect inward).
 */
export function httpRemoteOpener(options: HttpRemoteOptions = {}): RemoteOpener {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const resolve =
    options.resolve ??
    (async (host: string) => (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address));
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
    let doFetch = options.fetch ?? fetch;
    if (!(options.allow ?? []).includes(`${host}:${port}`)) {
      const addresses = isIP(host) ? [host] : await resolve(host);
      if (addresses.length === 0)
        throw new VolsnapError('import.sourceUnreadable', `The import URL's host ${host} does not resolve.`);
      const inward = addresses.find((a) => !isPublicAddress(a));
      if (inward) {
        throw new VolsnapError(
          'import.sourceForbidden',
          `The import URL's host ${host} resolves to ${inward}, a private, loopback, link-local or otherwise non-public address: volsnap does not fetch those.`,
        );
      }
      doFetch = options.fetch ?? pinnedFetch(addresses);
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
            // The whole answer within the timeout plus a second per 256 KiB asked for
            // (a run of blocks is up to 8 MiB; a machine under load serves it slowly).
            signal: AbortSignal.timeout(timeoutMs + Math.ceil((end - start) / (256 * 1024)) * 1000),
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
      // Not the range asked for: its body (maybe the whole object) is not read.
      await response.body?.cancel().catch(() => undefined);
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
    // Two bytes, not one: some servers (s3rver) take `bytes=0-0` for the whole object.
    const probe = await get(0, 2);
    const size = Number(/\/(\d+)$/.exec(probe.headers.get('content-range') ?? '')?.[1]);
    await bodyOf(probe, Math.min(2, Number.isSafeInteger(size) ? size : 2));
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new VolsnapError(
        'import.sourceUnreadable',
        'The import URL does not say its size (Content-Range).',
      );
    return {
      size,
      range: async (start, end, into) => bodyOf(await get(start, end), end - start, into),
    };
  };
}

/**
 * The body of a ranged answer, which must be exactly `length` bytes: read into one buffer of that
 * size as it arrives (`into` when it is large enough, else a fresh one; no chunks kept, no copy at
 * the end), and never more than asked (a server that sends more is cut off, not buffered).
 */
async function bodyOf(response: Response, length: number, into?: Uint8Array): Promise<Uint8Array> {
  const bytes = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
  let filled = 0;
  const reader = response.body?.getReader();
  try {
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      if (filled + chunk.value.length > length) {
        await reader?.cancel().catch(() => undefined);
        throw new VolsnapError(
          'storage.unavailable',
          `Asked the import URL for ${length} bytes; it sent more.`,
        );
      }
      bytes.set(chunk.value, filled);
      filled += chunk.value.length;
    }
  } finally {
    reader?.releaseLock();
  }
  if (filled !== length)
    throw new VolsnapError('storage.unavailable', `Asked the import URL for ${length} bytes, got ${filled}.`);
  return bytes;
}
