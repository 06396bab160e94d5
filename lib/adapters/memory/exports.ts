import type { Export, ExportRepository, ExportState } from '../../core/exports.ts';
import type { Page } from '../../core/pagination.ts';
import { pageOf } from './paging.ts';

/** Export records in memory, for unit tests. */
export class MemoryExportRepository implements ExportRepository {
  readonly #records = new Map<string, Export>();
  readonly #etags = new Map<string, Map<number, string>>();

  async create(record: Export): Promise<void> {
    if (this.#records.has(record.exportId)) throw new Error(`export ${record.exportId} exists`);
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

  async completePart(exportId: string, part: number, etag: string): Promise<Map<number, string> | undefined> {
    const record = this.#records.get(exportId);
    if (record?.state !== 'pending') return undefined;
    const etags = this.#etags.get(exportId) ?? new Map<number, string>();
    etags.set(part, etag);
    this.#etags.set(exportId, etags);
    record.partsDone = [...etags.keys()].sort((a, b) => a - b);
    return new Map(etags);
  }

  async transition(
    exportId: string,
    from: readonly ExportState[],
    to: ExportState,
    changes: Partial<Export> = {},
  ) {
    const record = this.#records.get(exportId);
    if (!record || !from.includes(record.state)) return undefined;
    const next = { ...record, ...structuredClone(changes), state: to };
    this.#records.set(exportId, next);
    return structuredClone(next);
  }

  async remove(exportId: string): Promise<void> {
    this.#records.delete(exportId);
    this.#etags.delete(exportId);
  }
}
