import { type DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { exportQuotaExceeded, inFlightExceeded, type QuotaLimits } from '../../core/identity/accounts.ts';
import { VolsnapError } from '../../core/shared/errors.ts';
import type { Page } from '../../core/shared/pagination.ts';
import type { Export, ExportRepository, ExportState } from '../../core/tasks/exports.ts';
import { cancellationCodes, isRefused } from './errors.ts';
import {
  absentOrAtMost,
  absentOrBelow,
  all,
  deleteItem,
  equals,
  exists,
  extendLeaseUpdate,
  notExists,
  oneOf,
  putItem,
  renewLeaseUpdate,
  updateItem,
} from './expressions.ts';
import { createdOrder, pickFields, usageKey } from './keys.ts';
import {
  EXPORTS_TO_MAINTAIN,
  ensureMaintenanceIndexed,
  exportIndex,
  indexPage,
} from './maintenance-index.ts';
import { getItem, gsi1Page } from './query.ts';
import { readUsage } from './usage.ts';
import { applyUpdate, transact, updateReturning } from './writes.ts';

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
  'leaseUntil',
  'leaseParts',
  'dispatches',
  'deletedAt',
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

  async create(
    record: Export,
    limits?: Pick<QuotaLimits, 'maxStoredBytes' | 'maxExportsInFlight'>,
  ): Promise<void> {
    // `expiresAt` is the table's TTL attribute (epoch seconds): the record's expiry is kept apart, so
    // DynamoDB never drops a record whose object the expiry schedule has not deleted yet.
    const { expiresAt, ...fields } = record;
    const room = limits ? limits.maxStoredBytes - record.size : undefined;
    if (limits && room !== undefined && room < 0) {
      const { storedBytes } = await this.#usage(record.accountId);
      throw exportQuotaExceeded(record.region, limits.maxStoredBytes, storedBytes, record.size);
    }
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: putItem(
                this.table,
                {
                  ...exportKey(record.exportId),
                  type: 'export',
                  ...fields,
                  expiresOn: expiresAt,
                  etags: {},
                  // What it counts in the usage item (exports stored before counting began count nothing).
                  countedInUsage: true,
                  gsi1pk: `ACCOUNT#${record.accountId}#EXPORTS`,
                  gsi1sk: createdOrder(record.createdAt, record.exportId),
                  ...exportIndex(record.exportId, expiresAt),
                },
                notExists('pk'),
              ),
            },
            {
              // Reserved before the object is written: checked and counted in one write.
              Update: updateItem(
                this.table,
                usageKey(record.accountId),
                { add: { storedBytes: record.size, exportBytes: record.size, exportsInFlight: 1 } },
                limits && room !== undefined
                  ? all(
                      absentOrAtMost('storedBytes', room),
                      absentOrBelow('exportsInFlight', limits.maxExportsInFlight),
                    )
                  : undefined,
              ),
            },
          ],
        }),
      );
    } catch (error) {
      const reasons = cancellationCodes(error);
      if (!limits || reasons[1] !== 'ConditionalCheckFailed') throw error;
      const usage = await this.#usage(record.accountId);
      if (usage.exportsInFlight >= limits.maxExportsInFlight) {
        throw inFlightExceeded(
          record.region,
          'exportsInFlight',
          usage.exportsInFlight,
          limits.maxExportsInFlight,
        );
      }
      throw exportQuotaExceeded(record.region, limits.maxStoredBytes, usage.storedBytes, record.size);
    }
  }

  async listAll(page: { limit: number; nextToken?: string }): Promise<Page<Export>> {
    await ensureMaintenanceIndexed(this.documents, this.table);
    return indexPage(
      this.documents,
      { table: this.table, index: 'gsi4', partition: EXPORTS_TO_MAINTAIN },
      page,
      toExport,
    );
  }

  async listExpired(before: string, page: { limit: number; nextToken?: string }): Promise<Page<Export>> {
    await ensureMaintenanceIndexed(this.documents, this.table);
    return indexPage(
      this.documents,
      { table: this.table, index: 'gsi4', partition: EXPORTS_TO_MAINTAIN, before },
      page,
      (item) => {
        const record = toExport(item);
        return record.expiresAt && record.expiresAt < before ? record : undefined;
      },
    );
  }

  async get(exportId: string): Promise<Export | undefined> {
    const item = await this.#item(exportId);
    return item ? toExport(item) : undefined;
  }

  async #item(exportId: string): Promise<Record<string, unknown> | undefined> {
    return getItem(this.documents, this.table, exportKey(exportId));
  }

  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Export>> {
    return gsi1Page(this.documents, this.table, `ACCOUNT#${accountId}#EXPORTS`, page, toExport);
  }

  async completePart(exportId: string, part: number, etag: string): Promise<Map<number, string> | undefined> {
    const updated = await updateReturning(
      this.documents,
      updateItem(
        this.table,
        exportKey(exportId),
        { setEntries: { etags: { [String(part)]: etag } } },
        equals('state', 'pending'),
      ),
    );
    if (!updated) return undefined;
    const etags = (updated.etags ?? {}) as Record<string, string>;
    return new Map(Object.entries(etags).map(([p, e]) => [Number(p), e]));
  }

  async partETags(exportId: string): Promise<Map<number, string> | undefined> {
    const item = await this.#item(exportId);
    if (item?.state !== 'pending') return undefined;
    return new Map(
      Object.entries((item.etags ?? {}) as Record<string, string>).map(([p, e]) => [Number(p), e]),
    );
  }

  renewLease(
    exportId: string,
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
  ): Promise<boolean> {
    return applyUpdate(this.documents, renewLeaseUpdate(this.table, exportKey(exportId), expected, lease));
  }

  async extendLease(exportId: string, leaseUntil: string): Promise<void> {
    await applyUpdate(this.documents, extendLeaseUpdate(this.table, exportKey(exportId), leaseUntil));
  }

  async transition(
    exportId: string,
    from: readonly ExportState[],
    to: ExportState,
    changes: Partial<Export> = {},
  ): Promise<Export | undefined> {
    // Out of `pending`, the counts change with the state: the state it leaves is read first and the
    // write made conditional on it.
    const item = to !== 'pending' && from.includes('pending') ? await this.#item(exportId) : undefined;
    const current = item ? toExport(item) : undefined;
    if (item && current && !from.includes(current.state)) return undefined;
    const update = updateItem(
      this.table,
      exportKey(exportId),
      { set: { ...changes, state: to } },
      all(exists('pk'), oneOf('state', current ? [current.state] : from)),
    );
    if (current?.state === 'pending' && item?.countedInUsage === true) {
      const moved = await transact(this.documents, [
        { Update: update },
        this.#release(current, to === 'error'),
      ]);
      return moved ? this.get(exportId) : undefined;
    }
    const moved = await updateReturning(this.documents, update);
    return moved ? toExport(moved) : undefined;
  }

  async remove(exportId: string): Promise<void> {
    // Conditional on the state read, so a concurrent move out of `pending` is counted once: retried.
    for (let attempt = 0; attempt < 5; attempt++) {
      const item = await this.#item(exportId);
      if (!item) return;
      const current = toExport(item);
      try {
        await this.documents.send(
          new TransactWriteCommand({
            TransactItems: [
              { Delete: deleteItem(this.table, exportKey(exportId), equals('state', current.state)) },
              ...(item.countedInUsage === true ? [this.#release(current, current.state !== 'error')] : []),
            ],
          }),
        );
        return;
      } catch (error) {
        // Its state moved meanwhile (a condition), or another transaction touched the account's
        // usage item at the same moment (a conflict, translated to storage.unavailable): read again.
        const conflict =
          error instanceof VolsnapError &&
          error.code === 'storage.unavailable' &&
          cancellationCodes(error.cause).includes('TransactionConflict');
        if (!isRefused(error) && !conflict) throw error;
      }
    }
    throw new Error(`export ${exportId} kept changing while it was removed`);
  }

  /** The usage update that gives back an export's place in flight (if pending) and its bytes (if asked). */
  #release(record: Export, bytes: boolean) {
    const pending = record.state === 'pending';
    return {
      Update: updateItem(this.table, usageKey(record.accountId), {
        add: {
          // An ADD of nothing is not an expression: an error export being removed adds 0.
          exportsInFlight: pending ? -1 : bytes ? undefined : 0,
          storedBytes: bytes ? -record.size : undefined,
          exportBytes: bytes ? -record.size : undefined,
        },
      }),
    };
  }

  #usage(accountId: string) {
    return readUsage(this.documents, this.table, accountId);
  }
}
