import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { VolsnapError } from '../../core/errors.ts';
import { decodePageToken, encodePageToken, type Page } from '../../core/pagination.ts';
import type { Volume, VolumeFilter, VolumeRepository } from '../../core/volumes.ts';
import { createdOrder, snapshotsOfVolumeIndex, volumeKey, volumeOwnerIndex } from './keys.ts';

type IndexPosition = { pk: string; sk: string; gsi1pk: string; gsi1sk: string };
const isIndexPosition = (v: unknown): v is IndexPosition =>
  typeof v === 'object' &&
  v !== null &&
  ['pk', 'sk', 'gsi1pk', 'gsi1sk'].every((k) => typeof (v as Record<string, unknown>)[k] === 'string');

const FIELDS = [
  'volumeId',
  'accountId',
  'name',
  'sizeBytes',
  'tags',
  'region',
  'createdAt',
  'sourceSnapshotId',
  'imageUri',
] as const;

function toVolume(item: Record<string, unknown>): Volume {
  return Object.fromEntries(
    FIELDS.filter((f) => item[f] !== undefined).map((f) => [f, item[f]]),
  ) as unknown as Volume;
}

/** Volumes in the region table (key design in keys.ts). */
export class DynamoVolumeRepository implements VolumeRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async create(volume: Volume): Promise<void> {
    await this.documents.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...volumeKey(volume.volumeId),
          type: 'volume',
          ...volume,
          snapshotCount: 0,
          gsi1pk: volumeOwnerIndex(volume.accountId),
          gsi1sk: createdOrder(volume.createdAt, volume.volumeId),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async get(accountId: string, volumeId: string): Promise<Volume | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.table, Key: volumeKey(volumeId), ConsistentRead: true }),
    );
    return Item && Item.accountId === accountId ? toVolume(Item) : undefined;
  }

  async list(
    accountId: string,
    filter: VolumeFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Volume>> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':owner': volumeOwnerIndex(accountId) };
    const conditions: string[] = [];
    if (filter.name) {
      names['#name'] = 'name';
      values[':name'] = filter.name;
      conditions.push('begins_with(#name, :name)');
    }
    Object.entries(filter.tags ?? {}).forEach(([key, value], i) => {
      names['#tags'] = 'tags';
      names[`#t${i}`] = key;
      values[`:t${i}`] = value;
      conditions.push(`#tags.#t${i} = :t${i}`);
    });
    // Filters apply after DynamoDB's Limit, so keep reading until the page is full or the index ends.
    // Limit never exceeds the room left on the page, so where DynamoDB stops is where the page ends.
    const items: Volume[] = [];
    let start = decodePageToken(page.nextToken, isIndexPosition);
    do {
      const result = await this.documents.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :owner',
          FilterExpression: conditions.length > 0 ? conditions.join(' AND ') : undefined,
          ExpressionAttributeNames: Object.keys(names).length > 0 ? names : undefined,
          ExpressionAttributeValues: values,
          ScanIndexForward: false,
          Limit: page.limit - items.length,
          ExclusiveStartKey: start,
        }),
      );
      items.push(...(result.Items ?? []).map(toVolume));
      start = result.LastEvaluatedKey as IndexPosition | undefined;
    } while (start && items.length < page.limit);
    return start ? { items, nextToken: encodePageToken(start) } : { items };
  }

  async deleteUnlessSnapshots(accountId: string, volumeId: string): Promise<string[]> {
    try {
      await this.documents.send(
        new DeleteCommand({
          TableName: this.table,
          Key: volumeKey(volumeId),
          // The count is kept by the same transactions that write snapshots, so no snapshot can
          // appear between this check and the delete.
          ConditionExpression: 'accountId = :account AND snapshotCount = :zero',
          ExpressionAttributeValues: { ':account': accountId, ':zero': 0 },
        }),
      );
      return [];
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    const volume = await this.get(accountId, volumeId);
    if (!volume)
      throw new VolsnapError('volume.notFound', `No volume ${volumeId} in this account and region.`, {
        details: { volumeId },
      });
    const { Items = [] } = await this.documents.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :volume',
        ExpressionAttributeValues: { ':volume': snapshotsOfVolumeIndex(volumeId) },
        ProjectionExpression: 'snapshotId',
      }),
    );
    return Items.map((item) => String(item.snapshotId));
  }
}
