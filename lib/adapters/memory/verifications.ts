import type { Page } from '../../core/shared/pagination.ts';
import type {
  Verification,
  VerificationRepository,
  VerificationState,
} from '../../core/tasks/verification-records.ts';
import { pageOf } from './paging.ts';

/** Verification records in memory, for unit tests: the same contract as the DynamoDB repository. */
export class MemoryVerificationRepository implements VerificationRepository {
  readonly #records = new Map<string, Verification>();

  async create(record: Verification): Promise<void> {
    if (this.#records.has(record.verificationId))
      throw new Error(`verification ${record.verificationId} exists`);
    this.#records.set(record.verificationId, structuredClone(record));
  }

  async get(verificationId: string): Promise<Verification | undefined> {
    return structuredClone(this.#records.get(verificationId));
  }

  async completePart(verificationId: string, part: number): Promise<number | undefined> {
    const record = this.#records.get(verificationId);
    if (record?.state !== 'pending') return undefined;
    record.partsDone = [...new Set([...(record.partsDone ?? []), part])].sort((a, b) => a - b);
    return record.partsDone.length;
  }

  async renewLease(
    verificationId: string,
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
  ): Promise<boolean> {
    const record = this.#records.get(verificationId);
    if (record?.state !== 'pending' || record.leaseUntil !== expected) return false;
    Object.assign(record, lease);
    return true;
  }

  async extendLease(verificationId: string, leaseUntil: string): Promise<void> {
    const record = this.#records.get(verificationId);
    if (record?.state === 'pending') record.leaseUntil = leaseUntil;
  }

  async transition(
    verificationId: string,
    from: readonly VerificationState[],
    to: VerificationState,
    changes: Partial<Verification> = {},
  ): Promise<Verification | undefined> {
    const record = this.#records.get(verificationId);
    if (!record || !from.includes(record.state)) return undefined;
    const next: Verification = { ...record, ...structuredClone(changes), state: to };
    for (const [key, value] of Object.entries(changes))
      if (value === undefined) delete next[key as keyof Verification];
    this.#records.set(verificationId, next);
    return structuredClone(next);
  }

  async listAll(page: { limit: number; nextToken?: string }): Promise<Page<Verification>> {
    return pageOf(
      [...this.#records.values()].map((r) => structuredClone(r)),
      page,
    );
  }
}
