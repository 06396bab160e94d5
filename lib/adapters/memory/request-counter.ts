import type { RequestCounter } from '../../core/identity/request-rate.ts';

/** Request windows in memory, for unit tests: the same contract as the DynamoDB counter. */
export class MemoryRequestCounter implements RequestCounter {
  readonly #windows = new Map<string, number>();

  async take(
    counterId: string,
    windowStartMs: number,
    _windowMs: number,
    limit: number,
    count = 1,
  ): Promise<boolean> {
    const key = `${counterId}@${windowStartMs}`;
    const taken = this.#windows.get(key) ?? 0;
    if (taken + count > limit) return false;
    this.#windows.set(key, taken + count);
    return true;
  }

  async count(counterId: string, windowStartMs: number): Promise<number> {
    return this.#windows.get(`${counterId}@${windowStartMs}`) ?? 0;
  }
}
