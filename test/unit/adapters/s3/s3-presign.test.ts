import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3ClientConfig } from '../../../../lib/adapters/aws-clients.ts';
import { S3ObjectStore } from '../../../../lib/adapters/s3/objects.ts';
import { getObject, TransferError } from '../../../../lib/client/transfer.ts';

const credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
/** The region's store as the service builds it, its endpoint at `endpoint`. */
function storeAt(endpoint: string): S3ObjectStore {
  const s3 = new S3Client(
    s3ClientConfig(
      { name: 'eu-west-1', bucket: 'bucket', table: 'table', s3Endpoint: endpoint, s3ForcePathStyle: true },
      credentials,
    ),
  );
  return new S3ObjectStore(s3, 'bucket');
}
const store = storeAt('http://127.0.0.1:9000');

/**
 * Whether S3 would take `url` for a GET sent with `headers`: the SigV4 check of a presigned URL
 * (canonical request from the URL's query and the headers it says it signed, as the request
 * carries them), written out here independently of the SDK that signed it.
 */
function signatureHolds(url: string, headers: Record<string, string>): boolean {
  const target = new URL(url);
  const query = target.searchParams;
  const signed = (query.get('X-Amz-SignedHeaders') ?? '').split(';');
  const sent: Record<string, string> = { host: target.host, ...headers };
  if (signed.some((name) => sent[name] === undefined)) return false;
  const encode = (s: string) =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const canonicalQuery = [...query.entries()]
    .filter(([key]) => key !== 'X-Amz-Signature')
    .map(([key, value]) => `${encode(key)}=${encode(value)}`)
    .sort()
    .join('&');
  const canonical = [
    'GET',
    target.pathname,
    canonicalQuery,
    ...signed.map((name) => `${name}:${String(sent[name]).trim()}`),
    '',
    signed.join(';'),
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const [, day, region, service] = (query.get('X-Amz-Credential') ?? '').split('/');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = [
    'AWS4-HMAC-SHA256',
    query.get('X-Amz-Date'),
    scope,
    createHash('sha256').update(canonical).digest('hex'),
  ].join('\n');
  let key: Buffer = Buffer.from(`AWS4${credentials.secretAccessKey}`);
  for (const part of [day, region, service, 'aws4_request'])
    key = createHmac('sha256', key)
      .update(part ?? '')
      .digest();
  return createHmac('sha256', key).update(toSign).digest('hex') === query.get('X-Amz-Signature');
}

describe('S3 presigned GET URLs', () => {
  it('bind a range to the URL: Range is a signed header, and only exactly that header verifies', async () => {
    const url = await store.presignGet('segments/acct-a/seg-1', 300, { start: 1000, end: 2000 });
    expect(new URL(url).searchParams.get('X-Amz-SignedHeaders')?.split(';')).toEqual(['host', 'range']);
    expect(signatureHolds(url, { range: 'bytes=1000-1999' })).toBe(true);
    // Another range, the whole object, or a range spelled otherwise: the signature does not hold.
    expect(signatureHolds(url, { range: 'bytes=0-1999' })).toBe(false);
    expect(signatureHolds(url, { range: 'bytes=1000-' })).toBe(false);
    expect(signatureHolds(url, { range: 'bytes=1000-2000' })).toBe(false);
    expect(signatureHolds(url, {})).toBe(false);
  });

  it('without a range sign only the host, so any range of the object may be read', async () => {
    const url = await store.presignGet('manifests/snap-1', 300);
    expect(new URL(url).searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    expect(signatureHolds(url, {})).toBe(true);
    // The checker is not trivially true: the same URL for another key fails it.
    expect(signatureHolds(url.replace('snap-1', 'snap-2'), {})).toBe(false);
  });
});

describe("the restore client's ranged GET", () => {
  const object = randomBytes(10_000);
  let server: Server;
  let endpoint: string;
  beforeAll(async () => {
    // A bucket of one object that checks what S3 checks of a presigned GET (signature over the signed headers).
    server = createServer((request, response) => {
      const url = `http://${request.headers.host}${request.url}`;
      const range = request.headers.range;
      if (!signatureHolds(url, range === undefined ? {} : { range })) {
        response.writeHead(403).end('SignatureDoesNotMatch');
        return;
      }
      const [, start, end] = /^bytes=(\d+)-(\d+)$/.exec(range ?? '') ?? [];
      const body = object.subarray(Number(start), Number(end) + 1);
      response.writeHead(206, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends exactly the Range header the URL signed, so a range-bound URL reads its bytes', async () => {
    const url = await storeAt(endpoint).presignGet('segments/acct-a/seg-1', 300, { start: 1000, end: 3500 });
    const bytes = await getObject(url, { start: 1000, end: 3500 });
    expect(bytes.equals(object.subarray(1000, 3500))).toBe(true);
    // Asked for other bytes through it, the store refuses (403 is not retried).
    const refused = await getObject(url, { start: 0, end: 3500 }).catch((e) => e);
    expect(refused).toBeInstanceOf(TransferError);
    expect(refused.status).toBe(403);
  });
});
