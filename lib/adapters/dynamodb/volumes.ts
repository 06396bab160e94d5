import { DeleteCommand, type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { VolsnapError } from '../../core/shared/errors.ts';
import type { Page } from '../../core/shared/pagination.ts';
import type { Volume, VolumeDeletion, VolumeFilter, VolumeRepository } from '../../core/volumes/volumes.ts';
import { applied } from './errors.ts';
import { all, deleteItem, equals, notExists, putItem } from './expressions.ts';
import { createdOrder, pickFields, snapshotsOfVolumeIndex, volumeKey, volumeOwnerIndex } from './keys.ts';
import { Filters, getItem, gsi1Page, queryAll } from './query.ts';

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
      new PutCommand(
        putItem(
          this.table,
          {
            ...volumeKey(volume.volumeId),
            type: 'volume',
            ...volume,
            snapshotCount: 0,
            gsi1pk: volumeOwnerIndex(volume.accountId),
            gsi1sk: createdOrder(volume.createdAt, volume.volumeId),
          },
          notExists('pk'),
        ),
      ),
    );
  }

  async get(accountId: string, volumeId: string): Promise<Volume | undefined> {
    const Item = await getItem(this.documents, this.table, volumeKey(volumeId));
    return Item && Item.accountId === accountId ? toVolume(Item) : undefined;
  }

  list(
    accountId: string,
    filter: VolumeFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Volume>> {
    const filters = new Filters().beginsWith('name', filter.name).tags(filter.tags);
    return gsi1Page(this.documents, this.table, volumeOwnerIndex(accountId), page, toVolume, filters);
  }

  async deleteUnlessSnapshots(accountId: string, volumeId: string): Promise<VolumeDeletion> {
    // The count is kept by the same transactions that write snapshots: deleting on the condition
    // that it is what was just read means no snapshot appeared meanwhile. A few rounds, as snapshots
    // being purged or created move it.
    let seen: Awaited<ReturnType<DynamoVolumeRepository['snapshotsOf']>> = [];
    for (let round = 0; ; round++) {
      const deleted = await applied(
        this.documents.send(
          new DeleteCommand(
            deleteItem(
              this.table,
              volumeKey(volumeId),
              all(equals('accountId', accountId), equals('snapshotCount', seen.length)),
            ),
          ),
        ),
      );
      if (deleted) {
        return {
          holding: [],
          recycled: seen
            .filter((s) => s.state === 'recycled')
            .map((s) => ({ snapshotId: s.snapshotId, ...(s.purgeAt ? { purgeAt: s.purgeAt } : {}) })),
        };
      }
      const volume = await this.get(accountId, volumeId);
      if (!volume)
        throw new VolsnapError('volume.notFound', `No volume ${volumeId} in this account and region.`, {
          details: { volumeId },
        });
      seen = await this.snapshotsOf(volumeId);
      const holding = seen.filter((s) => s.state !== 'recycled' && s.state !== 'deleting');
      if (holding.length > 0) return { holding: holding.map((s) => s.snapshotId), recycled: [] };
      if (round === 4) {
        throw new VolsnapError(
          'volume.hasSnapshots',
          `The snapshots of volume ${volumeId} changed while it was being deleted: try again.`,
          { details: { volumeId } },
        );
      }
    }
  }

  /**
   * The snapshots indexed under a volume (every one counted on it, in the recycle bin or being
   * deleted too): id, state and purge time.
   */
  private async snapshotsOf(
    volumeId: string,
  ): Promise<{ snapshotId: string; state?: string; purgeAt?: string }[]> {
    const items = await queryAll(this.documents, {
      TableName: this.table,
      IndexName: 'gsi2',
      KeyConditionExpression: 'gsi2pk = :volume',
      ExpressionAttributeValues: { ':volume': snapshotsOfVolumeIndex(volumeId) },
      ExpressionAttributeNames: { '#state': 'state' },
      ProjectionExpression: 'snapshotId, #state, purgeAt',
    });
    return items.map((item) => ({
      snapshotId: String(item.snapshotId),
      ...(typeof item.state === 'string' ? { state: item.state } : {}),
      ...(typeof item.purgeAt === 'string' ? { purgeAt: item.purgeAt } : {}),
    }));
  }
}
