import type { ObjectStore } from '../../core/objects.ts';

/** Objects in memory, for unit tests. Presigned URLs are `memory://` URLs naming the key. */
export class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<string, Uint8Array>();

  async presignPut(key: string, expiresInSeconds: number): Promise<string> {
    return `memory://put/${key}?expires=${expiresInSeconds}`;
  }
  async presignGet(key: string, expiresInSeconds: number): Promise<string> {
    return `memory://get/${key}?expires=${expiresInSeconds}`;
  }
  async head(key: string) {
    const object = this.objects.get(key);
    return object ? { size: object.length } : undefined;
  }
  async get(key: string) {
    const object = this.objects.get(key);
    return object ? Uint8Array.from(object) : undefined;
  }
  async getRange(key: string, start: number, end: number) {
    const object = this.objects.get(key);
    if (!object || object.length < end) throw new Error(`no bytes ${start}-${end} of ${key}`);
    return object.slice(start, end);
  }
  async put(key: string, body: Uint8Array) {
    this.objects.set(key, Uint8Array.from(body));
  }
  async copy(fromKey: string, toKey: string) {
    const object = this.objects.get(fromKey);
    if (!object) throw new Error(`no object ${fromKey}`);
    this.objects.set(toKey, Uint8Array.from(object));
  }
  async delete(key: string) {
    this.objects.delete(key);
  }
}
