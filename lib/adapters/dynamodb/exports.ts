import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Export, ExportRepository, ExportState } from '../../core/exports.ts';
import type { Page } from '../../core/pagination.ts';
import { createdOrder, pickFields } from './keys.ts';
import { Filters, queryPage, scanPage } from './query.ts';

const FIELDS = [
  'exportId',
  'accountId',
  'snapshotId',
  'format',
  'state',
  'progress',
  'stateReason',
  'region',
  'bucket',
  'key',
  'size',
  'parts',
  'partSize',
  'uploadId',
  'createdAt',
  'completedAt',
  'deadline',
  'expiresOn',
] as const;

const exportKey = (exportId: string) => ({ pk: `EXPORT#${exportId}`, sk: 'EXPORT' });

function toExport(item: Record<string, unknown>): Export {
  const etags = (item.etags ?? {}) as Record<string, string>;
  const done = Object.keys(etags)
    .map(Number)
    .sort((a, b) => a - b);
  const { expiresOn, ...record } = pickFields<Export & { expiresOn?: string }>(item, FIELDS);
  return {
    ...record,
    ...(expiresOn ? { expiresAt: expiresOn } : {}),
    ...(done.length > 0 ? { partsDone: done } : {}),
  };
}

/** Export records in the region table: `EXPORT#id`, listed per account through gsi1. */
export class DynamoExportRepository implements ExportRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async create(record: Export): Promise<void> {
    // `expiresAt` is the table's TTL attribute (epoch seconds): the record's expiry is kept apart, so
    // DynamoDB never drops a record whose object the expiry schedule has not deleted yet.
    const { expiresAt, ...fields } = record;
    await this.documents.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...exportKey(record.exportId),
          type: 'export',
          ...fields,
          ...(expiresAt ? { expiresOn: expiresAt } : {}),
          etags: {},
          gsi1pk: `ACCOUNT#${record.accountId}#EXPORTS`,
          gsi1sk: createdOrder(record.createdAt, record.exportId),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  listAll(page: { limit: number; nextToken?: string }): Promise<Page<Export>> {
    return scanPage(this.documents, this.table, 'export', page, toExport);
  }

  async get(exportId: string): Promise<Export | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.table, Key: exportKey(exportId), ConsistentRead: true }),
    );
    return Item ? toExport(Item) : undefined;
  }

  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Export>> {
    return queryPage(
      this.documents,
      {
        table: this.table,
        index: 'gsi1',
        partitionKey: 'gsi1pk',
        partition: `ACCOUNT#${accountId}#EXPORTS`,
        filters: new Filters(),
      },
      page,
      toExport,
    );
  }

  async completePart(exportId: string, part: number, etag: string): Promise<Map<number, string> | undefined> {
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: exportKey(exportId),
          UpdateExpression: 'SET etags.#part = :etag',
          ConditionExpression: '#state = :pending',
          ExpressionAttributeNames: { '#part': String(part), '#state': 'state' },
          ExpressionAttributeValues: { ':etag': etag, ':pending': 'pending' },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const etags = (Attributes?.etags ?? {}) as Record<string, string>;
      return new Map(Object.entries(etags).map(([p, e]) => [Number(p), e]));
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }

  async transition(
    exportId: string,
    from: readonly ExportState[],
    to: ExportState,
    changes: Partial<Export> = {},
  ): Promise<Export | undefined> {
    const set = { ...changes, state: to };
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: exportKey(exportId),
          UpdateExpression: `SET ${Object.keys(set)
            .map((_, i) => `#s${i} = :s${i}`)
            .join(', ')}`,
          ConditionExpression: `attribute_exists(pk) AND #state IN (${from.map((_, i) => `:from${i}`).join(', ')})`,
          ExpressionAttributeNames: {
            ...Object.fromEntries(Object.keys(set).map((k, i) => [`#s${i}`, k])),
            '#state': 'state',
          },
          ExpressionAttributeValues: {
            ...Object.fromEntries(Object.values(set).map((v, i) => [`:s${i}`, v])),
            ...Object.fromEntries(from.map((f, i) => [`:from${i}`, f])),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? toExport(Attributes) : undefined;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }

  async remove(exportId: string): Promise<void> {
    await this.documents.send(new DeleteCommand({ TableName: this.table, Key: exportKey(exportId) }));
  }
}
