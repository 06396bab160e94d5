// The SigV4 verifier against the SDK's own signer (@smithy/signature-v4) as the oracle: what the SDK
// signs verifies, and every change to a signed part of the request is refused with AWS's error code.
import { createHash } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { type SigV4Options, type SigV4Request, verifySigV4 } from '../../../lib/http/sigv4.ts';
import { NodeSha256 } from '../../support/node-sha256.ts';

const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const NOW = Date.UTC(2026, 11, 1, 10, 30, 0);
const HOST = '127.0.0.1:4568';

function signer(options: { service?: string; region?: string; secret?: string; accessKeyId?: string } = {}) {
  return new SignatureV4({
    credentials: {
      accessKeyId: options.accessKeyId ?? credentials.accessKeyId,
      secretAccessKey: options.secret ?? credentials.secretAccessKey,
    },
    region: options.region ?? 'eu-west-1',
    service: options.service ?? 's3',
    sha256: NodeSha256,
    // The S3 client's settings: the path is signed as sent, not encoded twice.
    uriEscapePath: (options.service ?? 's3') !== 's3',
    applyChecksum: true,
  });
}

/** Percent-encoding the way the SDK's HTTP handler sends paths and queries (RFC 3986). */
function encode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

interface Unsigned {
  method: string;
  /** The key, unencoded; the path is `/bucket/<key encoded per segment>`. */
  key?: string;
  /** A path sent as it is (for non-S3 services). */
  path?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string;
}

function httpRequest(r: Unsigned) {
  return {
    method: r.method,
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 4568,
    path: r.path ?? `/volsnap/${(r.key ?? 'k').split('/').map(encode).join('/')}`,
    query: { ...(r.query ?? {}) },
    headers: { host: HOST, ...(r.headers ?? {}) },
    ...(r.body === undefined ? {} : { body: r.body }),
  };
}

type Signed = ReturnType<typeof httpRequest>;

/** What the server receives for a signed request. */
function received(signed: Signed): SigV4Request {
  const query = Object.entries(signed.query as Record<string, string>)
    .map(([k, v]) => `${encode(k)}=${encode(v)}`)
    .join('&');
  return {
    method: signed.method,
    target: query ? `${signed.path}?${query}` : signed.path,
    headers: signed.headers as Record<string, string>,
  };
}

async function headerSigned(r: Unsigned, options: Parameters<typeof signer>[0] & { at?: number } = {}) {
  const request = httpRequest(r);
  if (r.body !== undefined) {
    request.headers['x-amz-content-sha256' as 'host'] = createHash('sha256').update(r.body).digest('hex');
  } else {
    request.headers['x-amz-content-sha256' as 'host'] = 'UNSIGNED-PAYLOAD';
  }
  const signed = (await signer(options).sign(request, {
    signingDate: new Date(options.at ?? NOW),
  })) as Signed;
  return received(signed);
}

async function presigned(
  r: Unsigned,
  options: Parameters<typeof signer>[0] & { at?: number; expiresIn?: number } = {},
) {
  const request = httpRequest(r);
  // What the S3 presigner does before it signs.
  request.headers['x-amz-content-sha256' as 'host'] = 'UNSIGNED-PAYLOAD';
  const signed = (await signer(options).presign(request, {
    signingDate: new Date(options.at ?? NOW),
    expiresIn: options.expiresIn ?? 900,
  })) as Signed;
  return received(signed);
}

const s3: SigV4Options = {
  service: 's3',
  region: 'eu-west-1',
  secretFor: (id) => (id === credentials.accessKeyId ? credentials.secretAccessKey : undefined),
  nowMs: NOW + 1000,
};

function verify(request: SigV4Request, options: Partial<SigV4Options> = {}) {
  return verifySigV4(request, { ...s3, ...options });
}

function withTarget(request: SigV4Request, change: (target: string) => string): SigV4Request {
  return { ...request, target: change(request.target) };
}

/** The request with headers replaced (a value) or removed (undefined). */
function withHeaders(request: SigV4Request, patch: Record<string, string | undefined>): SigV4Request {
  const headers = { ...(request.headers as Record<string, string>) };
  for (const [name, value] of Object.entries(patch)) {
    if (value === undefined) delete headers[name];
    else headers[name] = value;
  }
  return { ...request, headers };
}

function refusal(result: ReturnType<typeof verifySigV4>) {
  return result.ok ? { ok: true } : { code: result.code, status: result.status };
}

const WEIRD_KEYS = [
  'segments/acct-1/seg with spaces',
  'segments/a+b=c/d',
  'segments/ünïcødé/日本語',
  "odd/!'()*~.-_",
  'pct/%41%2F',
];

describe('SigV4 verification (the SDK signer as oracle)', () => {
  it('accepts a header-signed GET whose Range is signed, and reports the key and mode', async () => {
    const request = await headerSigned({
      method: 'GET',
      key: 'segments/acct-1/seg-1',
      headers: { range: 'bytes=0-99' },
    });
    expect(request.headers.authorization).toContain('SignedHeaders=host;range;');
    expect(verify(request)).toEqual({
      ok: true,
      accessKeyId: 'S3RVER',
      mode: 'header',
      payloadHash: 'UNSIGNED-PAYLOAD',
    });
  });

  it('accepts a header-signed PUT with a body hash and a signed If-None-Match, and returns the hash to check', async () => {
    const request = await headerSigned({
      method: 'PUT',
      key: 'segments/acct-1/seg-1',
      headers: { 'if-none-match': '*' },
      body: 'hello',
    });
    const result = verify(request);
    expect(result).toMatchObject({ ok: true, mode: 'header' });
    expect(result.ok && result.payloadHash).toBe(createHash('sha256').update('hello').digest('hex'));
  });

  it.each(WEIRD_KEYS)('accepts header-signed and presigned requests for the key %j', async (key) => {
    expect(verify(await headerSigned({ method: 'GET', key }))).toMatchObject({ ok: true });
    expect(verify(await presigned({ method: 'GET', key }))).toMatchObject({ ok: true, mode: 'query' });
  });

  it('accepts query values with + / = and spaces, and repeated-looking names sorted the AWS way', async () => {
    const query = {
      'x-id': 'GetObject',
      token: 'ab+cd/ef==',
      'continuation-token': 'a b',
      prefix: 'segments/',
    };
    expect(verify(await headerSigned({ method: 'GET', key: 'k', query }))).toMatchObject({ ok: true });
    expect(verify(await presigned({ method: 'GET', key: 'k', query }))).toMatchObject({ ok: true });
  });

  it('accepts encodings equivalent to the signed one (lower-case hex, escaped unreserved, + for space)', async () => {
    const request = await presigned({ method: 'GET', key: 'a b~c', query: { q: 'x y/z' } });
    const variant = withTarget(request, (t) =>
      t.replace('a%20b~c', 'a%20b%7ec').replace('q=x%20y%2Fz', 'q=x+y%2fz'),
    );
    expect(variant.target).not.toBe(request.target);
    expect(verify(variant)).toMatchObject({ ok: true });
  });

  it('accepts a presigned PUT with If-None-Match and a presigned GET with Range, both signed', async () => {
    const put = await presigned({
      method: 'PUT',
      key: 'segments/a/seg-1',
      headers: { 'if-none-match': '*' },
    });
    expect(put.target).toMatch(/X-Amz-SignedHeaders=host%3Bif-none-match/);
    expect(verify(put)).toMatchObject({ ok: true, payloadHash: 'UNSIGNED-PAYLOAD' });
    const get = await presigned({
      method: 'GET',
      key: 'segments/a/seg-1',
      headers: { range: 'bytes=100-199' },
    });
    expect(verify(get)).toMatchObject({ ok: true });
  });

  it('refuses a request with no authentication at all, as AccessDenied', () => {
    expect(refusal(verify({ method: 'GET', target: '/volsnap/k', headers: { host: HOST } }))).toEqual({
      code: 'AccessDenied',
      status: 403,
    });
    expect(
      refusal(verify({ method: 'GET', target: '/volsnap/?list-type=2', headers: { host: HOST } })),
    ).toEqual({
      code: 'AccessDenied',
      status: 403,
    });
  });

  it('refuses a presigned URL whose key, method or query was changed', async () => {
    const request = await presigned({
      method: 'GET',
      key: 'segments/acct-a/seg-1',
      query: { 'x-id': 'GetObject' },
    });
    const mismatch = { code: 'SignatureDoesNotMatch', status: 403 };
    expect(refusal(verify(withTarget(request, (t) => t.replace('acct-a', 'acct-b'))))).toEqual(mismatch);
    expect(refusal(verify({ ...request, method: 'PUT' }))).toEqual(mismatch);
    expect(
      refusal(verify(withTarget(request, (t) => t.replace('x-id=GetObject', 'x-id=PutObject')))),
    ).toEqual(mismatch);
    expect(refusal(verify(withTarget(request, (t) => `${t}&list-type=2`)))).toEqual(mismatch);
    // A literal `+` is a space to AWS, so it is not the `%2B` that was signed.
    const plus = await presigned({ method: 'GET', key: 'k', query: { token: 'a+b' } });
    expect(refusal(verify(withTarget(plus, (t) => t.replace('token=a%2Bb', 'token=a+b'))))).toEqual(mismatch);
  });

  it('refuses a presigned request whose signed Range or If-None-Match was changed or left out', async () => {
    const mismatch = { code: 'SignatureDoesNotMatch', status: 403 };
    const get = await presigned({ method: 'GET', key: 'k', headers: { range: 'bytes=100-199' } });
    expect(refusal(verify(withHeaders(get, { range: 'bytes=0-1000000' })))).toEqual(mismatch);
    expect(refusal(verify(withHeaders(get, { range: undefined })))).toEqual(mismatch);
    const put = await presigned({ method: 'PUT', key: 'k', headers: { 'if-none-match': '*' } });
    expect(refusal(verify(withHeaders(put, { 'if-none-match': undefined })))).toEqual(mismatch);
    expect(refusal(verify(withHeaders(put, { 'if-none-match': '"etag"' })))).toEqual(mismatch);
  });

  it('refuses a header-signed request whose signed headers, path or payload hash were changed', async () => {
    const mismatch = { code: 'SignatureDoesNotMatch', status: 403 };
    const get = await headerSigned({ method: 'GET', key: 'k', headers: { range: 'bytes=0-9' } });
    expect(refusal(verify(withHeaders(get, { range: 'bytes=0-99' })))).toEqual(mismatch);
    expect(refusal(verify(withHeaders(get, { range: undefined })))).toEqual(mismatch);
    expect(refusal(verify(withHeaders(get, { host: '127.0.0.1:9999' })))).toEqual(mismatch);
    expect(refusal(verify(withTarget(get, (t) => t.replace('/k', '/other'))))).toEqual(mismatch);
    const put = await headerSigned({
      method: 'PUT',
      key: 'k',
      body: 'hello',
      headers: { 'if-none-match': '*' },
    });
    expect(refusal(verify(withHeaders(put, { 'if-none-match': undefined })))).toEqual(mismatch);
    expect(refusal(verify(withHeaders(put, { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' })))).toEqual(
      mismatch,
    );
  });

  it('refuses a wrong secret, and an unknown access key as InvalidAccessKeyId', async () => {
    expect(refusal(verify(await presigned({ method: 'GET', key: 'k' }, { secret: 'guess' })))).toEqual({
      code: 'SignatureDoesNotMatch',
      status: 403,
    });
    expect(refusal(verify(await headerSigned({ method: 'GET', key: 'k' }, { secret: 'guess' })))).toEqual({
      code: 'SignatureDoesNotMatch',
      status: 403,
    });
    expect(
      refusal(verify(await presigned({ method: 'GET', key: 'k' }, { accessKeyId: 'AKIDOTHER' }))),
    ).toEqual({
      code: 'InvalidAccessKeyId',
      status: 403,
    });
  });

  it('refuses an expired presigned URL, one not valid yet, and X-Amz-Expires over 7 days', async () => {
    const request = await presigned({ method: 'GET', key: 'k' }, { expiresIn: 60 });
    expect(verify(request, { nowMs: NOW + 60_000 })).toMatchObject({ ok: true });
    const expired = verify(request, { nowMs: NOW + 61_000 });
    expect(expired).toMatchObject({ ok: false, code: 'AccessDenied', status: 403 });
    expect(!expired.ok && expired.message).toMatch(/expired/);
    const future = verify(request, { nowMs: NOW - 16 * 60_000 });
    expect(future).toMatchObject({ ok: false, code: 'AccessDenied' });
    const week = await presigned({ method: 'GET', key: 'k' }, { expiresIn: 604_800 });
    expect(verify(week)).toMatchObject({ ok: true });
    expect(
      refusal(verify(withTarget(week, (t) => t.replace('X-Amz-Expires=604800', 'X-Amz-Expires=604801')))),
    ).toEqual({ code: 'AuthorizationQueryParametersError', status: 400 });
  });

  it('refuses an X-Amz-Date that is no real time', async () => {
    const request = await presigned({ method: 'GET', key: 'k' });
    const bad = withTarget(request, (t) =>
      t.replace('X-Amz-Date=20261201T103000Z', 'X-Amz-Date=20261301T103000Z'),
    );
    expect(bad.target).not.toBe(request.target);
    expect(refusal(verify(bad))).toEqual({ code: 'AuthorizationQueryParametersError', status: 400 });
  });

  it('refuses a header-signed request more than 15 minutes off the clock', async () => {
    const request = await headerSigned({ method: 'GET', key: 'k' });
    expect(verify(request, { nowMs: NOW + 14 * 60_000 })).toMatchObject({ ok: true });
    expect(refusal(verify(request, { nowMs: NOW + 16 * 60_000 }))).toEqual({
      code: 'RequestTimeTooSkewed',
      status: 403,
    });
    expect(refusal(verify(request, { nowMs: NOW - 16 * 60_000 }))).toEqual({
      code: 'RequestTimeTooSkewed',
      status: 403,
    });
  });

  it('refuses a credential scoped to another region or service, or a date other than the request', async () => {
    expect(refusal(verify(await headerSigned({ method: 'GET', key: 'k' }, { region: 'us-east-1' })))).toEqual(
      {
        code: 'AuthorizationHeaderMalformed',
        status: 400,
      },
    );
    expect(refusal(verify(await presigned({ method: 'GET', key: 'k' }, { region: 'us-east-1' })))).toEqual({
      code: 'AuthorizationQueryParametersError',
      status: 400,
    });
    expect(refusal(verify(await presigned({ method: 'GET', key: 'k' }, { service: 'ebs' })))).toEqual({
      code: 'AuthorizationQueryParametersError',
      status: 400,
    });
    const request = await presigned({ method: 'GET', key: 'k' });
    expect(
      refusal(verify(withTarget(request, (t) => t.replace('%2F20261201%2F', '%2F20261130%2F')))),
    ).toEqual({
      code: 'AuthorizationQueryParametersError',
      status: 400,
    });
    // An endpoint serving several regions takes each.
    const us = await presigned({ method: 'GET', key: 'k' }, { region: 'us-east-1' });
    expect(verify(us, { region: ['eu-west-1', 'us-east-1'] })).toMatchObject({ ok: true });
  });

  it('refuses a zeroed, truncated or absent signature', async () => {
    const request = await presigned({ method: 'GET', key: 'k' });
    const zeroed = withTarget(request, (t) =>
      t.replace(/X-Amz-Signature=[0-9a-f]{64}/, `X-Amz-Signature=${'0'.repeat(64)}`),
    );
    expect(zeroed.target).toContain('0'.repeat(64));
    expect(refusal(verify(zeroed))).toEqual({ code: 'SignatureDoesNotMatch', status: 403 });
    const truncated = withTarget(request, (t) => t.replace(/(X-Amz-Signature=[0-9a-f]{10})[0-9a-f]+/, '$1'));
    expect(refusal(verify(truncated))).toEqual({ code: 'SignatureDoesNotMatch', status: 403 });
    const absent = withTarget(request, (t) => t.replace(/&?X-Amz-Signature=[0-9a-f]{64}/, ''));
    expect(refusal(verify(absent))).toEqual({ code: 'AuthorizationQueryParametersError', status: 400 });
    const header = await headerSigned({ method: 'GET', key: 'k' });
    const zeroedHeader = withHeaders(header, {
      authorization: String(header.headers.authorization).replace(
        /Signature=[0-9a-f]{64}/,
        `Signature=${'0'.repeat(64)}`,
      ),
    });
    expect(refusal(verify(zeroedHeader))).toEqual({ code: 'SignatureDoesNotMatch', status: 403 });
  });

  it('refuses an unsigned host, an unsigned x-amz-* header, and two auth mechanisms at once', async () => {
    const request = httpRequest({ method: 'GET', key: 'k', headers: { range: 'bytes=0-9' } });
    delete (request.headers as Record<string, string>).host;
    request.headers['x-amz-content-sha256' as 'host'] = 'UNSIGNED-PAYLOAD';
    const noHost = received((await signer().presign(request, { signingDate: new Date(NOW) })) as Signed);
    expect(refusal(verify(withHeaders(noHost, { host: HOST })))).toEqual({
      code: 'AccessDenied',
      status: 403,
    });
    const get = await presigned({ method: 'GET', key: 'k' });
    expect(refusal(verify(withHeaders(get, { 'x-amz-copy-source': 'volsnap/other' })))).toEqual({
      code: 'AccessDenied',
      status: 403,
    });
    const header = await headerSigned({ method: 'GET', key: 'k' });
    const both = { ...header, target: get.target };
    expect(refusal(verify(both))).toEqual({ code: 'InvalidArgument', status: 400 });
  });

  it('verifies another service (ebs) with the normalised, double-encoded path SigV4 prescribes', async () => {
    const ebs = { service: 'ebs', region: 'eu-west-1' };
    const path = '/snapshots/snap-1/blocks/7';
    const body = 'block bytes';
    const signed = (await signer(ebs).sign(
      {
        ...httpRequest({ method: 'PUT', path, query: { blockToken: 'ab+c/d=' } }),
        headers: {
          host: HOST,
          'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
        },
      },
      { signingDate: new Date(NOW) },
    )) as Signed;
    expect(verify(received(signed), { service: 'ebs' })).toMatchObject({ ok: true });
    expect(verify(received(signed), { service: 's3' })).toMatchObject({ ok: false });
    const escaped = '/snapshots/snap%201/blocks/7';
    const withSpace = (await signer(ebs).sign(httpRequest({ method: 'GET', path: escaped }), {
      signingDate: new Date(NOW),
    })) as Signed;
    expect(verify(received(withSpace), { service: 'ebs' })).toMatchObject({ ok: true });
  });
});
