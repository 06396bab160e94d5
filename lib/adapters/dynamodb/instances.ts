import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Instance, InstanceRepository } from '../../core/instances/instances.ts';
import type { Page } from '../../core/shared/pagination.ts';
import { all, any, type Condition, deleteItem, equals, exists, notExists, putItem } from './expressions.ts';
import { attachmentKey, createdOrder, instanceKey, instanceOwnerIndex, pickFields } from './keys.ts';
import { getItem, gsi1Page } from './query.ts';
import { transact } from './writes.ts';

const FIELDS = [
  'instanceId',
  'accountId',
  'name',
  'volumes',
  'properties',
  'state',
  'region',
  'createdAt',
  'updatedAt',
  'revision',
] as const;

/** An attachment item free, or held by this very instance. */
const heldBy = (instance: Instance): Condition =>
  any(notExists('pk'), equals('instanceId', instance.instanceId));

const toInstance = (item: Record<string, unknown>): Instance => pickFields<Instance>(item, FIELDS);

/**
 * Instances in the region table (key design in keys.ts): `INSTANCE#id`, listed per account through
 * gsi1, and one `ATTACHMENT#volumeId` item per attached volume naming its instance, written in the
 * same transaction as the instance, so a volume is attached to one instance at a time. Every write
 * of an instance is conditional on its revision.
 */
export class DynamoInstanceRepository implements InstanceRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async create(instance: Instance): Promise<boolean> {
    return transact(this.documents, [
      { Put: putItem(this.table, this.#item(instance), notExists('pk')) },
      ...instance.volumes.map((v) => this.#attach(instance, v.volumeId)),
    ]);
  }

  async get(instanceId: string): Promise<Instance | undefined> {
    const Item = await getItem(this.documents, this.table, instanceKey(instanceId));
    return Item ? toInstance(Item) : undefined;
  }

  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Instance>> {
    return gsi1Page(this.documents, this.table, instanceOwnerIndex(accountId), page, toInstance);
  }

  async replace(previous: Instance, next: Instance): Promise<boolean> {
    const before = new Set(previous.volumes.map((v) => v.volumeId));
    const after = new Set(next.volumes.map((v) => v.volumeId));
    return transact(this.documents, [
      {
        Put: putItem(this.table, this.#item(next), all(exists('pk'), equals('revision', previous.revision))),
      },
      ...[...after].filter((id) => !before.has(id)).map((id) => this.#attach(next, id)),
      ...[...before].filter((id) => !after.has(id)).map((id) => this.#detach(next, id)),
    ]);
  }

  async delete(instance: Instance): Promise<boolean> {
    return transact(this.documents, [
      {
        Delete: deleteItem(
          this.table,
          instanceKey(instance.instanceId),
          equals('revision', instance.revision),
        ),
      },
      ...instance.volumes.map((v) => this.#detach(instance, v.volumeId)),
    ]);
  }

  async attachedTo(volumeId: string): Promise<string | undefined> {
    const Item = await getItem(this.documents, this.table, attachmentKey(volumeId));
    return Item ? String(Item.instanceId) : undefined;
  }

  #item(instance: Instance): Record<string, unknown> {
    return {
      ...instanceKey(instance.instanceId),
      type: 'instance',
      ...instance,
      gsi1pk: instanceOwnerIndex(instance.accountId),
      gsi1sk: createdOrder(instance.createdAt, instance.instanceId),
    };
  }

  /** Claims a volume for the instance: only if no other instance holds it. */
  #attach(instance: Instance, volumeId: string) {
    return {
      Put: putItem(
        this.table,
        {
          ...attachmentKey(volumeId),
          type: 'attachment',
          volumeId,
          instanceId: instance.instanceId,
          accountId: instance.accountId,
        },
        heldBy(instance),
      ),
    };
  }

  #detach(instance: Instance, volumeId: string) {
    return { Delete: deleteItem(this.table, attachmentKey(volumeId), heldBy(instance)) };
  }
}
