// The SigV4 authentication of the EBS direct API and EC2 Query routes, against the SDK's own signer
// (@smithy/signature-v4) as the oracle: what the SDKs and the AWS CLI sign verifies, as the keys'
// caller; every change to a signed part, a foreign scope, a stale clock or a dead key is refused
// with the code AWS answers (and the status and __type the EBS error shape gives it).
import { createHash, randomBytes } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import type { IssuedSigV4Key } from '../../../../lib/core/identity/accounts.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { VolsnapError } from '../../../../lib/core/shared/errors.ts';
import { signedTarget, sigV4Authenticator } from '../../../../lib/http/ebs/authenticate.ts';
import { ebsErrorResponse } from '../../../../lib/http/ebs/protocol.ts';
import type { AwsSignedRequest } from '../../../../lib/http/ebs/signed-request.ts';
import { type MemoryRegion, memoryCloud } from '../../../support/memory-region.ts';
import { NodeSha256 } from '../../../support/node-sha256.ts';
import { wrongSecret } from '../../../support/sigv4-keys.ts';

const NOW = Date.UTC(2026, 11, 1, 10, 30, 0);
const HOST = '127.0.0.1:4510';
const REGION = 'eu-west-1';
/** A block token as ebs-read makes them: base64, so `+ / =` in a query value. */
const TOKEN = 'AbC+dEf/GhI=';

/** Percent-encoding the way the SDKs send a query (RFC 3986). */
function encode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

interface Unsigned {
  method: string;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
}

interface Signed extends Unsigned {
  headers: Record<string, string>;
}

type SignerStyle = 'js-sdk' | 'botocore';

/**
 * Signs as a client does: the JS SDK adds x-amz-content-sha256 to every request (applyChecksum);
 * botocore sends none (but UNSIGNED-PAYLOAD for PutSnapshotBlock) and signs the body's hash.
 */
async function sign(
  key: { accessKeyId: string; secretAccessKey: string },
  r: Unsigned,
  options: { service?: string; region?: string; at?: number; style?: SignerStyle } = {},
): Promise<Signed> {
  const signer = new SignatureV4({
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    region: options.region ?? REGION,
    service: options.service ?? 'ebs',
    sha256: NodeSha256,
    uriEscapePath: true,
    applyChecksum: (options.style ?? 'js-sdk') === 'js-sdk',
  });
  const signed = await signer.sign(
    {
      method: r.method,
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 4510,
      path: r.path,
      query: { ...(r.query ?? {}) },
      headers: { host: HOST, ...(r.headers ?? {}) },
      ...(r.body ? { body: r.body } : {}),
    },
    { signingDate: new Date(options.at ?? NOW) },
  );
  return { ...r, headers: signed.headers as Record<string, string> };
}

/**
 * The request as the function sees it behind API Gateway's HTTP API: the path percent-decoded
 * (`rawPath`), the query string as sent (`rawQueryString`), header names in lower case.
 */
function received(r: Signed, overrides: Partial<AwsSignedRequest> = {}): AwsSignedRequest {
  const query = Object.entries(r.query ?? {})
    .map(([name, value]) => `${encode(name)}=${encode(value)}`)
    .join('&');
  return {
    method: r.method,
    target: query ? `${decodeURIComponent(r.path)}?${query}` : decodeURIComponent(r.path),
    headers: Object.fromEntries(Object.entries(r.headers).map(([n, v]) => [n.toLowerCase(), v])),
    body: r.body ?? Buffer.alloc(0),
    service: 'ebs',
    region: REGION,
    ...overrides,
  };
}

const listBlocks: Unsigned = {
  method: 'GET',
  path: '/ebs/snapshots/snap-0123abcd/blocks/7',
  query: { blockToken: TOKEN },
};
const block = randomBytes(4096);
const putBlock: Unsigned = {
  method: 'PUT',
  path: '/ebs/snapshots/snap-0123abcd/blocks/7',
  headers: {
    'content-type': 'application/octet-stream',
    'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    'x-amz-checksum': createHash('sha256').update(block).digest('base64'),
    'x-amz-checksum-algorithm': 'SHA256',
    'x-amz-data-length': String(block.length),
  },
  body: block,
};
const startSnapshot: Unsigned = {
  method: 'POST',
  path: '/ebs/snapshots',
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(JSON.stringify({ VolumeSize: 1, ClientToken: 'a+b/c=' })),
};

/** The error `promise` fails with: its code, and the EBS type and status clients see. */
async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VolsnapError);
  const answer = ebsErrorResponse(error, 'req-1');
  return {
    code: (error as VolsnapError).code,
    status: answer.statusCode,
    type: answer.headers?.['x-amzn-errortype'],
  };
}

describe('the SigV4 authenticator of the AWS-protocol routes', () => {
  let cloud: ReturnType<typeof memoryCloud>;
  let region: MemoryRegion;
  let owner: Caller;
  let key: IssuedSigV4Key;
  let authenticate: ReturnType<typeof sigV4Authenticator>;

  beforeEach(async () => {
    cloud = memoryCloud([REGION, 'us-east-1'], { clock: new ManualClock(NOW) });
    region = cloud.region(REGION);
    owner = await region.account('alpha');
    key = await region.accounts.createSigV4Key(owner, {});
    authenticate = sigV4Authenticator({
      identity: region.ports.identity,
      secrets: region.ports.secrets,
      clock: region.clock,
    });
  });

  it('accepts what the JS SDK signs (x-amz-content-sha256 on every request), as the key’s caller', async () => {
    for (const request of [listBlocks, startSnapshot, putBlock]) {
      const caller = await authenticate(received(await sign(key, request)));
      expect(caller).toEqual({ ...owner, keyId: key.keyId });
    }
  });

  it('accepts what botocore signs (no x-amz-content-sha256: the body hashed; UNSIGNED-PAYLOAD on PUT)', async () => {
    for (const request of [listBlocks, startSnapshot, putBlock]) {
      const signed = await sign(key, request, { style: 'botocore' });
      if (request !== putBlock) expect(signed.headers['x-amz-content-sha256']).toBeUndefined();
      expect((await authenticate(received(signed))).keyId).toBe(key.keyId);
    }
  });

  it('verifies a token with + / = in the query, and a path API Gateway hands over decoded', async () => {
    const signed = await sign(key, { ...listBlocks, query: { pageToken: 'x+y/z==', maxResults: '100' } });
    const request = received(signed);
    expect(request.target).toContain('pageToken=x%2By%2Fz%3D%3D');
    expect((await authenticate(request)).keyId).toBe(key.keyId);
    // A `+` taken for a space, or the token decoded, is another request.
    const decoded = { ...request, target: request.target.replace('x%2By%2Fz%3D%3D', 'x+y/z==') };
    expect((await refusal(authenticate(decoded))).code).toBe('aws.signatureInvalid');
  });

  it('re-encodes the decoded path before building the canonical request', () => {
    expect(signedTarget('/ebs/snapshots/snap-1/blocks?blockToken=a%2Bb')).toBe(
      '/ebs/snapshots/snap-1/blocks?blockToken=a%2Bb',
    );
    expect(signedTarget('/ebs/a b/c+d')).toBe('/ebs/a%20b/c%2Bd');
  });

  it('refuses a tampered header, path, query or body with InvalidSignatureException (403)', async () => {
    const signed = await sign(key, putBlock);
    const good = received(signed);
    const tampered: AwsSignedRequest[] = [
      { ...good, headers: { ...good.headers, 'x-amz-data-length': '524288' } },
      { ...good, target: '/ebs/snapshots/snap-0123abcd/blocks/8' },
      received(await sign(key, listBlocks), {
        target: `/ebs/snapshots/snap-0123abcd/blocks/7?blockToken=${encode('AbC+dEf/GhJ=')}`,
      }),
    ];
    for (const request of tampered) {
      expect(await refusal(authenticate(request))).toEqual({
        code: 'aws.signatureInvalid',
        status: 403,
        type: 'InvalidSignatureException',
      });
    }
    // A body changed under a signed hex x-amz-content-sha256 (JS SDK), or under botocore's signed body hash.
    const json = received(await sign(key, startSnapshot));
    expect(json.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
    const otherBody = Buffer.from(JSON.stringify({ VolumeSize: 2 }));
    expect((await refusal(authenticate({ ...json, body: otherBody }))).code).toBe('aws.signatureInvalid');
    const boto = received(await sign(key, startSnapshot, { style: 'botocore' }));
    expect((await refusal(authenticate({ ...boto, body: otherBody }))).code).toBe('aws.signatureInvalid');
    // A hex hash that is not the body's, signed as such: the signature holds, the body does not.
    const lying = await sign(key, { ...startSnapshot, headers: { 'x-amz-content-sha256': 'ab'.repeat(32) } });
    expect((await refusal(authenticate(received(lying)))).code).toBe('aws.signatureInvalid');
  });

  it('refuses a signature for another service, region or date scope', async () => {
    const ec2 = received(await sign(key, listBlocks, { service: 'ec2' }));
    expect((await refusal(authenticate(ec2))).type).toBe('InvalidSignatureException');
    // The same request is right for the ec2 function.
    expect((await authenticate({ ...ec2, service: 'ec2' })).keyId).toBe(key.keyId);
    const other = received(await sign(key, listBlocks, { region: 'us-east-1' }));
    expect((await refusal(authenticate(other))).code).toBe('aws.signatureInvalid');
    const good = received(await sign(key, listBlocks));
    const wrongDay = good.headers.authorization?.replace('/20261201/', '/20261130/');
    expect(wrongDay).not.toBe(good.headers.authorization);
    expect(
      (await refusal(authenticate({ ...good, headers: { ...good.headers, authorization: wrongDay } }))).code,
    ).toBe('aws.signatureInvalid');
    const wrongSecret = received(
      await sign({ ...key, secretAccessKey: `${key.secretAccessKey.slice(1)}x` }, listBlocks),
    );
    expect((await refusal(authenticate(wrongSecret))).code).toBe('aws.signatureInvalid');
  });

  it('refuses a request 20 minutes old or 20 minutes ahead with RequestExpired (400), and takes 14 minutes', async () => {
    for (const at of [NOW - 20 * 60_000, NOW + 20 * 60_000]) {
      expect(await refusal(authenticate(received(await sign(key, listBlocks, { at }))))).toEqual({
        code: 'aws.requestExpired',
        status: 400,
        type: 'RequestExpired',
      });
    }
    expect((await authenticate(received(await sign(key, listBlocks, { at: NOW - 14 * 60_000 })))).keyId).toBe(
      key.keyId,
    );
  });

  it('refuses revoked, expired and unknown keys, and API keys, with UnrecognizedClientException (403)', async () => {
    const expiring = await region.accounts.createSigV4Key(owner, { expiresInSeconds: 3600 });
    const revoked = await region.accounts.createSigV4Key(owner, {});
    await region.accounts.revokeKey(owner, revoked.accessKeyId);
    const apiKey = await region.accounts.createKey(owner, {});
    const unknown = { accessKeyId: 'AKIA0000000000000000', secretAccessKey: key.secretAccessKey };
    const asApiKey = {
      accessKeyId: `AKIA${apiKey.keyId.slice(4).toUpperCase()}`,
      secretAccessKey: apiKey.token.slice(-40),
    };
    expect((await authenticate(received(await sign(expiring, listBlocks)))).keyId).toBe(expiring.keyId);
    region.clock.advance(3600_000);
    const later = region.clock.now();
    for (const dead of [expiring, revoked, unknown, asApiKey, { ...key, accessKeyId: 'not-a-key' }]) {
      expect(await refusal(authenticate(received(await sign(dead, listBlocks, { at: later }))))).toEqual({
        code: 'aws.unrecognizedClient',
        status: 403,
        type: 'UnrecognizedClientException',
      });
    }
    // A deleted user's keys are revoked with it.
    await region.accounts.createUser(owner, { userName: 'bob', role: 'member', permissions: [] });
    const bobs = await region.accounts.createSigV4Key(owner, { userName: 'bob' });
    expect((await authenticate(received(await sign(bobs, listBlocks, { at: later })))).userName).toBe('bob');
    await region.accounts.deleteUser(owner, 'bob');
    expect((await refusal(authenticate(received(await sign(bobs, listBlocks, { at: later }))))).code).toBe(
      'aws.unrecognizedClient',
    );
  });

  it('reads key, user and account together once it knows whose a key is, and still applies a revocation or a role change to the very next request', async () => {
    const identity = region.ports.identity;
    const reads: string[] = [];
    const read = <T>(what: string, value: Promise<T>) => {
      reads.push(what);
      return value;
    };
    const counted = {
      getApiKey: (id: string) => read('key', identity.getApiKey(id)),
      getUser: (a: string, u: string) => read('user', identity.getUser(a, u)),
      getAccount: (a: string) => read('account', identity.getAccount(a)),
      getKeyWithOwner: (id: string, a: string, u: string) =>
        read('together', identity.getKeyWithOwner(id, a, u)),
    };
    const auth = sigV4Authenticator({
      identity: counted,
      secrets: region.ports.secrets,
      clock: region.clock,
    });
    await region.accounts.createUser(owner, { userName: 'carol', role: 'admin', permissions: [] });
    const carols = await region.accounts.createSigV4Key(owner, { userName: 'carol' });
    expect((await auth(received(await sign(carols, listBlocks)))).role).toBe('admin');
    expect(reads.sort()).toEqual(['account', 'key', 'user']);
    reads.length = 0;
    expect((await auth(received(await sign(carols, putBlock)))).role).toBe('admin');
    expect(reads).toEqual(['together']);
    await region.accounts.updateUser(owner, 'carol', { role: 'member', permissions: ['snapshot:share'] });
    expect(await auth(received(await sign(carols, listBlocks)))).toMatchObject({
      role: 'member',
      permissions: ['snapshot:share'],
    });
    // A wrong secret is refused on this path too, before any caller is answered.
    const wrong = { ...carols, secretAccessKey: wrongSecret(carols.secretAccessKey) };
    expect((await refusal(auth(received(await sign(wrong, listBlocks))))).code).toBe('aws.signatureInvalid');
    await region.accounts.revokeKey(owner, carols.accessKeyId);
    expect((await refusal(auth(received(await sign(carols, listBlocks))))).code).toBe(
      'aws.unrecognizedClient',
    );
  });

  it('answers no signature with MissingAuthenticationToken, a malformed one with IncompleteSignature', async () => {
    const good = received(await sign(key, listBlocks));
    const { authorization: _a, ...unsigned } = good.headers;
    expect(await refusal(authenticate({ ...good, headers: unsigned }))).toEqual({
      code: 'aws.missingAuthentication',
      status: 403,
      type: 'MissingAuthenticationToken',
    });
    const malformed = [
      'AWS4-HMAC-SHA256 Credential=x',
      `AWS4-HMAC-SHA1 ${good.headers.authorization?.split(' ').slice(1).join(' ')}`,
      'Bearer vsk_key-0000000000000000_x',
    ];
    for (const authorization of malformed) {
      expect(await refusal(authenticate({ ...good, headers: { ...good.headers, authorization } }))).toEqual({
        code: 'aws.incompleteSignature',
        status: 400,
        type: 'IncompleteSignature',
      });
    }
    const { 'x-amz-date': _d, ...undated } = good.headers;
    expect((await refusal(authenticate({ ...good, headers: undated }))).code).toBe('aws.incompleteSignature');
    const streaming = { ...good.headers, 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' };
    expect((await refusal(authenticate({ ...good, headers: streaming }))).code).toBe(
      'aws.incompleteSignature',
    );
  });

  it('accepts a key issued in one region in another (one identity, one sealing key per deployment)', async () => {
    const other = cloud.region('us-east-1');
    const there = sigV4Authenticator({
      identity: other.ports.identity,
      secrets: other.ports.secrets,
      clock: other.clock,
    });
    const request = received(await sign(key, listBlocks, { region: 'us-east-1' }), { region: 'us-east-1' });
    expect((await there(request)).keyId).toBe(key.keyId);
  });
});
