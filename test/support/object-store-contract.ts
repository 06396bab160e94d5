import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DELETE_BATCH_KEYS, type ObjectStore } from '../../lib/core/ports/objects.ts';

/** The behaviour every ObjectStore must have; run against each implementation. */
export function objectStoreContract(name: string, makeStore: () => Promise<ObjectStore>) {
  describe(`ObjectStore contract: ${name}`, () => {
    it('puts, heads, gets, copies and deletes objects; absent objects are undefined, not errors', async () => {
      const store = await makeStore();
      const body = randomBytes(70_000);
      await store.put('manifests/a b+c', body);
      expect(await store.head('manifests/a b+c')).toMatchObject({ size: body.length });
      expect(Buffer.from((await store.get('manifests/a b+c')) ?? []).equals(body)).toBe(true);
      await store.copy('manifests/a b+c', 'manifests/copy');
      expect(Buffer.from((await store.get('manifests/copy')) ?? []).equals(body)).toBe(true);
      await store.delete('manifests/a b+c');
      await store.delete('manifests/a b+c');
      expect(await store.head('manifests/a b+c')).toBeUndefined();
      expect(await store.get('manifests/a b+c')).toBeUndefined();
      expect(await store.head('manifests/copy')).toMatchObject({ size: body.length });
    });

    it('deletes many keys at once, past one request of DELETE_BATCH_KEYS, absent ones included, and nothing else', async () => {
      const store = await makeStore();
      const keys = Array.from(
        { length: DELETE_BATCH_KEYS + 2 },
        (_, i) => `uploads/blocks/snap-many/${String(i).padStart(5, '0')}`,
      );
      await Promise.all(keys.map((key) => store.put(key, Uint8Array.of(1))));
      await store.put('uploads/blocks/snap-keep/0', Uint8Array.of(2));
      await store.deleteMany([...keys, 'uploads/blocks/snap-many/absent']);
      await store.deleteMany(keys);
      const left: string[] = [];
      for await (const object of store.list('uploads/blocks/')) left.push(object.key);
      expect(left).toEqual(['uploads/blocks/snap-keep/0']);
      await store.deleteMany([]);
    });

    it('heads an ETag that stays while the object does and changes when it is written again', async () => {
      const store = await makeStore();
      const key = 'segments/acct-x/seg-etag';
      await store.put(key, randomBytes(4096));
      const first = await store.head(key);
      expect(first?.etag).toEqual(expect.any(String));
      expect((await store.head(key))?.etag).toBe(first?.etag);
      await store.getRange(key, 0, 100);
      expect((await store.head(key))?.etag).toBe(first?.etag);
      await store.put(key, randomBytes(4096));
      const second = await store.head(key);
      expect(second?.size).toBe(4096);
      expect(second?.etag).toEqual(expect.any(String));
      expect(second?.etag).not.toBe(first?.etag);
    });

    it('gets an object with the ETag its head gives for that version; an absent one is undefined', async () => {
      const store = await makeStore();
      const key = 'segments/acct-x/seg-version';
      const body = randomBytes(40_000);
      await store.put(key, body);
      const got = await store.getVersion(key);
      expect(Buffer.from(got?.bytes ?? []).equals(body)).toBe(true);
      expect(got?.etag).toBe((await store.head(key))?.etag);
      await store.put(key, randomBytes(40_000));
      const again = await store.getVersion(key);
      expect(again?.etag).toBe((await store.head(key))?.etag);
      expect(again?.etag).not.toBe(got?.etag);
      expect(await store.getVersion('segments/acct-x/none')).toBeUndefined();
    });

    it('reads a version into the buffer given when it fits, else into bytes of its own', async () => {
      const store = await makeStore();
      const key = 'segments/acct-x/seg-into';
      const body = randomBytes(300_000);
      await store.put(key, body);
      const into = Buffer.alloc(400_000, 7);
      const got = await store.getVersion(key, { into });
      expect(Buffer.from(got?.bytes ?? []).equals(body)).toBe(true);
      expect(got?.bytes.buffer).toBe(into.buffer);
      expect(got?.etag).toBe((await store.head(key))?.etag);
      const small = Buffer.alloc(1000, 7);
      const own = await store.getVersion(key, { into: small });
      expect(Buffer.from(own?.bytes ?? []).equals(body)).toBe(true);
      expect(own?.bytes.buffer).not.toBe(small.buffer);
      expect(small.equals(Buffer.alloc(1000, 7))).toBe(true);
    });

    it('reads a range into the buffer given when it fits, else into bytes of its own; refuses a range past the end', async () => {
      const store = await makeStore();
      const key = 'segments/acct-x/seg-range-into';
      const body = randomBytes(300_000);
      await store.put(key, body);
      const into = Buffer.alloc(200_000, 7);
      const got = await store.getRange(key, 1000, 151_000, { into });
      expect(Buffer.from(got).equals(body.subarray(1000, 151_000))).toBe(true);
      expect(got.buffer).toBe(into.buffer);
      // Read into again: the earlier answer was a view of the same bytes.
      const next = await store.getRange(key, 0, 10, { into });
      expect(Buffer.from(next).equals(body.subarray(0, 10))).toBe(true);
      expect(got[0]).toBe(body[0]);
      const small = Buffer.alloc(100, 7);
      const own = await store.getRange(key, 5, 5005, { into: small });
      expect(Buffer.from(own).equals(body.subarray(5, 5005))).toBe(true);
      expect(own.buffer).not.toBe(small.buffer);
      expect(small.equals(Buffer.alloc(100, 7))).toBe(true);
      await expect(store.getRange(key, 299_000, 301_000, { into })).rejects.toThrow();
    });

    it('joins multipart uploads in part order; a part uploaded again replaces the first', async () => {
      const store = await makeStore();
      const key = 'exports/acct-x/exp-1.vsnap';
      const [a, b, c] = [randomBytes(5 * 1024 * 1024), randomBytes(5 * 1024 * 1024), randomBytes(1234)];
      const uploadId = await store.createMultipart(key);
      const etagC = await store.uploadPart(key, uploadId, 3, c);
      await store.uploadPart(key, uploadId, 1, randomBytes(5 * 1024 * 1024));
      const etagA2 = await store.uploadPart(key, uploadId, 1, a);
      const etagB = await store.uploadPart(key, uploadId, 2, b);
      await store.completeMultipart(key, uploadId, [
        { partNumber: 1, etag: etagA2 },
        { partNumber: 2, etag: etagB },
        { partNumber: 3, etag: etagC },
      ]);
      expect(Buffer.from((await store.get(key)) ?? []).equals(Buffer.concat([a, b, c]))).toBe(true);
    });

    it('lists every object under a prefix with its size and write time, past 1000 keys (one S3 page)', async () => {
      const store = await makeStore();
      const prefix = `segments/acct-list-${randomBytes(4).toString('hex')}/`;
      const keys = Array.from({ length: 1003 }, (_, i) => `${prefix}seg-${String(i).padStart(5, '0')}`);
      const before = Date.now() - 5000;
      for (let i = 0; i < keys.length; i += 50)
        await Promise.all(
          keys.slice(i, i + 50).map((key, j) => store.put(key, randomBytes(1 + ((i + j) % 7)))),
        );
      await store.put(`${prefix.slice(0, -1)}-other/seg-x`, randomBytes(3));
      const listed = [];
      for await (const object of store.list(prefix)) listed.push(object);
      expect(listed.map((o) => o.key)).toEqual(keys);
      expect(listed.map((o) => o.size)).toEqual(keys.map((_, i) => 1 + (i % 7)));
      expect(listed.every((o) => o.lastModified >= before && o.lastModified <= Date.now() + 5000)).toBe(true);
    }, 60_000);
  });
}
