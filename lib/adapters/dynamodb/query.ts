import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { decodeListingPosition, encodePageToken, type Page } from '../../core/shared/pagination.ts';
import { all, beginsWith, type Condition, equals, filterFields } from './expressions.ts';
import { batchedRead, batchGet } from './request-reads.ts';

/** Filter conditions on top of an index query (rendered by expressions.ts); an undefined filter is none. */
export class Filters {
  readonly conditions: Condition[] = [];

  equals(attribute: string, value: unknown): this {
    if (value !== undefined) this.conditions.push(equals(attribute, value));
    return this;
  }

  beginsWith(attribute: string, prefix: string | undefined): this {
    if (prefix) this.conditions.push(beginsWith(attribute, prefix));
    return this;
  }

  /** Every `key=value` of `tags` present in the map attribute `tags`. */
  tags(tags: Record<string, string> | undefined): this {
    for (const [key, value] of Object.entries(tags ?? {})) this.conditions.push(equals(['tags', key], value));
    return this;
  }

  /** The FilterExpression with its names and values (none without a condition). */
  fields() {
    return filterFields(all(...this.conditions));
  }
}

type Position = Record<string, string>;

/** The table's key attributes, and each index's (see infra/table.yml). */
const TABLE_KEY = ['pk', 'sk'] as const;
const INDEX_KEYS: Readonly<Record<string, readonly [string, string]>> = {
  gsi1: ['gsi1pk', 'gsi1sk'],
  gsi2: ['gsi2pk', 'gsi2sk'],
};

/**
 * One page of an index query, newest first, with filters. DynamoDB applies Limit before filters, so
 * this keeps reading until the page is full or the index ends; since Limit never exceeds the room
 * left on the page, where DynamoDB stopped is where the page ends, and that is the next token.
 */
export async function queryPage<T>(
  documents: DynamoDBDocumentClient,
  query: { table: string; index: string; partitionKey: string; partition: string; filters: Filters },
  page: { limit: number; nextToken?: string },
  toItem: (item: Record<string, unknown>) => T,
): Promise<Page<T>> {
  const filter = query.filters.fields();
  const items: T[] = [];
  const indexKeys = INDEX_KEYS[query.index];
  if (!indexKeys || indexKeys[0] !== query.partitionKey)
    throw new Error(`queryPage: ${query.index} is not an index keyed by ${query.partitionKey}`);
  // A token is a position in this very listing: its own partition, this index's key attributes.
  let start: Position | undefined = decodeListingPosition(page.nextToken, {
    attributes: [...TABLE_KEY, ...indexKeys],
    fixed: { [query.partitionKey]: query.partition },
  });
  do {
    const result = await documents.send(
      new QueryCommand({
        TableName: query.table,
        IndexName: query.index,
        KeyConditionExpression: '#pk = :pk',
        FilterExpression: filter.FilterExpression,
        ExpressionAttributeNames: { '#pk': query.partitionKey, ...filter.ExpressionAttributeNames },
        ExpressionAttributeValues: { ':pk': query.partition, ...filter.ExpressionAttributeValues },
        ScanIndexForward: false,
        Limit: page.limit - items.length,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(result.Items ?? []).map(toItem));
    start = result.LastEvaluatedKey as Position | undefined;
  } while (start && items.length < page.limit);
  return start ? { items, nextToken: encodePageToken(start) } : { items };
}

/** One page of a gsi1 partition (an owner's or a grantee's items), newest first (see {@link queryPage}). */
export function gsi1Page<T>(
  documents: DynamoDBDocumentClient,
  table: string,
  partition: string,
  page: { limit: number; nextToken?: string },
  toItem: (item: Record<string, unknown>) => T,
  filters: Filters = new Filters(),
): Promise<Page<T>> {
  return queryPage(
    documents,
    { table, index: 'gsi1', partitionKey: 'gsi1pk', partition, filters },
    page,
    toItem,
  );
}

/** The item at `key`, read consistently: a write that just succeeded is seen. */
export async function getItem(
  documents: DynamoDBDocumentClient,
  table: string,
  key: Record<string, unknown>,
): Promise<Record<string, unknown> | undefined> {
  const batched = batchedRead(documents, table, key);
  if (batched) return batched;
  const { Item } = await documents.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
  return Item;
}

/** The items at `keys`, read consistently, in the keys' order (missing ones left out). */
export async function batchGetConsistent(
  documents: DynamoDBDocumentClient,
  table: string,
  keys: { pk: string; sk: string }[],
): Promise<Record<string, unknown>[]> {
  // In a request's batch (request-reads.ts), each key joins the turn's BatchGetItem.
  const batched = keys.map((key) => batchedRead(documents, table, key));
  if (batched.every((read) => read !== undefined)) {
    const items = await Promise.all(batched);
    return items.filter((item): item is Record<string, unknown> => item !== undefined);
  }
  const found = new Map<string, Record<string, unknown>>();
  const chunks = Array.from({ length: Math.ceil(keys.length / 100) }, (_, i) =>
    keys.slice(i * 100, i * 100 + 100),
  );
  await Promise.all(
    chunks.map(async (chunk) => {
      const items = await batchGet(
        documents,
        chunk.map((key) => ({ table, key })),
      );
      for (const item of items.get(table) ?? []) found.set(`${item.pk}|${item.sk}`, item);
    }),
  );
  return keys.flatMap((key) => {
    const item = found.get(`${key.pk}|${key.sk}`);
    return item ? [item] : [];
  });
}

/**
 * One page of every item of a type in the table, for maintenance (which reads them all anyway). The
 * scan is consistent: an item that existed when the scan started and still does is in it.
 */
export async function scanPage<T>(
  documents: DynamoDBDocumentClient,
  table: string,
  type: string,
  page: { limit: number; nextToken?: string },
  toItem: (item: Record<string, unknown>) => T,
): Promise<Page<T>> {
  const { Items = [], LastEvaluatedKey } = await documents.send(
    new ScanCommand({
      TableName: table,
      ...filterFields(equals('type', type)),
      ConsistentRead: true,
      Limit: Math.max(page.limit, 100),
      ExclusiveStartKey: decodeListingPosition(page.nextToken, { attributes: TABLE_KEY, fixed: {} }),
    }),
  );
  const items = Items.map(toItem);
  return LastEvaluatedKey ? { items, nextToken: encodePageToken(LastEvaluatedKey) } : { items };
}

/** Every item a query matches, reading page after page (for small partitions: a session's segments, an account's users). */
export async function queryAll(
  documents: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey'>,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const result = await documents.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    items.push(...(result.Items ?? []));
    start = result.LastEvaluatedKey;
  } while (start);
  return items;
}
