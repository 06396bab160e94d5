import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../lib/core/objects.ts';

/** The behaviour every ObjectStore must have; run against each implementation. */
export function objectStoreContract(name: string, makeStore: () => Promise<ObjectStore>) {
  describe(`ObjectStore contract: ${name}`, () => {
    it('puts, heads, gets, copies and deletes objects; absent objects are undefined, not errors', async () => {
      const store = await makeStore();
      const body = randomBytes(70_000);
      await store.put('manifests/a b+c', body);
      expect(await store.head('manifests/a b+c')).toEqual({ size: body.length });
      expect(Buffer.from((await store.get('manifests/a b+c')) ?? []).equals(body)).toBe(true);
      await store.copy('manifests/a b+c', 'manifests/copy');
      expect(Buffer.from((await store.get('manifests/copy')) ?? []).equals(body)).toBe(true);
      await store.delete('manifests/a b+c');
      await store.delete('manifests/a b+c');
      expect(await store.head('manifests/a b+c')).toBeUndefined();
      expect(await store.get('manifests/a b+c')).toBeUndefined();
      expect(await store.head('manifests/copy')).toEqual({ size: body.length });
    });
  });
}
