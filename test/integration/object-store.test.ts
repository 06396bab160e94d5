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

  it('bind a GET to a byte range: exactly that Range header reads exactly those bytes', async () => {
    const { entry, clients } = await freshRegion();
    const store = new S3ObjectStore(clients.s3, entry.bucket);
    const body = randomBytes(100_000);
    await store.put('segments/acct-x/seg-2', body);
    const url = await store.presignGet('segments/acct-x/seg-2', 300, { start: 1000, end: 3000 });
    expect(new URL(url).searchParams.get('X-Amz-SignedHeaders')).toBe('host;range');
    const ranged = await fetch(url, { headers: { range: 'bytes=1000-2999' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(body.subarray(1000, 3000))).toBe(true);
  });

  // Needs a local S3 that verifies signatures and the headers they sign (s3rver checks none).
  it('bound to a range, are refused with another Range or none', async () => {
    const { entry, clients } = await freshRegion();
    const store = new S3ObjectStore(clients.s3, entry.bucket);
    await store.put('segments/acct-x/seg-3', randomBytes(100_000));
    const url = await store.presignGet('segments/acct-x/seg-3', 300, { start: 1000, end: 3000 });
    expect((await fetch(url)).status).toBe(403);
    expect((await fetch(url, { headers: { range: 'bytes=0-2999' } })).status).toBe(403);
    expect((await fetch(url, { headers: { range: 'bytes=1000-' } })).status).toBe(403);
  });
});
