import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { describe, expect, it } from 'vitest';
import { s3ClientConfig } from '../../lib/adapters/aws-clients.ts';
import { LOCAL_CREDENTIALS } from '../../scripts/local-cloud/cloud.ts';
import { freshRegion } from '../support/emulators.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** A stream of `data` in uneven chunks, as a file or a pipe would deliver it. */
function chunked(data: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (
    let offset = 0, size = 1;
    offset < data.length;
    offset += size, size = (size * 7 + 13) % 300_000 || 1
  ) {
    chunks.push(data.subarray(offset, offset + size));
  }
  return Readable.from(chunks);
}

describe('the S3 checksum trap (DEVELOPERS.md)', () => {
  it('a streamed PutObject stores exactly the bytes sent', async () => {
    const { entry, clients } = await freshRegion();
    const data = randomBytes(5 * 1024 * 1024 + 12_345);
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: entry.bucket,
        Key: 'streamed',
        Body: chunked(data),
        ContentLength: data.length,
      }),
    );
    const stored = await clients.s3.send(new GetObjectCommand({ Bucket: entry.bucket, Key: 'streamed' }));
    const bytes = await stored.Body?.transformToByteArray();
    expect(bytes?.length).toBe(data.length);
    expect(sha256(bytes ?? new Uint8Array())).toBe(sha256(data));
  });

  it('a presigned PUT URL carries no checksum of an empty body and stores what is uploaded through it', async () => {
    const { entry } = await freshRegion();
    const presigner = new S3Client(s3ClientConfig(entry, LOCAL_CREDENTIALS));
    const url = await getSignedUrl(
      presigner,
      new PutObjectCommand({ Bucket: entry.bucket, Key: 'presigned' }),
      { expiresIn: 300 },
    );
    const params = new URL(url).searchParams;
    expect([...params.keys()].filter((k) => /checksum/i.test(k))).toEqual([]);
    expect(params.get('X-Amz-Expires')).toBe('300');

    const data = randomBytes(1024 * 1024);
    const put = await fetch(url, { method: 'PUT', body: data });
    expect(put.status).toBe(200);
    const get = await fetch(
      await getSignedUrl(presigner, new GetObjectCommand({ Bucket: entry.bucket, Key: 'presigned' }), {
        expiresIn: 60,
      }),
    );
    expect(sha256(new Uint8Array(await get.arrayBuffer()))).toBe(sha256(data));
  });
});
