import { randomBytes } from 'node:crypto';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { batchGetConsistent, getItem } from '../../lib/adapters/dynamodb/query.ts';
import { prefetchReads, withRequestReads } from '../../lib/adapters/dynamodb/request-reads.ts';
import { provisionRegion } from '../../scripts/local-cloud/provision.ts';
import { freshRegion } from '../support/emulators.ts';

/** A region with a second table (as the identity replica is beside the region's table), its client's commands counted. */
async function twoTables() {
  const { entry, clients } = await freshRegion();
  const second = `it-${randomBytes(4).toString('hex')}`;
  await provisionRegion(clients, { table: second, bucket: `${second}-b` });
  const sent: string[] = [];
  clients.documents.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push(context.commandName ?? '?');
      return next(args);
    },
    { step: 'build', name: 'countCommands' },
  );
  const put = (table: string, pk: string, value: string) =>
    clients.documents.send(new PutCommand({ TableName: table, Item: { pk, sk: 'A', value } }));
  return { documents: clients.documents, first: entry.table, second, sent, put };
}

describe("one request's consistent reads, batched (request-reads.ts)", () => {
  it('reads started in one turn, over two tables, go as one BatchGetItem; each caller gets its own items', async () => {
    const { documents, first, second, sent, put } = await twoTables();
    await put(first, 'snap', 'the snapshot');
    await put(second, 'key', 'the key');
    await put(second, 'user', 'the user');
    sent.length = 0;
    const [snapshot, identity, missing] = await withRequestReads(() =>
      Promise.all([
        getItem(documents, first, { pk: 'snap', sk: 'A' }),
        batchGetConsistent(documents, second, [
          { pk: 'user', sk: 'A' },
          { pk: 'absent', sk: 'A' },
          { pk: 'key', sk: 'A' },
        ]),
        getItem(documents, first, { pk: 'absent', sk: 'A' }),
      ]),
    );
    expect(sent).toEqual(['BatchGetItemCommand']);
    expect(snapshot?.value).toBe('the snapshot');
    // In the keys' order, the missing one left out, as without batching.
    expect(identity.map((item) => item.value)).toEqual(['the user', 'the key']);
    expect(missing).toBeUndefined();
  });

  it('a prefetched item answers the one later read of it in the request; a read after that asks again', async () => {
    const { documents, first, sent, put } = await twoTables();
    await put(first, 'snap', 'before');
    sent.length = 0;
    const reads = await withRequestReads(async () => {
      prefetchReads(() => getItem(documents, first, { pk: 'snap', sk: 'A' }));
      // The same key twice in one turn is one key of the request (DynamoDB refuses duplicates).
      await Promise.all([
        batchGetConsistent(documents, first, [{ pk: 'other', sk: 'A' }]),
        getItem(documents, first, { pk: 'other', sk: 'A' }),
      ]);
      await put(first, 'snap', 'after');
      const taken = await getItem(documents, first, { pk: 'snap', sk: 'A' });
      const again = await getItem(documents, first, { pk: 'snap', sk: 'A' });
      return { taken: taken?.value, again: again?.value };
    });
    expect(reads).toEqual({ taken: 'before', again: 'after' });
    expect(sent).toEqual(['BatchGetItemCommand', 'PutItemCommand', 'BatchGetItemCommand']);
  });

  it('more than 100 keys take one BatchGetItem per 100; outside a request, reads go alone as before', async () => {
    const { documents, first, sent, put } = await twoTables();
    const keys = Array.from({ length: 130 }, (_, i) => ({ pk: `k${String(i).padStart(3, '0')}`, sk: 'A' }));
    for (const key of keys.slice(0, 5)) await put(first, key.pk, key.pk);
    sent.length = 0;
    const found = await withRequestReads(() => batchGetConsistent(documents, first, keys));
    expect(found.map((item) => item.pk)).toEqual(keys.slice(0, 5).map((key) => key.pk));
    expect(sent).toEqual(['BatchGetItemCommand', 'BatchGetItemCommand']);
    sent.length = 0;
    prefetchReads(() => getItem(documents, first, { pk: 'k000', sk: 'A' }));
    expect((await getItem(documents, first, { pk: 'k000', sk: 'A' }))?.value).toBe('k000');
    expect(sent).toEqual(['GetItemCommand']);
  });
});
