import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  type DynamoDBDocumentClient,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';

/** One replica of the identity table: a region's DynamoDB and the table's name there. */
export interface IdentityReplica {
  region: string;
  documents: DynamoDBDocumentClient;
  table: string;
}

export interface IdentityReplicationOptions {
  /** The identity region's replica: the one that takes writes. */
  home: IdentityReplica;
  /** Every other region's replica. */
  replicas: IdentityReplica[];
  /** Time between two passes (default 250 ms: well under a global table's usual second). */
  intervalMs?: number;
  log?: (line: string) => void;
}

type Items = Map<string, string>;

/**
 * The local cloud's stand-in for a DynamoDB global table: copies every change of the identity
 * region's identity table into the other regions' tables, one pass every `intervalMs` (a new or
 * changed item is put, a deleted one deleted), so that, as on AWS, a change made in one region
 * reaches the others after a short delay. Each pass reads the whole home table: meant for the few
 * thousand items a local cloud holds, not for AWS, where DynamoDB replicates by itself.
 */
export class IdentityReplication {
  readonly #options: IdentityReplicationOptions;
  /** What each replica holds, as last read or written (JSON of each item by its key). */
  readonly #applied = new Map<string, Items>();
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<number> | undefined;
  #stopped = false;

  constructor(options: IdentityReplicationOptions) {
    this.#options = options;
  }

  /** Brings every replica up to date once, then keeps doing so every `intervalMs` until {@link stop}. */
  async start(): Promise<void> {
    await this.sync();
    const every = this.#options.intervalMs ?? 250;
    const next = () => {
      if (this.#stopped) return;
      this.#timer = setTimeout(async () => {
        try {
          await this.sync();
        } catch (error) {
          // An emulator restarting or stopping: the next pass catches up.
          this.#options.log?.(`identity replication: pass failed (${(error as Error).message})`);
        }
        next();
      }, every);
    };
    next();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#pass?.catch(() => 0);
  }

  /** One pass: returns how many items it put or deleted, over all replicas. Passes never overlap. */
  sync(): Promise<number> {
    this.#pass = (this.#pass ?? Promise.resolve(0)).catch(() => 0).then(() => this.#syncOnce());
    return this.#pass;
  }

  async #syncOnce(): Promise<number> {
    const { home, replicas } = this.#options;
    const source = await scanAll(home);
    let changed = 0;
    for (const replica of replicas) {
      let held = this.#applied.get(replica.region);
      if (!held) {
        held = await scanAll(replica);
        this.#applied.set(replica.region, held);
      }
      const writes: NonNullable<BatchWriteCommandInput['RequestItems']>[string] = [];
      for (const [key, json] of source)
        if (held.get(key) !== json) writes.push({ PutRequest: { Item: JSON.parse(json) } });
      for (const key of held.keys())
        if (!source.has(key)) writes.push({ DeleteRequest: { Key: JSON.parse(key) } });
      await writeAll(replica, writes);
      this.#applied.set(replica.region, new Map(source));
      if (writes.length > 0)
        this.#options.log?.(`identity replication: ${writes.length} change(s) to ${replica.region}`);
      changed += writes.length;
    }
    return changed;
  }
}

async function scanAll(replica: IdentityReplica): Promise<Items> {
  const items: Items = new Map();
  let start: Record<string, unknown> | undefined;
  do {
    const page = await replica.documents.send(
      new ScanCommand({ TableName: replica.table, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    for (const item of page.Items ?? [])
      items.set(JSON.stringify({ pk: item.pk, sk: item.sk }), JSON.stringify(item, setsAsArrays));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

// String sets (a user's permissions) come back as Sets: compare and re-create them as such.
function setsAsArrays(_key: string, value: unknown): unknown {
  return value instanceof Set ? { $set: [...value].sort() } : value;
}

function revive(item: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(item).map(([k, v]) => [
      k,
      v && typeof v === 'object' && '$set' in v ? new Set((v as { $set: string[] }).$set) : v,
    ]),
  );
}

async function writeAll(
  replica: IdentityReplica,
  writes: NonNullable<BatchWriteCommandInput['RequestItems']>[string],
): Promise<void> {
  for (let i = 0; i < writes.length; i += 25) {
    let batch = writes
      .slice(i, i + 25)
      .map((w) => (w.PutRequest?.Item ? { PutRequest: { Item: revive(w.PutRequest.Item) } } : w));
    while (batch.length > 0) {
      const result = await replica.documents.send(
        new BatchWriteCommand({ RequestItems: { [replica.table]: batch } }),
      );
      batch = result.UnprocessedItems?.[replica.table] ?? [];
    }
  }
}
