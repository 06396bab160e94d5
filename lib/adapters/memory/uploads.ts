import type { UploadSlots } from '../../core/tasks/uploads.ts';

/** Upload slots in memory, for unit tests: the same contract as the DynamoDB store. */
export class MemoryUploadSlots implements UploadSlots {
  readonly #slots = new Map<string, Map<string, number>>();

  async take(
    accountId: string,
    ref: string,
    limit: number,
    nowMs: number,
    untilMs: number,
  ): Promise<boolean> {
    const mine = this.#slots.get(accountId) ?? new Map<string, number>();
    for (const [r, until] of mine) if (until <= nowMs) mine.delete(r);
    if (mine.size >= limit) return false;
    mine.set(ref, untilMs);
    this.#slots.set(accountId, mine);
    return true;
  }

  async release(accountId: string, ref: string): Promise<void> {
    this.#slots.get(accountId)?.delete(ref);
  }

  async count(accountId: string, nowMs: number): Promise<number> {
    return [...(this.#slots.get(accountId)?.values() ?? [])].filter((until) => until > nowMs).length;
  }
}
