import { type DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Image, ImageRepository, ImageState } from '../../core/instances/images.ts';
import type { Page } from '../../core/shared/pagination.ts';
import { all, deleteItem, exists, notExists, oneOf, putItem, updateItem } from './expressions.ts';
import {
  createdOrder,
  imageKey,
  imageOwnerIndex,
  imageRefKey,
  imageShareKey,
  imagesSharedWithIndex,
  pickFields,
} from './keys.ts';
import { getItem, gsi1Page, queryAll } from './query.ts';
import { transact, updateReturning } from './writes.ts';

const FIELDS = [
  'imageId',
  'accountId',
  'name',
  'description',
  'instance',
  'snapshots',
  'groupId',
  'takenAt',
  'crashConsistent',
  'state',
  'stateReason',
  'region',
  'createdAt',
  'completedAt',
  'copiedFrom',
] as const;

function toImage(item: Record<string, unknown>): Image {
  const image = pickFields<Image>(item, FIELDS);
  const shared = item.sharedWith as Set<string> | undefined;
  return shared && shared.size > 0 ? { ...image, sharedWith: [...shared].sort() } : image;
}

/**
 * Images in the region table (key design in keys.ts): `IMAGE#id` listed per account through gsi1;
 * a share item per grantee in the image's partition, listed per grantee through gsi1; and an
 * `IMAGEREF#snapshotId` item per snapshot of the image, so deleting an image can tell whether
 * another image holds a snapshot.
 */
export class DynamoImageRepository implements ImageRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async create(image: Image): Promise<void> {
    const { sharedWith: _none, progress: _view, ...stored } = image;
    await this.documents.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: putItem(
              this.table,
              {
                ...imageKey(image.imageId),
                type: 'image',
                ...stored,
                snapshots: image.snapshots.map(({ state: _s, progress: _p, stateReason: _r, ...ref }) => ref),
                gsi1pk: imageOwnerIndex(image.accountId),
                gsi1sk: createdOrder(image.createdAt, image.imageId),
              },
              notExists('pk'),
            ),
          },
          ...image.snapshots.map((s) => ({
            Put: putItem(this.table, {
              ...imageRefKey(s.snapshotId, image.imageId),
              type: 'imageRef',
              snapshotId: s.snapshotId,
              imageId: image.imageId,
            }),
          })),
        ],
      }),
    );
  }

  async get(imageId: string): Promise<Image | undefined> {
    const Item = await getItem(this.documents, this.table, imageKey(imageId));
    return Item ? toImage(Item) : undefined;
  }

  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Image>> {
    return gsi1Page(this.documents, this.table, imageOwnerIndex(accountId), page, toImage);
  }

  async listShared(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Image>> {
    // One share item per image in the grantee's index; the images are then read by key
    // (consistently: an unshared or deleted one drops out at once).
    const shares = await gsi1Page(
      this.documents,
      this.table,
      imagesSharedWithIndex(accountId),
      page,
      (item) => String(item.imageId),
    );
    const found = await Promise.all(shares.items.map((id) => this.get(id)));
    const items = found.filter(
      (i): i is Image => i !== undefined && (i.sharedWith ?? []).includes(accountId),
    );
    return shares.nextToken ? { items, nextToken: shares.nextToken } : { items };
  }

  async transition(
    imageId: string,
    from: readonly ImageState[],
    to: ImageState,
    changes: Partial<Pick<Image, 'stateReason' | 'completedAt'>> = {},
  ): Promise<Image | undefined> {
    const moved = await updateReturning(
      this.documents,
      updateItem(
        this.table,
        imageKey(imageId),
        { set: { ...changes, state: to } },
        all(exists('pk'), oneOf('state', from)),
      ),
    );
    return moved ? toImage(moved) : undefined;
  }

  async share(imageId: string, accountId: string): Promise<Image | undefined> {
    const current = await this.get(imageId);
    if (!current) return undefined;
    const ok = await transact(this.documents, [
      {
        Update: updateItem(
          this.table,
          imageKey(imageId),
          { add: { sharedWith: new Set([accountId]) } },
          exists('pk'),
        ),
      },
      {
        Put: putItem(this.table, {
          ...imageShareKey(imageId, accountId),
          type: 'imageShare',
          imageId,
          ownerAccountId: current.accountId,
          grantee: accountId,
          gsi1pk: imagesSharedWithIndex(accountId),
          gsi1sk: createdOrder(current.createdAt, imageId),
        }),
      },
    ]);
    return ok ? this.get(imageId) : undefined;
  }

  async unshare(imageId: string, accountId: string): Promise<Image | undefined> {
    const ok = await transact(this.documents, [
      {
        Update: updateItem(
          this.table,
          imageKey(imageId),
          { delete: { sharedWith: new Set([accountId]) } },
          exists('pk'),
        ),
      },
      { Delete: deleteItem(this.table, imageShareKey(imageId, accountId)) },
    ]);
    return ok ? this.get(imageId) : undefined;
  }

  async remove(image: Image): Promise<void> {
    await this.documents.send(
      new TransactWriteCommand({
        TransactItems: [
          { Delete: deleteItem(this.table, imageKey(image.imageId)) },
          ...image.snapshots.map((s) => ({
            Delete: deleteItem(this.table, imageRefKey(s.snapshotId, image.imageId)),
          })),
          ...(image.sharedWith ?? []).map((grantee) => ({
            Delete: deleteItem(this.table, imageShareKey(image.imageId, grantee)),
          })),
        ],
      }),
    );
  }

  async imagesOf(snapshotId: string): Promise<string[]> {
    const items = await queryAll(this.documents, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': imageRefKey(snapshotId, '').pk },
      ProjectionExpression: 'imageId',
      ConsistentRead: true,
    });
    return items.map((item) => String(item.imageId)).sort();
  }
}
