import type { ObjectStore } from '../../lib/core/ports/objects.ts';
import { VolsnapError } from '../../lib/core/shared/errors.ts';

/** The operations of an object store a fault can be injected into. */
export type ObjectOperation = {
  [K in keyof ObjectStore]: ObjectStore[K] extends (...args: never[]) => Promise<unknown> ? K : never;
}[keyof ObjectStore];

/** What S3 answers when it cannot (an outage, or s3rver, which lacks AbortMultipartUpload). */
export const unavailable = () =>
  new VolsnapError('storage.unavailable', 'Object storage did not answer as expected; retry shortly.');

/**
 * Faults injected into a real object store (the memory adapter or the S3 one), in place: the
 * services already holding the store see them. Each fault answers the given error for the next
 * `times` calls of its operation (all of them by default), then lets calls through again; `heal`
 * ends them at once. `calls` counts every call made while faulty, refused or not.
 */
export function injectObjectFaults(store: ObjectStore) {
  type Method = (...args: unknown[]) => Promise<unknown>;
  const originals = new Map<ObjectOperation, Method>();
  const calls = new Map<ObjectOperation, number>();
  const target = store as unknown as Record<ObjectOperation, Method>;
  const heal = (operation?: ObjectOperation) => {
    for (const [op, original] of originals)
      if (!operation || op === operation) {
        target[op] = original;
        originals.delete(op);
      }
  };
  return {
    /** From now on `operation` answers `fault()` (`times` times, then it works again). */
    fail(operation: ObjectOperation, fault: () => Error = unavailable, times = Number.POSITIVE_INFINITY) {
      heal(operation);
      const original = target[operation];
      originals.set(operation, original);
      let left = times;
      target[operation] = async (...args: unknown[]) => {
        calls.set(operation, (calls.get(operation) ?? 0) + 1);
        if (left <= 0) return original.apply(store, args);
        left--;
        throw fault();
      };
    },
    heal,
    /** Calls of `operation` since it was made faulty. */
    calls: (operation: ObjectOperation) => calls.get(operation) ?? 0,
  };
}
