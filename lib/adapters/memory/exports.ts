import {
  exportQuotaExceeded,
  inFlightExceeded,
  NO_USAGE,
  type QuotaLimits,
  type Usage,
} from '../../core/identity/accounts.ts';
import type { Page } from '../../core/shared/pagination.ts';
import type { Export, ExportRepository, ExportState } from '../../core/tasks/exports.ts';
import { orderedPage, pageOf } from './paging.ts';
import type { UsageCounters } from './snapshots.ts';

/** Export records in memory, for unit tests: the same contract as the DynamoDB repository. */
export class MemoryExportRepository implements ExportRepository {
  readonly #records = new Map<string, Export>();
  readonly #etags = new Map<string, Map<number, string>>();

  /** Pass the snapshot store's `counters`: exports count in the same stored bytes. */
  constructor(readonly counters: UsageCounters = ownCounters()) {}

  async create(
    record: Export,
    limits?: Pick<QuotaLimits, 'maxStoredBytes' | 'maxExportsInFlight'>,
  ): Promise<void> {
    if (this.#records.has(record.exportId)) throw new Error(`export ${record.exportId} exists`);
    const usage = this.counters.get(record.accountId);
    if (limits && usage.exportsInFlight >= limits.maxExportsInFlight)
      throw inFlightExceeded(
        record.region,
        'exportsInFlight',
        usage.exportsInFlight,
        limits.maxExportsInFlight,
      );
    if (limits && usage.storedBytes + record.size > limits.maxStoredBytes)
      throw exportQuotaExceeded(record.region, limits.maxStoredBytes, usage.storedBytes, record.size);
    this.counters.add(record.accountId, {
      storedBytes: record.size,
      exportBytes: record.size,
      exportsInFlight: 1,
    });
    this.#records.set(record.exportId, structuredClone(record));
  }

  async get(exportId: string): Promise<Export | undefined> {
    return structuredClone(this.#records.get(exportId));
  }

  async list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Export>> {
    const mine = [...this.#records.values()]
      .filter((r) => r.accountId === accountId)
      .sort((a, b) => `${b.createdAt}#${b.exportId}`.localeCompare(`${a.createdAt}#${a.exportId}`));
    return pageOf(mine, page);
  }

  async listAll(page: { limit: number; nextToken?: string }): Promise<Page<Export>> {
    return pageOf(
      [...this.#records.values()].map((r) => structuredClone(r)),
      page,
    );
  }

  async listExpired(before: string, page: { limit: number; nextToken?: string }): Promise<Page<Export>> {
    return orderedPage(
      [...this.#records.values()]
        .filter((item) => item.expiresAt && item.expiresAt < before)
        .map((item) => ({ item, order: `${item.expiresAt}#${item.exportId}` })),
      page,
    );
  }

  async completePart(exportId: string, part: number, etag: string): Promise<Map<number, string> | undefined> {
    const record = this.#records.get(exportId);
    if (record?.state !== 'pending') return undefined;
    const etags = this.#etags.get(exportId) ?? new Map<number, string>();
    etags.set(part, etag);
    this.#etags.set(exportId, etags);
    record.partsDone = [...etags.keys()].sort((a, b) => a - b);
    return new Map(etags);
  }

  async partETags(exportId: string): Promise<Map<number, string> | undefined> {
    if (this.#records.get(exportId)?.state !== 'pending') return undefined;
    return new Map(this.#etags.get(exportId) ?? []);
  }

  async renewLease(
    exportId: string,
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
  ): Promise<boolean> {
    const record = this.#records.get(exportId);
    if (record?.state !== 'pending' || record.leaseUntil !== expected) return false;
    Object.assign(record, lease);
    return true;
  }

  async extendLease(exportId: string, leaseUntil: string): Promise<void> {
    const record = this.#records.get(exportId);
    if (record?.state === 'pending') record.leaseUntil = leaseUntil;
  }

  async transition(
    exportId: string,
    from: readonly ExportState[],
    to: ExportState,
    changes: Partial<Export> = {},
  ) {
    const record = this.#records.get(exportId);
    if (!record || !from.includes(record.state)) return undefined;
    if (record.state === 'pending' && to !== 'pending') this.#release(record, to === 'error');
    const next = { ...record, ...structuredClone(changes), state: to };
    this.#records.set(exportId, next);
    return structuredClone(next);
  }

  async remove(exportId: string): Promise<void> {
    const record = this.#records.get(exportId);
    if (record) this.#release(record, record.state !== 'error');
    this.#records.delete(exportId);
    this.#etags.delete(exportId);
  }

  #release(record: Export, bytes: boolean): void {
    this.counters.add(record.accountId, {
      exportsInFlight: record.state === 'pending' ? -1 : 0,
      storedBytes: bytes ? -record.size : 0,
      exportBytes: bytes ? -record.size : 0,
    });
  }
}

/** Counters of the export store's own, when no snapshot store shares its counters. */
function ownCounters(): UsageCounters {
  const usage = new Map<string, Usage>();
  return {
    get: (accountId) => ({ ...(usage.get(accountId) ?? NO_USAGE) }),
    add: (accountId, changes) => {
      const next = { ...(usage.get(accountId) ?? NO_USAGE) };
      for (const [counter, delta] of Object.entries(changes)) next[counter as keyof Usage] += delta;
      usage.set(accountId, next);
    },
  };
}
