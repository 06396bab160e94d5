import type { RequestCounter } from '../../core/identity/request-rate.ts';

/** Request windows in memory, for unit tests: the same contract as the DynamoDB counter. */
export class MemoryRequestCounter implements RequestCounter {
  readonly #windows = new Map<string, number>();

  async take(accountId: string, windowStartMs: number, _windowMs: number, limit: number): Promise<boolean> {
    const key = `${accountId}#${windowStartMs}`;
    const count = this.#windows.get(key) ?? 0;
    if (count >= limit) return false;
    this.#windows.set(key, count + 1);
    return true;
  }

  async count(accountId: string, windowStartMs: number): Promise<number> {
    return this.#windows.get(`${accountId}#${windowStartMs}`) ?? 0;
  }
}
