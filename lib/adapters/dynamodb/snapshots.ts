import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  IN_FLIGHT_LIMITS,
  inFlightExceeded,
  quotaExceeded,
  type Usage,
} from '../../core/identity/accounts.ts';
import { VolsnapError } from '../../core/shared/errors.ts';
import type { Page } from '../../core/shared/pagination.ts';
import {
  type ClientTokenRecord,
  type Grantee,
  IN_FLIGHT_STATES,
  inFlightCounterOf,
  matchesFilter,
  type Snapshot,
  type SnapshotFilter,
  type SnapshotLimits,
  type SnapshotRepository,
  type SnapshotState,
} from '../../core/snapshots/snapshots.ts';
import { batchWriteAll } from './batch.ts';
import {
  cancellationCodes,
  isConditionFailed,
  isTransactionCanceled,
  itemConditionFailed,
} from './errors.ts';
import {
  completedOfVolumeIndex,
  createdOrder,
  PUBLIC,
  pickFields,
  sharedWithIndex,
  shareKey,
  snapshotKey,
  snapshotsOfVolumeIndex,
  usageKey,
  volumeKey,
} from './keys.ts';
import { Filters, queryAll, queryPage, scanPage } from './query.ts';
import { readUsage } from './usage.ts';

const ownerIndex = (accountId: string) => `ACCOUNT#${accountId}#SNAPSHOTS`;
const tokenKey = (accountId: string, token: string) => ({ pk: `TOKEN#${accountId}#${token}`, sk: 'TOKEN' });
const segmentSk = (segmentId: string) => `SEGMENT#${segmentId}`;
const manifestUploadSk = (manifestUploadId: string) => `MANIFESTUPLOAD#${manifestUploadId}`;
/** The counts of keys issued to a client's upload session (one item beside the snapshot's). */
const SESSION_SK = 'SESSION';
/** Client tokens are remembered this long (then DynamoDB's TTL removes them). */
const TOKEN_TTL_SECONDS = 7 * 24 * 3600;

const FIELDS = [
  'snapshotId',
  'accountId',
  'volumeId',
  'volumeSize',
  'blockSize',
  'name',
  'description',
  'tags',
  'state',
  'progress',
  'stateReason',
  'parentSnapshotId',
  'region',
  'createdAt',
  'completedAt',
  'deadline',
  'stats',
  'parts',
  'public',
  'copiedFrom',
  'importedFrom',
  'imageId',
  'groupId',
  'takenAt',
  'deletedAt',
  'purgeAt',
  'holds',
  'leaseUntil',
  'leaseParts',
  'dispatches',
  'verification',
] as const;

function toSnapshot(item: Record<string, unknown>): Snapshot {
  const { holds, ...snapshot } = pickFields<Snapshot>(item, FIELDS);
  const shared = item.sharedWith as Set<string> | undefined;
  const done = item.partsDone as Set<number> | undefined;
  return {
    ...snapshot,
    ...(shared && shared.size > 0 ? { sharedWith: [...shared].sort() } : {}),
    ...(done && done.size > 0 ? { partsDone: [...done].sort((a, b) => a - b) } : {}),
    ...(holds && Object.keys(holds).length > 0 ? { holds } : {}),
  };
}

/** A transition whose write lost to a move between two states it may leave: tried again. */
const RACED = Symbol('raced');

/** The sparse index entry of a completed snapshot (see keys.ts). */
const completedIndex = (snapshot: Pick<Snapshot, 'volumeId' | 'createdAt' | 'snapshotId'>) => ({
  gsi3pk: completedOfVolumeIndex(snapshot.volumeId),
  gsi3sk: createdOrder(snapshot.createdAt, snapshot.snapshotId),
});

const granteeId = (grantee: Grantee) => (grantee === 'public' ? PUBLIC : grantee.accountId);

/** Snapshot records in the region table (key design in keys.ts). */
export class DynamoSnapshotRepository implements SnapshotRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly nowSeconds: () => number,
  ) {}

  async create(
    snapshot: Snapshot,
    clientToken?: { token: string; requestHash: string },
    limits?: SnapshotLimits,
  ): Promise<ClientTokenRecord | undefined> {
    // A snapshot being written counts against its kind's limit, and on its volume.
    const inFlight = IN_FLIGHT_STATES.includes(snapshot.state) ? inFlightCounterOf(snapshot) : undefined;
    const maxInFlight = inFlight ? limits?.[IN_FLIGHT_LIMITS[inFlight]] : undefined;
    const maxPerVolume = inFlight ? limits?.maxPendingSnapshotsPerVolume : undefined;
    const usageConditions = [
      ...(limits
        ? [
            '(attribute_not_exists(snapshots) OR snapshots < :maxSnapshots)',
            '(attribute_not_exists(storedBytes) OR storedBytes < :maxBytes)',
          ]
        : []),
      ...(maxInFlight !== undefined ? ['(attribute_not_exists(#inFlight) OR #inFlight < :maxInFlight)'] : []),
    ];
    const items = [
      {
        Put: {
          TableName: this.table,
          Item: {
            ...snapshotKey(snapshot.snapshotId),
            type: 'snapshot',
            ...snapshot,
            gsi1pk: ownerIndex(snapshot.accountId),
            gsi1sk: createdOrder(snapshot.createdAt, snapshot.snapshotId),
            gsi2pk: snapshotsOfVolumeIndex(snapshot.volumeId),
            gsi2sk: createdOrder(snapshot.createdAt, snapshot.snapshotId),
            ...(snapshot.state === 'completed' ? completedIndex(snapshot) : {}),
            ...(inFlight ? { countedInFlight: inFlight } : {}),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      {
        // Counting the snapshot on its volume in the same transaction is what keeps a volume with
        // snapshots from being deleted (DynamoVolumeRepository.deleteUnlessSnapshots).
        Update: {
          TableName: this.table,
          Key: volumeKey(snapshot.volumeId),
          UpdateExpression: `ADD snapshotCount :one${inFlight ? ', pendingSnapshots :one' : ''}`,
          ConditionExpression: `attribute_exists(pk) AND accountId = :account${
            maxPerVolume !== undefined
              ? ' AND (attribute_not_exists(pendingSnapshots) OR pendingSnapshots < :maxPerVolume)'
              : ''
          }`,
          ExpressionAttributeValues: {
            ':one': 1,
            ':account': snapshot.accountId,
            ...(maxPerVolume !== undefined ? { ':maxPerVolume': maxPerVolume } : {}),
          },
        },
      },
      {
        // The quota is checked and the count taken in the same write: two racing creates cannot both
        // take the last place.
        Update: {
          TableName: this.table,
          Key: usageKey(snapshot.accountId),
          UpdateExpression: `ADD snapshots :one${inFlight ? ', #inFlight :one' : ''}`,
          ...(inFlight ? { ExpressionAttributeNames: { '#inFlight': inFlight } } : {}),
          ...(usageConditions.length > 0 ? { ConditionExpression: usageConditions.join(' AND ') } : {}),
          ExpressionAttributeValues: {
            ':one': 1,
            ...(limits ? { ':maxSnapshots': limits.maxSnapshots, ':maxBytes': limits.maxStoredBytes } : {}),
            ...(maxInFlight !== undefined ? { ':maxInFlight': maxInFlight } : {}),
          },
        },
      },
      ...(clientToken
        ? [
            {
              Put: {
                TableName: this.table,
                Item: {
                  ...tokenKey(snapshot.accountId, clientToken.token),
                  type: 'clientToken',
                  snapshotId: snapshot.snapshotId,
                  requestHash: clientToken.requestHash,
                  expiresAt: this.nowSeconds() + TOKEN_TTL_SECONDS,
                },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ]
        : []),
    ];
    try {
      await this.documents.send(new TransactWriteCommand({ TransactItems: items }));
      return undefined;
    } catch (error) {
      if (!isTransactionCanceled(error)) throw error;
      const reasons = cancellationCodes(error);
      if (clientToken && reasons[3] === 'ConditionalCheckFailed') {
        const { Item } = await this.documents.send(
          new GetCommand({
            TableName: this.table,
            Key: tokenKey(snapshot.accountId, clientToken.token),
            ConsistentRead: true,
          }),
        );
        if (Item) return { snapshotId: String(Item.snapshotId), requestHash: String(Item.requestHash) };
      }
      if (reasons[1] === 'ConditionalCheckFailed') {
        const { Item: volume } = await this.documents.send(
          new GetCommand({ TableName: this.table, Key: volumeKey(snapshot.volumeId), ConsistentRead: true }),
        );
        if (maxPerVolume !== undefined && volume?.accountId === snapshot.accountId) {
          throw inFlightExceeded(
            snapshot.region,
            'pendingSnapshotsPerVolume',
            Number(volume.pendingSnapshots ?? 0),
            maxPerVolume,
          );
        }
        throw new VolsnapError(
          'volume.notFound',
          `No volume ${snapshot.volumeId} in this account and region.`,
          {
            details: { volumeId: snapshot.volumeId },
          },
        );
      }
      if (limits && reasons[2] === 'ConditionalCheckFailed') {
        const usage = await this.usage(snapshot.accountId);
        if (
          inFlight &&
          maxInFlight !== undefined &&
          usage.snapshots < limits.maxSnapshots &&
          usage.storedBytes < limits.maxStoredBytes
        ) {
          throw inFlightExceeded(snapshot.region, inFlight, usage[inFlight], maxInFlight);
        }
        throw quotaExceeded(snapshot.region, limits, usage);
      }
      throw error;
    }
  }

  async get(snapshotId: string): Promise<Snapshot | undefined> {
    const item = await this.#item(snapshotId);
    return item ? toSnapshot(item) : undefined;
  }

  async #item(snapshotId: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.table, Key: snapshotKey(snapshotId), ConsistentRead: true }),
    );
    return Item;
  }

  list(
    accountId: string,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Snapshot>> {
    const filters = new Filters()
      .equals('state', filter.state)
      .beginsWith('name', filter.name)
      .tags(filter.tags);
    // A volume's snapshots have their own index; the owner is then checked as a filter.
    const index = filter.volumeId
      ? { index: 'gsi2', partitionKey: 'gsi2pk', partition: snapshotsOfVolumeIndex(filter.volumeId) }
      : { index: 'gsi1', partitionKey: 'gsi1pk', partition: ownerIndex(accountId) };
    if (filter.volumeId) filters.equals('accountId', accountId);
    return queryPage(this.documents, { table: this.table, ...index, filters }, page, toSnapshot);
  }

  async listShared(
    grantee: Grantee,
    filter: SnapshotFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Snapshot>> {
    // The grantee's index holds one share item per snapshot; the snapshots themselves are then read
    // by key (consistently: an unshared or deleted one drops out at once) and filtered here.
    const shares = await queryPage(
      this.documents,
      {
        table: this.table,
        index: 'gsi1',
        partitionKey: 'gsi1pk',
        partition: sharedWithIndex(granteeId(grantee)),
        filters: new Filters(),
      },
      page,
      (item) => String(item.snapshotId),
    );
    const found = await Promise.all(shares.items.map((id) => this.get(id)));
    const items = found.filter(
      (s): s is Snapshot =>
        s !== undefined &&
        s.state !== 'deleting' &&
        (grantee === 'public' ? s.public === true : (s.sharedWith ?? []).includes(grantee.accountId)) &&
        matchesFilter(s, filter),
    );
    return shares.nextToken ? { items, nextToken: shares.nextToken } : { items };
  }

  async share(snapshotId: string, grantee: Grantee): Promise<Snapshot | undefined> {
    const id = granteeId(grantee);
    const current = await this.get(snapshotId);
    if (current?.state !== 'completed') return undefined;
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table,
                Key: snapshotKey(snapshotId),
                UpdateExpression: grantee === 'public' ? 'SET #public = :true' : 'ADD sharedWith :grantee',
                ConditionExpression: '#state = :completed',
                ExpressionAttributeNames: {
                  '#state': 'state',
                  ...(grantee === 'public' ? { '#public': 'public' } : {}),
                },
                ExpressionAttributeValues: {
                  ':completed': 'completed',
                  ...(grantee === 'public' ? { ':true': true } : { ':grantee': new Set([id]) }),
                },
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: {
                  ...shareKey(snapshotId, id),
                  type: 'share',
                  snapshotId,
                  ownerAccountId: current.accountId,
                  grantee: id,
                  gsi1pk: sharedWithIndex(id),
                  gsi1sk: createdOrder(current.createdAt, snapshotId),
                },
              },
            },
          ],
        }),
      );
    } catch (error) {
      if (isTransactionCanceled(error)) return undefined;
      throw error;
    }
    return this.get(snapshotId);
  }

  async unshare(snapshotId: string, grantee: Grantee): Promise<Snapshot | undefined> {
    const id = granteeId(grantee);
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table,
                Key: snapshotKey(snapshotId),
                UpdateExpression: grantee === 'public' ? 'REMOVE #public' : 'DELETE sharedWith :grantee',
                ConditionExpression: 'attribute_exists(pk)',
                ...(grantee === 'public'
                  ? { ExpressionAttributeNames: { '#public': 'public' } }
                  : { ExpressionAttributeValues: { ':grantee': new Set([id]) } }),
              },
            },
            { Delete: { TableName: this.table, Key: shareKey(snapshotId, id) } },
          ],
        }),
      );
    } catch (error) {
      if (isTransactionCanceled(error)) return undefined;
      throw error;
    }
    return this.get(snapshotId);
  }

  usage(accountId: string): Promise<Usage> {
    return readUsage(this.documents, this.table, accountId);
  }

  async latestCompleted(volumeId: string): Promise<Snapshot | undefined> {
    // The sparse index holds only completed snapshots: the newest is its first key, whatever else
    // (pending, failed, recycled) the volume has. Its record is then read consistently: the index
    // lags, so a snapshot that just left `completed` is skipped for the next.
    const { Items = [] } = await this.documents.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'gsi3',
        KeyConditionExpression: 'gsi3pk = :pk',
        ExpressionAttributeValues: { ':pk': completedOfVolumeIndex(volumeId) },
        ScanIndexForward: false,
        Limit: 2,
      }),
    );
    for (const item of Items) {
      const snapshot = await this.get(String(item.pk).slice('SNAPSHOT#'.length));
      if (snapshot?.state === 'completed') return snapshot;
    }
    return undefined;
  }

  async transition(
    snapshotId: string,
    from: readonly SnapshotState[],
    to: SnapshotState,
    changes: Partial<Snapshot> = {},
    parent?: { snapshotId: string; states: readonly SnapshotState[] },
  ): Promise<Snapshot | undefined> {
    // A write conditional on the state read loses to a move between two of `from` (queued →
    // pending): then it is tried again from the new state.
    for (let attempt = 0; attempt < 3; attempt++) {
      const moved = await this.#transitionOnce(snapshotId, from, to, changes, parent);
      if (moved !== RACED) return moved;
    }
    return undefined;
  }

  async #transitionOnce(
    snapshotId: string,
    from: readonly SnapshotState[],
    to: SnapshotState,
    changes: Partial<Snapshot>,
    parent: { snapshotId: string; states: readonly SnapshotState[] } | undefined,
  ): Promise<Snapshot | undefined | typeof RACED> {
    const leavesInFlight =
      !IN_FLIGHT_STATES.includes(to) && from.some((state) => IN_FLIGHT_STATES.includes(state));
    const completes = changes.stats !== undefined && to === 'completed' && from.includes('pending');
    // What the counters and the completed index need (the owner, the volume, the kind, the state
    // it leaves) is read first; the write is then conditional on that very state, so a concurrent
    // move makes it fail rather than count wrong.
    const item = leavesInFlight || completes || to === 'completed' ? await this.#item(snapshotId) : undefined;
    const current = item ? toSnapshot(item) : undefined;
    // The counter the create took (absent on snapshots stored before counting began: nothing to give back).
    const counted = typeof item?.countedInFlight === 'string' ? item.countedInFlight : undefined;
    if ((leavesInFlight || completes || to === 'completed') && (!current || !from.includes(current.state)))
      return undefined;
    const states = current ? [current.state] : from;
    const releases =
      current !== undefined &&
      counted !== undefined &&
      leavesInFlight &&
      IN_FLIGHT_STATES.includes(current.state);
    const addsBytes = current !== undefined && completes && current.state === 'pending';
    const index = to === 'completed' && current ? completedIndex(current) : {};
    const set = Object.entries({ ...changes, ...index, state: to }).filter(([, v]) => v !== undefined);
    const removed = [
      ...Object.entries(changes)
        .filter(([, v]) => v === undefined)
        .map(([k]) => k),
      // Out of `completed`, out of the index of completed snapshots.
      ...(to !== 'completed' && from.includes('completed') ? ['gsi3pk', 'gsi3sk'] : []),
      ...(releases ? ['countedInFlight'] : []),
    ];
    const names = Object.fromEntries([
      ...set.map(([k], i) => [`#s${i}`, k]),
      ...removed.map((k, i) => [`#r${i}`, k]),
    ]);
    const values: Record<string, unknown> = Object.fromEntries(set.map(([, v], i) => [`:s${i}`, v]));
    states.forEach((state, i) => {
      values[`:from${i}`] = state;
    });
    const update = {
      TableName: this.table,
      Key: snapshotKey(snapshotId),
      UpdateExpression: `SET ${set.map((_, i) => `#s${i} = :s${i}`).join(', ')}${
        removed.length > 0 ? ` REMOVE ${removed.map((_, i) => `#r${i}`).join(', ')}` : ''
      }`,
      ConditionExpression: `attribute_exists(pk) AND #state IN (${states.map((_, i) => `:from${i}`).join(', ')})`,
      ExpressionAttributeNames: { ...names, '#state': 'state' },
      ExpressionAttributeValues: values,
    };
    if (releases || addsBytes || parent) {
      // Completing counts the bytes the snapshot added, and leaving `pending` gives back its place
      // in flight, in the same write as the state change; the parent's state is checked in it too.
      const usage = [
        ...(addsBytes ? ['storedBytes :bytes'] : []),
        ...(releases ? ['#inFlight :minusOne'] : []),
      ];
      try {
        await this.documents.send(
          new TransactWriteCommand({
            TransactItems: [
              { Update: update },
              ...(current && usage.length > 0
                ? [
                    {
                      Update: {
                        TableName: this.table,
                        Key: usageKey(current.accountId),
                        UpdateExpression: `ADD ${usage.join(', ')}`,
                        ...(releases ? { ExpressionAttributeNames: { '#inFlight': counted as string } } : {}),
                        ExpressionAttributeValues: {
                          ...(addsBytes ? { ':bytes': changes.stats?.newBytes ?? 0 } : {}),
                          ...(releases ? { ':minusOne': -1 } : {}),
                        },
                      },
                    },
                  ]
                : []),
              ...(current && releases
                ? [
                    {
                      Update: {
                        TableName: this.table,
                        Key: volumeKey(current.volumeId),
                        UpdateExpression: 'ADD pendingSnapshots :minusOne',
                        // The volume cannot be deleted while it has snapshots: this never creates one.
                        ConditionExpression: 'attribute_exists(pk)',
                        ExpressionAttributeValues: { ':minusOne': -1 },
                      },
                    },
                  ]
                : []),
              ...(parent
                ? [
                    {
                      ConditionCheck: {
                        TableName: this.table,
                        Key: snapshotKey(parent.snapshotId),
                        ConditionExpression: `#state IN (${parent.states.map((_, i) => `:p${i}`).join(', ')})`,
                        ExpressionAttributeNames: { '#state': 'state' },
                        ExpressionAttributeValues: Object.fromEntries(
                          parent.states.map((s, i) => [`:p${i}`, s]),
                        ),
                      },
                    },
                  ]
                : []),
            ],
          }),
        );
      } catch (error) {
        if (isTransactionCanceled(error)) return this.#raced(snapshotId, current, from);
        throw error;
      }
      return this.get(snapshotId);
    }
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({ ...update, ReturnValues: 'ALL_NEW' }),
      );
      return Attributes ? toSnapshot(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailed(error)) return this.#raced(snapshotId, current, from);
      throw error;
    }
  }

  /** After a refused write: RACED if the snapshot moved from the state read to another of `from`. */
  async #raced(
    snapshotId: string,
    read: Snapshot | undefined,
    from: readonly SnapshotState[],
  ): Promise<undefined | typeof RACED> {
    if (!read) return undefined;
    const now = await this.get(snapshotId);
    return now && now.state !== read.state && from.includes(now.state) ? RACED : undefined;
  }

  async updateMetadata(
    snapshotId: string,
    changes: Pick<Partial<Snapshot>, 'name' | 'description' | 'tags'>,
  ): Promise<Snapshot | undefined> {
    const set = Object.entries(changes).filter(([, v]) => v !== undefined);
    if (set.length === 0) return this.get(snapshotId);
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: snapshotKey(snapshotId),
          UpdateExpression: `SET ${set.map((_, i) => `#m${i} = :m${i}`).join(', ')}`,
          ConditionExpression: 'attribute_exists(pk) AND #state <> :deleting',
          ExpressionAttributeNames: {
            ...Object.fromEntries(set.map(([k], i) => [`#m${i}`, k])),
            '#state': 'state',
          },
          ExpressionAttributeValues: {
            ...Object.fromEntries(set.map(([, v], i) => [`:m${i}`, v])),
            ':deleting': 'deleting',
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? toSnapshot(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw error;
    }
  }

  async remove(snapshot: Snapshot): Promise<void> {
    try {
      await this.#remove(snapshot, true);
    } catch (error) {
      // A snapshot in the recycle bin outlives its volume: with the volume gone, there is no count.
      const volumeGone = cancellationCodes(error)[0] === 'None' && itemConditionFailed(error, 1);
      if (!volumeGone) throw error;
      await this.#remove(snapshot, false);
    }
    // The upload session's records go with it (best effort: they only matter while it is pending).
    const pk = snapshotKey(snapshot.snapshotId).pk;
    const segments = await this.sessionSegments(snapshot.snapshotId);
    const manifests = await this.sessionManifestUploads(snapshot.snapshotId);
    await batchWriteAll(this.documents, this.table, [
      ...[...segments].map((id) => ({ DeleteRequest: { Key: { pk, sk: segmentSk(id) } } })),
      ...[...manifests].map((id) => ({ DeleteRequest: { Key: { pk, sk: manifestUploadSk(id) } } })),
      { DeleteRequest: { Key: { pk, sk: SESSION_SK } } },
    ]);
  }

  async #remove(snapshot: Snapshot, counted: boolean): Promise<void> {
    await this.documents.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Delete: {
              TableName: this.table,
              Key: snapshotKey(snapshot.snapshotId),
              ConditionExpression: 'attribute_exists(pk)',
            },
          },
          ...(counted
            ? [
                {
                  Update: {
                    TableName: this.table,
                    Key: volumeKey(snapshot.volumeId),
                    UpdateExpression: 'ADD snapshotCount :minusOne',
                    ConditionExpression: 'attribute_exists(pk)',
                    ExpressionAttributeValues: { ':minusOne': -1 },
                  },
                },
              ]
            : []),
          {
            Update: {
              TableName: this.table,
              Key: usageKey(snapshot.accountId),
              UpdateExpression: 'ADD snapshots :minusOne, storedBytes :minusBytes',
              ExpressionAttributeValues: {
                ':minusOne': -1,
                // Stats exist once a snapshot completed, and only then were its bytes counted.
                ':minusBytes': -(snapshot.stats?.newBytes ?? 0),
              },
            },
          },
          // Its grants go with it, so no listing of another account keeps pointing at it.
          ...[...(snapshot.sharedWith ?? []), ...(snapshot.public ? [PUBLIC] : [])].map((grantee) => ({
            Delete: { TableName: this.table, Key: shareKey(snapshot.snapshotId, grantee) },
          })),
        ],
      }),
    );
  }

  async completePart(snapshotId: string, part: number): Promise<number | undefined> {
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: snapshotKey(snapshotId),
          // A set: marking a part twice (a redelivered message) counts it once.
          UpdateExpression: 'ADD partsDone :part',
          ConditionExpression: '#state = :pending',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':part': new Set([part]), ':pending': 'pending' },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return (Attributes?.partsDone as Set<number> | undefined)?.size;
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw error;
    }
  }

  listAll(page: { limit: number; nextToken?: string }): Promise<Page<Snapshot>> {
    return scanPage(this.documents, this.table, 'snapshot', page, toSnapshot);
  }

  /**
   * Puts completed snapshots stored before the index of completed snapshots existed into it (one
   * page of the table at a time; idempotent, safe beside live traffic: each write is conditional on
   * the snapshot still being completed and not yet indexed). Without it, a volume's first snapshot
   * after the upgrade finds no parent and is written in full. Returns how many it indexed.
   */
  async indexCompleted(page: {
    limit: number;
    nextToken?: string;
  }): Promise<{ indexed: number; nextToken?: string }> {
    const found = await scanPage(this.documents, this.table, 'snapshot', page, (item) => item);
    let indexed = 0;
    for (const item of found.items) {
      if (item.state !== 'completed' || item.gsi3pk !== undefined) continue;
      const snapshot = toSnapshot(item);
      const index = completedIndex(snapshot);
      try {
        await this.documents.send(
          new UpdateCommand({
            TableName: this.table,
            Key: snapshotKey(snapshot.snapshotId),
            UpdateExpression: 'SET gsi3pk = :pk, gsi3sk = :sk',
            ConditionExpression: '#state = :completed AND attribute_not_exists(gsi3pk)',
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: {
              ':pk': index.gsi3pk,
              ':sk': index.gsi3sk,
              ':completed': 'completed',
            },
          }),
        );
        indexed++;
      } catch (error) {
        if (!isConditionFailed(error)) throw error;
      }
    }
    return { indexed, ...(found.nextToken ? { nextToken: found.nextToken } : {}) };
  }

  async hold(snapshotId: string, holder: string, until: string): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: snapshotKey(snapshotId),
          // A map of holders: one SET of the map first if absent, then of the holder's entry.
          UpdateExpression: 'SET holds = if_not_exists(holds, :empty)',
          ConditionExpression: '#state = :completed',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':empty': {}, ':completed': 'completed' },
        }),
      );
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: snapshotKey(snapshotId),
          UpdateExpression: 'SET holds.#holder = :until',
          ConditionExpression: '#state = :completed',
          ExpressionAttributeNames: { '#state': 'state', '#holder': holder },
          ExpressionAttributeValues: { ':until': until, ':completed': 'completed' },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
  }

  async release(snapshotId: string, holder: string): Promise<void> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: snapshotKey(snapshotId),
          UpdateExpression: 'REMOVE holds.#holder',
          ConditionExpression: 'attribute_exists(holds)',
          ExpressionAttributeNames: { '#holder': holder },
        }),
      );
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
    }
  }

  async renewLease(
    snapshotId: string,
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
    claim?: Required<Pick<Snapshot, 'verification' | 'parts' | 'deadline'>>,
  ): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: snapshotKey(snapshotId),
          UpdateExpression: `SET leaseUntil = :lease, leaseParts = :parts, dispatches = :dispatches${claim ? ', verification = :verification, #partCount = :partCount, deadline = :deadline' : ''}`,
          ConditionExpression: `#state = :pending AND ${expected === undefined ? 'attribute_not_exists(leaseUntil)' : 'leaseUntil = :expected'}`,
          ExpressionAttributeNames: { '#state': 'state', ...(claim ? { '#partCount': 'parts' } : {}) },
          ExpressionAttributeValues: {
            ':lease': lease.leaseUntil,
            ':parts': lease.leaseParts,
            ':dispatches': lease.dispatches,
            ':pending': 'pending',
            ...(expected === undefined ? {} : { ':expected': expected }),
            ...(claim
              ? {
                  ':verification': claim.verification,
                  ':partCount': claim.parts,
                  ':deadline': claim.deadline,
                }
              : {}),
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
  }

  async addSessionSegments(snapshotId: string, segmentIds: readonly string[]): Promise<void> {
    await batchWriteAll(
      this.documents,
      this.table,
      segmentIds.map((id) => ({
        PutRequest: {
          Item: { pk: snapshotKey(snapshotId).pk, sk: segmentSk(id), type: 'sessionSegment', segmentId: id },
        },
      })),
    );
  }

  async issueSessionUploads(
    snapshotId: string,
    uploads: { segmentIds: readonly string[]; manifestUploadIds: readonly string[] },
    limits: { segments: number; manifests: number },
  ): Promise<boolean> {
    const pk = snapshotKey(snapshotId).pk;
    const segments = uploads.segmentIds.length;
    const manifests = uploads.manifestUploadIds.length;
    if (segments > limits.segments || manifests > limits.manifests) return false;
    try {
      // The count first, conditionally: a crash before the items are written only over-counts.
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk, sk: SESSION_SK },
          UpdateExpression: 'SET #type = :type ADD segmentsIssued :segments, manifestsIssued :manifests',
          ConditionExpression:
            '(attribute_not_exists(segmentsIssued) OR segmentsIssued <= :maxSegments) AND (attribute_not_exists(manifestsIssued) OR manifestsIssued <= :maxManifests)',
          ExpressionAttributeNames: { '#type': 'type' },
          ExpressionAttributeValues: {
            ':type': 'uploadSession',
            ':segments': segments,
            ':manifests': manifests,
            ':maxSegments': limits.segments - segments,
            ':maxManifests': limits.manifests - manifests,
          },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
    await batchWriteAll(this.documents, this.table, [
      ...uploads.segmentIds.map((id) => ({
        PutRequest: { Item: { pk, sk: segmentSk(id), type: 'sessionSegment', segmentId: id } },
      })),
      ...uploads.manifestUploadIds.map((id) => ({
        PutRequest: {
          Item: { pk, sk: manifestUploadSk(id), type: 'sessionManifestUpload', manifestUploadId: id },
        },
      })),
    ]);
    return true;
  }

  async sessionManifestUploads(snapshotId: string): Promise<Set<string>> {
    const items = await queryAll(this.documents, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :manifest)',
      ExpressionAttributeValues: { ':pk': snapshotKey(snapshotId).pk, ':manifest': 'MANIFESTUPLOAD#' },
      ProjectionExpression: 'manifestUploadId',
      ConsistentRead: true,
    });
    return new Set(items.map((item) => String(item.manifestUploadId)));
  }

  async sessionSegments(snapshotId: string): Promise<Set<string>> {
    const items = await queryAll(this.documents, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :segment)',
      ExpressionAttributeValues: { ':pk': snapshotKey(snapshotId).pk, ':segment': 'SEGMENT#' },
      ProjectionExpression: 'segmentId',
      ConsistentRead: true,
    });
    return new Set(items.map((item) => String(item.segmentId)));
  }
}
