/**
 * Consistent reads of one request, sent together: within {@link withRequestReads}, every item read
 * that `getItem` and `batchGetConsistent` make in one turn of the event loop (any table of one
 * client) goes out as one BatchGetItem. With {@link prefetchReads}, a handler starts the reads its
 * route will need alongside its authentication's; the route's own later read of the same item takes
 * that answer instead of asking again. So a GetSnapshotBlock reads its key, user, account and
 * snapshot in one request, not two.
 *
 * Scoped to one request (AsyncLocalStorage), never across requests: a Lambda container serves one
 * request at a time, and the local cloud, which serves many in one process, must not do better.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

type Item = Record<string, unknown>;
type Key = Record<string, unknown>;

/** BatchGetItem takes at most this many keys a request. */
const BATCH_GET_KEYS = 100;
/** Rounds of UnprocessedKeys before giving up (DynamoDB leaves some only under throttling). */
const MAX_ROUNDS = 8;

interface Waiting {
  table: string;
  key: Key;
  resolve: (item: Item | undefined) => void;
  reject: (error: unknown) => void;
}

/** The reads of one request: those waiting for the next BatchGetItem, per client, and those kept. */
class RequestReads {
  readonly #waiting = new Map<DynamoDBDocumentClient, Map<string, Waiting[]>>();
  readonly #kept = new Map<DynamoDBDocumentClient, Map<string, Promise<Item | undefined>>>();

  /** The item at `key`, read consistently in this turn's BatchGetItem (or kept by a prefetch). */
  get(documents: DynamoDBDocumentClient, table: string, key: Key, keep: boolean): Promise<Item | undefined> {
    const id = `${table}\u0000${JSON.stringify(key)}`;
    const kept = this.#kept.get(documents);
    const prefetched = kept?.get(id);
    if (prefetched && !keep) {
      // One answer for one reader: a later read of the item asks DynamoDB again.
      kept?.delete(id);
      return prefetched;
    }
    const read = new Promise<Item | undefined>((resolve, reject) => {
      let waiting = this.#waiting.get(documents);
      if (!waiting) {
        waiting = new Map();
        this.#waiting.set(documents, waiting);
        // After this turn's microtasks: the reads a handler starts together all join in.
        setImmediate(() => this.#flush(documents));
      }
      const same = waiting.get(id);
      if (same) same.push({ table, key, resolve, reject });
      else waiting.set(id, [{ table, key, resolve, reject }]);
    });
    if (keep) {
      let map = kept;
      if (!map) {
        map = new Map();
        this.#kept.set(documents, map);
      }
      map.set(id, read);
      read.catch(() => map.delete(id));
    }
    return read;
  }

  async #flush(documents: DynamoDBDocumentClient): Promise<void> {
    const waiting = [...(this.#waiting.get(documents) ?? new Map<string, Waiting[]>()).values()];
    this.#waiting.delete(documents);
    for (let i = 0; i < waiting.length; i += BATCH_GET_KEYS) {
      const chunk = waiting.slice(i, i + BATCH_GET_KEYS);
      try {
        const found = await batchGet(
          documents,
          chunk.map((w) => w[0] as Waiting),
        );
        for (const readers of chunk) {
          const { table, key } = readers[0] as Waiting;
          const item = found.get(table)?.find((candidate) => sameKey(candidate, key));
          for (const reader of readers) reader.resolve(item);
        }
      } catch (error) {
        for (const readers of chunk) for (const reader of readers) reader.reject(error);
      }
    }
  }
}

/**
 * One BatchGetItem over every table of `reads` (distinct keys, at most 100), then again for what
 * DynamoDB left unprocessed, with backoff; the items found, by table.
 */
export async function batchGet(
  documents: DynamoDBDocumentClient,
  reads: readonly { table: string; key: Key }[],
): Promise<Map<string, Item[]>> {
  const found = new Map<string, Item[]>();
  let pending: Record<string, Key[]> = {};
  for (const { table, key } of reads) pending[table] = [...(pending[table] ?? []), key];
  for (let round = 0; Object.keys(pending).length > 0; round++) {
    if (round >= MAX_ROUNDS) throw new Error('DynamoDB left reads unprocessed; retry shortly.');
    if (round > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 50 * 2 ** round)));
    const requestItems = Object.fromEntries(
      Object.entries(pending).map(([table, keys]) => [table, { Keys: keys, ConsistentRead: true }]),
    );
    const result = await documents.send(new BatchGetCommand({ RequestItems: requestItems }));
    for (const [table, items] of Object.entries(result.Responses ?? {}))
      found.set(table, [...(found.get(table) ?? []), ...items]);
    pending = {};
    for (const [table, unprocessed] of Object.entries(result.UnprocessedKeys ?? {}))
      if (unprocessed.Keys?.length) pending[table] = unprocessed.Keys as Key[];
  }
  return found;
}

function sameKey(item: Item, key: Key): boolean {
  return Object.entries(key).every(([name, value]) => item[name] === value);
}

interface Scope {
  reads: RequestReads;
  /** Reads made now are kept for the route's later read of the same items. */
  keep: boolean;
}

const scope = new AsyncLocalStorage<Scope>();

/** Runs `handle` with its consistent reads batched per turn (one request's, see the module's note). */
export function withRequestReads<T>(handle: () => Promise<T>): Promise<T> {
  return scope.run({ reads: new RequestReads(), keep: false }, handle);
}

/**
 * Starts `reads` (a repository call) now, in this turn's batch, and keeps what it reads for one
 * later read of each item in the same request; outside {@link withRequestReads} it does nothing.
 * A failure is not thrown here: the later read that takes the answer sees it.
 */
export function prefetchReads(reads: () => Promise<unknown>): void {
  const current = scope.getStore();
  const started = current ? scope.run({ reads: current.reads, keep: true }, reads) : undefined;
  started?.catch(() => {});
}

/**
 * The item at `key`, through the request's batch when there is one; otherwise undefined, and the
 * caller reads it alone.
 */
export function batchedRead(
  documents: DynamoDBDocumentClient,
  table: string,
  key: Key,
): Promise<Item | undefined> | undefined {
  const current = scope.getStore();
  return current?.reads.get(documents, table, key, current.keep);
}
