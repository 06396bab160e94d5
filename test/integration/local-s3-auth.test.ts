// The local S3 refuses what AWS S3 refuses (issue 14, point 7): no signature, a signature for another
// key or with a zeroed value, an expired URL, a signed header sent otherwise, wrong credentials; and
// it enforces `If-None-Match: *`, so a segment written once stays as written.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { s3ClientConfig } from '../../lib/adapters/aws-clients.ts';
import { S3ObjectStore } from '../../lib/adapters/s3/objects.ts';
import type { RegionEntry } from '../../lib/config/regions.ts';
import { LOCAL_CREDENTIALS } from '../../scripts/local-cloud/cloud.ts';
import { REQUEST_COUNTS_PATH } from '../../scripts/local-cloud/s3-emulator.ts';
import { freshRegion } from '../support/emulators.ts';
import { NodeSha256 } from '../support/node-sha256.ts';

async function withObjects(...keys: string[]) {
  const { entry, clients } = await freshRegion();
  const bodies = new Map<string, Buffer>();
  for (const key of keys) {
    const body = randomBytes(4096);
    bodies.set(key, body);
    await clients.s3.send(new PutObjectCommand({ Bucket: entry.bucket, Key: key, Body: body }));
  }
  return { entry, clients, bodies, store: new S3ObjectStore(clients.s3, entry.bucket) };
}

async function s3ErrorOf(response: Response): Promise<{ status: number; code?: string; message?: string }> {
  const text = await response.text();
  return {
    status: response.status,
    code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1],
    message: /<Message>([^<]*)<\/Message>/.exec(text)?.[1],
  };
}

function clientWith(
  entry: RegionEntry,
  credentials: { accessKeyId: string; secretAccessKey: string },
  region?: string,
) {
  return new S3Client({ ...s3ClientConfig(entry, credentials), ...(region ? { region } : {}) });
}

async function errorName(promise: Promise<unknown>): Promise<{ name: string; status?: number }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('the request succeeded');
}

describe('the local S3 verifies signatures', () => {
  it('refuses an unsigned GET of an existing object, and an anonymous listing, with 403 AccessDenied', async () => {
    const { entry } = await withObjects('segments/acct-a/seg-1');
    const endpoint = entry.s3Endpoint as string;
    expect(await s3ErrorOf(await fetch(`${endpoint}/${entry.bucket}/segments/acct-a/seg-1`))).toMatchObject({
      status: 403,
      code: 'AccessDenied',
    });
    expect(await s3ErrorOf(await fetch(`${endpoint}/${entry.bucket}/?list-type=2`))).toMatchObject({
      status: 403,
      code: 'AccessDenied',
    });
    expect(await s3ErrorOf(await fetch(`${endpoint}/`))).toMatchObject({ status: 403, code: 'AccessDenied' });
  });

  it('serves a presigned GET, and refuses it with the key swapped, the signature zeroed, or no query string', async () => {
    const { entry, store, bodies } = await withObjects('segments/acct-a/seg-1', 'segments/acct-b/seg-2');
    const url = await store.presignGet('segments/acct-a/seg-1', 300);
    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer()).equals(bodies.get('segments/acct-a/seg-1') as Buffer)).toBe(
      true,
    );

    const swapped = url.replace('segments/acct-a/seg-1', 'segments/acct-b/seg-2');
    expect(swapped).not.toBe(url);
    expect(await s3ErrorOf(await fetch(swapped))).toMatchObject({
      status: 403,
      code: 'SignatureDoesNotMatch',
    });

    const zeroed = url.replace(/X-Amz-Signature=[0-9a-f]{64}/, `X-Amz-Signature=${'0'.repeat(64)}`);
    expect(zeroed).not.toBe(url);
    expect(await s3ErrorOf(await fetch(zeroed))).toMatchObject({
      status: 403,
      code: 'SignatureDoesNotMatch',
    });

    expect(await s3ErrorOf(await fetch(url.split('?')[0] as string))).toMatchObject({
      status: 403,
      code: 'AccessDenied',
    });
    expect(entry.bucket).toBeTruthy();
  });

  it('refuses an expired presigned URL and says it expired', async () => {
    const { entry, clients } = await withObjects('k');
    const url = await getSignedUrl(clients.s3, new GetObjectCommand({ Bucket: entry.bucket, Key: 'k' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 120_000),
    });
    expect(await s3ErrorOf(await fetch(url))).toMatchObject({
      status: 403,
      code: 'AccessDenied',
      message: expect.stringMatching(/expired/),
    });
  });

  it('binds a presigned GET to its signed Range: another Range or none is refused, the exact one gets those bytes', async () => {
    const { entry, clients, bodies } = await withObjects('segments/acct-a/seg-1');
    const url = await getSignedUrl(
      clients.s3,
      new GetObjectCommand({ Bucket: entry.bucket, Key: 'segments/acct-a/seg-1', Range: 'bytes=100-199' }),
      { expiresIn: 300 },
    );
    expect(new URL(url).searchParams.get('X-Amz-SignedHeaders')).toBe('host;range');
    expect(await s3ErrorOf(await fetch(url, { headers: { range: 'bytes=0-4095' } }))).toMatchObject({
      status: 403,
      code: 'SignatureDoesNotMatch',
    });
    expect(await s3ErrorOf(await fetch(url))).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
    const exact = await fetch(url, { headers: { range: 'bytes=100-199' } });
    expect(exact.status).toBe(206);
    const bytes = Buffer.from(await exact.arrayBuffer());
    expect(bytes.equals((bodies.get('segments/acct-a/seg-1') as Buffer).subarray(100, 200))).toBe(true);
  });

  it('maps header-signed SDK requests with wrong credentials or region to errors named by the S3 code', async () => {
    const { entry } = await withObjects('k');
    const get = new GetObjectCommand({ Bucket: entry.bucket, Key: 'k' });
    expect(
      await errorName(clientWith(entry, { accessKeyId: 'S3RVER', secretAccessKey: 'guess' }).send(get)),
    ).toEqual({ name: 'SignatureDoesNotMatch', status: 403 });
    expect(
      await errorName(clientWith(entry, { accessKeyId: 'AKIDOTHER', secretAccessKey: 'x' }).send(get)),
    ).toEqual({
      name: 'InvalidAccessKeyId',
      status: 403,
    });
    expect(await errorName(clientWith(entry, LOCAL_CREDENTIALS, 'ap-south-1').send(get))).toEqual({
      name: 'AuthorizationHeaderMalformed',
      status: 400,
    });
    const list = new ListObjectsV2Command({ Bucket: entry.bucket });
    expect(
      await errorName(clientWith(entry, { accessKeyId: 'S3RVER', secretAccessKey: 'guess' }).send(list)),
    ).toEqual({ name: 'SignatureDoesNotMatch', status: 403 });
    // The right ones work.
    const listed = await clientWith(entry, LOCAL_CREDENTIALS).send(list);
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['k']);
  });

  it('refuses a header-signed PUT whose body does not match its signed x-amz-content-sha256', async () => {
    const { entry } = await freshRegion();
    const endpoint = new URL(entry.s3Endpoint as string);
    const signer = new SignatureV4({
      credentials: LOCAL_CREDENTIALS,
      region: entry.name,
      service: 's3',
      sha256: NodeSha256,
      uriEscapePath: false,
    });
    const signedBody = Buffer.from('the signed body');
    const sentBody = Buffer.from('another body!!!');
    const signed = await signer.sign({
      method: 'PUT',
      protocol: 'http:',
      hostname: endpoint.hostname,
      port: Number(endpoint.port),
      path: `/${entry.bucket}/swapped`,
      query: {},
      headers: {
        host: endpoint.host,
        'content-length': String(sentBody.length),
        'x-amz-content-sha256': createHash('sha256').update(signedBody).digest('hex'),
      },
    });
    const response = await fetch(`${entry.s3Endpoint}/${entry.bucket}/swapped`, {
      method: 'PUT',
      headers: signed.headers,
      body: sentBody,
    });
    expect(await s3ErrorOf(response)).toMatchObject({ status: 400, code: 'XAmzContentSHA256Mismatch' });
    const store = new S3ObjectStore(clientWith(entry, LOCAL_CREDENTIALS), entry.bucket);
    expect(await store.head('swapped')).toBeUndefined();
  });
});

describe('the local S3 enforces If-None-Match: *', () => {
  it('takes a presigned PUT with If-None-Match signed once, then answers 412 and keeps the first object', async () => {
    const { entry, clients } = await freshRegion();
    const url = await getSignedUrl(
      clients.s3,
      new PutObjectCommand({ Bucket: entry.bucket, Key: 'segments/a/seg-1', IfNoneMatch: '*' }),
      { expiresIn: 300 },
    );
    expect(new URL(url).searchParams.get('X-Amz-SignedHeaders')).toBe('host;if-none-match');
    const first = randomBytes(64 * 1024);
    const put = await fetch(url, { method: 'PUT', body: first, headers: { 'if-none-match': '*' } });
    expect(put.status).toBe(200);
    const again = await fetch(url, {
      method: 'PUT',
      body: randomBytes(1000),
      headers: { 'if-none-match': '*' },
    });
    expect(await s3ErrorOf(again)).toMatchObject({ status: 412, code: 'PreconditionFailed' });
    // Without the header the URL does not verify at all.
    const bare = await fetch(url, { method: 'PUT', body: randomBytes(1000) });
    expect(await s3ErrorOf(bare)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
    const stored = new S3ObjectStore(clients.s3, entry.bucket);
    expect(Buffer.from((await stored.get('segments/a/seg-1')) ?? []).equals(first)).toBe(true);
  });

  it('lets exactly one of many concurrent conditional PUTs of one key win', async () => {
    const { entry, clients } = await freshRegion();
    const bodies = Array.from({ length: 6 }, () => randomBytes(512 * 1024));
    const results = await Promise.allSettled(
      bodies.map((body) =>
        clients.s3.send(
          new PutObjectCommand({ Bucket: entry.bucket, Key: 'race', Body: body, IfNoneMatch: '*' }),
        ),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as Error).name).toBe('PreconditionFailed');
    }
    const stored = await new S3ObjectStore(clients.s3, entry.bucket).get('race');
    expect(Buffer.from(stored ?? []).equals(bodies[won[0] as number] as Buffer)).toBe(true);
  });

  it('refuses CompleteMultipartUpload with If-None-Match when the key exists; parts went through presigned URLs', async () => {
    const { entry, clients } = await freshRegion();
    const store = new S3ObjectStore(clients.s3, entry.bucket);
    const upload = async () => {
      const { UploadId } = await clients.s3.send(
        new CreateMultipartUploadCommand({ Bucket: entry.bucket, Key: 'exports/e-1' }),
      );
      const part = randomBytes(128 * 1024);
      const put = await fetch(await store.presignUploadPart('exports/e-1', UploadId as string, 1, 300), {
        method: 'PUT',
        body: part,
      });
      expect(put.status).toBe(200);
      return {
        part,
        complete: new CompleteMultipartUploadCommand({
          Bucket: entry.bucket,
          Key: 'exports/e-1',
          UploadId,
          IfNoneMatch: '*',
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: put.headers.get('etag') ?? '' }] },
        }),
      };
    };
    const first = await upload();
    await clients.s3.send(first.complete);
    const second = await upload();
    expect(await errorName(clients.s3.send(second.complete))).toEqual({
      name: 'PreconditionFailed',
      status: 412,
    });
    expect(Buffer.from((await store.get('exports/e-1')) ?? []).equals(first.part)).toBe(true);
  });

  it('leaves no partial object when a PUT is cut off, so a conditional retry succeeds', async () => {
    const { entry, clients } = await freshRegion();
    const url = new URL(
      await getSignedUrl(
        clients.s3,
        new PutObjectCommand({ Bucket: entry.bucket, Key: 'segments/a/cut', IfNoneMatch: '*' }),
        { expiresIn: 300 },
      ),
    );
    const body = randomBytes(1024 * 1024);
    await new Promise<void>((resolve) => {
      const req = request(url, {
        method: 'PUT',
        headers: { 'if-none-match': '*', 'content-length': String(body.length) },
      });
      req.on('error', () => resolve());
      req.write(body.subarray(0, 300_000), () => setTimeout(() => req.destroy(), 200));
      req.on('close', () => resolve());
    });
    const store = new S3ObjectStore(clients.s3, entry.bucket);
    expect(await store.head('segments/a/cut')).toBeUndefined();
    const retry = await fetch(url, { method: 'PUT', body, headers: { 'if-none-match': '*' } });
    expect(retry.status).toBe(200);
    expect(Buffer.from((await store.get('segments/a/cut')) ?? []).equals(body)).toBe(true);
  });
});

describe('the local S3 counts requests', () => {
  it('counts every request by operation, presigned and refused ones too, and answers the counts unsigned', async () => {
    const { entry, store } = await withObjects('counted/a');
    const counts = async () =>
      (await (await fetch(`${entry.s3Endpoint}${REQUEST_COUNTS_PATH}`)).json()) as Record<string, number>;
    const before = await counts();
    await store.getRange('counted/a', 0, 10);
    await store.put('counted/b', randomBytes(16));
    const presigned = await store.presignGet('counted/a', 60);
    expect((await fetch(presigned)).status).toBe(200);
    expect((await fetch(presigned.split('?')[0] as string)).status).toBe(403);
    const after = await counts();
    const delta = (operation: string) => (after[operation] ?? 0) - (before[operation] ?? 0);
    // At least these (test files beside this one share the emulator): the ranged, presigned and refused GETs.
    expect(delta('GetObject')).toBeGreaterThanOrEqual(3);
    expect(delta('PutObject')).toBeGreaterThanOrEqual(1);
  });
});
