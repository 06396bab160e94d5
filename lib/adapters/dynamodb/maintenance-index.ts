import { type DynamoDBDocumentClient, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { decodeListingPosition, encodePageToken, type Page } from '../../core/shared/pagination.ts';
import {
  dueTimeOf,
  MAINTAINED_STATES,
  type MaintainedState,
  type Snapshot,
  type SnapshotState,
} from '../../core/snapshots/snapshots.ts';
import { all, equals, exists, notExists, updateItem } from './expressions.ts';
import { batchGetConsistent, getItem } from './query.ts';
import { applyUpdate } from './writes.ts';

/**
 * The sparse indexes maintenance reads, so the reaper, expiry and GC read the work there is, not
 * the table (infra/table.yml):
 * - gsi4 (keys only): a snapshot in a maintained state (every state but `error`) under
 *   `MAINTAIN#SNAPSHOT#state`, sorted by when it is due (`dueTimeOf`, then its id); every export
 *   under `MAINTAIN#EXPORT`, sorted by its expiry. Written with the state, in the same write.
 * - gsi3 (keys only, shared with the index of completed snapshots: a snapshot is never leased and
 *   completed at once): a pending snapshot with a lease under `LEASE#SNAPSHOT`, sorted by the lease.
 * Items stored before these existed are put in once by {@link ensureMaintenanceIndexed}.
 */

const SNAPSHOT_PREFIX = 'SNAPSHOT#';
const EXPORT_PREFIX = 'EXPORT#';
export const EXPORTS_TO_MAINTAIN = 'MAINTAIN#EXPORT';
export const LEASED_SNAPSHOTS = 'LEASE#SNAPSHOT';
export const snapshotsInState = (state: MaintainedState) => `MAINTAIN#SNAPSHOT#${state}`;

/** The gsi4 entry of a snapshot in `state` with these fields, or its removal (not maintained, or due time unknown). */
export function stateIndex(
  snapshotId: string,
  state: SnapshotState,
  fields: Parameters<typeof dueTimeOf>[1],
): { gsi4pk: string | null; gsi4sk: string | null } {
  const due = (MAINTAINED_STATES as readonly string[]).includes(state) ? dueTimeOf(state, fields) : undefined;
  return due === undefined
    ? { gsi4pk: null, gsi4sk: null }
    : { gsi4pk: snapshotsInState(state as MaintainedState), gsi4sk: `${due}#${snapshotId}` };
}

/** The gsi3 entry of a pending snapshot's lease. */
export const leaseIndex = (snapshotId: string, leaseUntil: string) => ({
  gsi3pk: LEASED_SNAPSHOTS,
  gsi3sk: `${leaseUntil}#${snapshotId}`,
});

/** The gsi4 entry of an export (by its expiry; one without expiry first, and never expired). */
export const exportIndex = (exportId: string, expiresAt: string | undefined) => ({
  gsi4pk: EXPORTS_TO_MAINTAIN,
  gsi4sk: `${expiresAt ?? ''}#${exportId}`,
});

type Position = Record<string, string>;

/**
 * One page of a sparse index's partition, oldest first, optionally only sort keys before `before`,
 * each item then read again consistently (the index lags and holds keys only) and kept if `keep`
 * says it still belongs: the page's cost follows the partition, never the table.
 */
export async function indexPage<T>(
  documents: DynamoDBDocumentClient,
  query: { table: string; index: 'gsi3' | 'gsi4'; partition: string; before?: string },
  page: { limit: number; nextToken?: string },
  keep: (item: Record<string, unknown>) => T | undefined,
): Promise<Page<T>> {
  const pk = `${query.index}pk`;
  const sk = `${query.index}sk`;
  const start: Position | undefined = decodeListingPosition(page.nextToken, {
    attributes: ['pk', 'sk', pk, sk],
    fixed: { [pk]: query.partition },
  });
  const result = await documents.send(
    new QueryCommand({
      TableName: query.table,
      IndexName: query.index,
      KeyConditionExpression: query.before === undefined ? '#pk = :pk' : '#pk = :pk AND #sk < :before',
      ExpressionAttributeNames: { '#pk': pk, ...(query.before === undefined ? {} : { '#sk': sk }) },
      ExpressionAttributeValues: {
        ':pk': query.partition,
        ...(query.before === undefined ? {} : { ':before': query.before }),
      },
      Limit: page.limit,
      ExclusiveStartKey: start,
    }),
  );
  const keys = (result.Items ?? []).map((item) => ({ pk: String(item.pk), sk: String(item.sk) }));
  const items: T[] = [];
  for (const item of await batchGetConsistent(documents, query.table, keys)) {
    const kept = keep(item);
    if (kept !== undefined) items.push(kept);
  }
  const next = result.LastEvaluatedKey;
  return next ? { items, nextToken: encodePageToken(next) } : { items };
}

/** The item that records that every item stored before the maintenance indexes was put in them. */
const MARKER_KEY = { pk: 'MIGRATION#maintenance-index', sk: 'MIGRATION' };

/** Per table, once per process: the marker read (and, without it, the backfill run) once. */
const indexed = new Map<string, Promise<void>>();

/**
 * Makes sure items stored before the maintenance indexes are in them (the fallback for a deployment
 * upgraded without `npm run index-completed`): without the marker item, one pass over the table
 * puts them in and then writes the marker. Read once per process; a failed pass is retried on the
 * next call. Idempotent and safe beside live traffic (see {@link backfillMaintenanceIndex}).
 */
export function ensureMaintenanceIndexed(documents: DynamoDBDocumentClient, table: string): Promise<void> {
  let done = indexed.get(table);
  if (!done) {
    done = (async () => {
      if (!(await getItem(documents, table, MARKER_KEY))) await indexForMaintenance(documents, table);
    })();
    done.catch(() => indexed.delete(table));
    indexed.set(table, done);
  }
  return done;
}

/**
 * The whole backfill (`npm run index-completed` runs it on upgrade): every page of the table, then
 * the marker, so no function scans the table for it again. Returns how many entries it wrote.
 */
export async function indexForMaintenance(documents: DynamoDBDocumentClient, table: string): Promise<number> {
  let total = 0;
  let nextToken: string | undefined;
  do {
    const page = await backfillMaintenanceIndex(documents, table, { limit: 500, nextToken });
    total += page.indexed;
    nextToken = page.nextToken;
  } while (nextToken);
  await documents.send(new PutCommand({ TableName: table, Item: { ...MARKER_KEY, type: 'migration' } }));
  return total;
}

/**
 * One page of the table: puts each snapshot and export stored before the maintenance indexes into
 * them. Each write is conditional on the item being as read (its state, its lease) and not indexed
 * yet, so a concurrent change wins and a second run writes nothing. Returns how many it indexed.
 */
export async function backfillMaintenanceIndex(
  documents: DynamoDBDocumentClient,
  table: string,
  page: { limit: number; nextToken?: string },
): Promise<{ indexed: number; nextToken?: string }> {
  const { Items = [], LastEvaluatedKey } = await documents.send(
    new ScanCommand({
      TableName: table,
      ConsistentRead: true,
      Limit: page.limit,
      ExclusiveStartKey: decodeListingPosition(page.nextToken, { attributes: ['pk', 'sk'], fixed: {} }),
    }),
  );
  let count = 0;
  for (const item of Items) {
    for (const write of backfillWrites(table, item)) if (await applyUpdate(documents, write)) count++;
  }
  return { indexed: count, ...(LastEvaluatedKey ? { nextToken: encodePageToken(LastEvaluatedKey) } : {}) };
}

function backfillWrites(table: string, item: Record<string, unknown>) {
  const key = { pk: item.pk, sk: item.sk };
  if (item.type === 'export' && String(item.pk).startsWith(EXPORT_PREFIX) && item.gsi4pk === undefined) {
    const expiresOn = typeof item.expiresOn === 'string' ? item.expiresOn : undefined;
    return [
      updateItem(
        table,
        key,
        { set: exportIndex(String(item.exportId), expiresOn) },
        all(exists('pk'), notExists('gsi4pk')),
      ),
    ];
  }
  if (item.type !== 'snapshot' || !String(item.pk).startsWith(SNAPSHOT_PREFIX)) return [];
  const snapshot = item as unknown as Snapshot;
  const writes = [];
  const index = stateIndex(snapshot.snapshotId, snapshot.state, snapshot);
  if (item.gsi4pk === undefined && index.gsi4pk !== null) {
    writes.push(
      updateItem(table, key, { set: index }, all(equals('state', snapshot.state), notExists('gsi4pk'))),
    );
  }
  if (snapshot.state === 'pending' && snapshot.leaseUntil && item.gsi3pk === undefined) {
    writes.push(
      updateItem(
        table,
        key,
        { set: leaseIndex(snapshot.snapshotId, snapshot.leaseUntil) },
        all(equals('state', 'pending'), equals('leaseUntil', snapshot.leaseUntil), notExists('gsi3pk')),
      ),
    );
  }
  return writes;
}
