import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { VolsnapError } from '../../core/errors.ts';
import type { Page } from '../../core/pagination.ts';
import type { Volume, VolumeFilter, VolumeRepository } from '../../core/volumes.ts';
import { createdOrder, pickFields, snapshotsOfVolumeIndex, volumeKey, volumeOwnerIndex } from './keys.ts';
import { Filters, queryPage } from './query.ts';

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
  'copiedFrom',
] as const;

function toVolume(item: Record<string, unknown>): Volume {
  return pickFields<Volume>(item, FIELDS);
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

  list(
    accountId: string,
    filter: VolumeFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Volume>> {
    const filters = new Filters().beginsWith('name', filter.name).tags(filter.tags);
    return queryPage(
      this.documents,
      {
        table: this.table,
        index: 'gsi1',
        partitionKey: 'gsi1pk',
        partition: volumeOwnerIndex(accountId),
        filters,
      },
      page,
      toVolume,
    );
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
