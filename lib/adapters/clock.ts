import type { Clock } from '../core/shared/clock.ts';

/** The system clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told: for tests of deadlines, leases and expiry. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}
