import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../lib/adapters/s3/objects.ts';
import { freshRegion } from '../support/emulators.ts';
import { objectStoreContract } from '../support/object-store-contract.ts';

objectStoreContract('S3', async () => {
  const { entry, clients } = await freshRegion();
  return new S3ObjectStore(clients.s3, entry.bucket);
});

describe('S3 presigned URLs', () => {
  it('let their holder PUT and ranged-GET exactly the object they name', async () => {
    const { entry, clients } = await freshRegion();
    const store = new S3ObjectStore(clients.s3, entry.bucket);
    const body = randomBytes(100_000);
    const put = await fetch(await store.presignPut('segments/acct-x/seg-1', 300), { method: 'PUT', body });
    expect(put.status).toBe(200);
    const url = await store.presignGet('segments/acct-x/seg-1', 300);
    expect(new URL(url).pathname).toBe(`/${entry.bucket}/segments/acct-x/seg-1`);
    const ranged = await fetch(url, { headers: { range: 'bytes=1000-1999' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(body.subarray(1000, 2000))).toBe(true);
  });
});
