import { VolsnapError } from '../shared/errors.ts';

/** What one delivery of a part's message did: the same answer for every kind of work. */
export type PartOutcome =
  /** The part is checkpointed; other parts remain. */
  | 'part'
  /** It was the last part: the work is finished (a snapshot completed, an export joined). */
  | 'completed'
  /** The work failed for good: it is in `error` with the reason, and what it wrote is removed. */
  | 'error'
  /**
   * Nothing was done: the work is gone or no longer pending, the part is out of range (a stray
   * message), or a redelivered part's checkpoint was found and the kind has nothing to count again.
   */
  | 'skipped';

/** The parts checkpointed so far, as the kind's store counted them, and what finishing needs of them. */
export interface PartTally {
  done: number;
}

/**
 * The steps of one kind of server-side work written in parts (a copy, an import, an image snapshot,
 * an export): each part is one queue message, one worker, one checkpoint. {@link PartRunner} calls
 * them in this order for a delivery: `load`, `parts` (an out-of-range part stops here), `renew`, `check`,
 * then `work` (or `recount` for a part already checkpointed), then `renew` and `progress` or, for the last
 * part, `finish`. A permanent failure (an exposed {@link VolsnapError}) in any step after `load`
 * calls `fail`; any other error is thrown, and the redelivered message runs the part again.
 *
 * Every step may run more than once for the same part (messages are delivered at least once, and
 * workers die): each must be idempotent, and none may assume it runs alone.
 */
export interface PartKind<R, T extends PartTally = PartTally> {
  /** The work's record if it is still to be done (pending, and of this kind), else undefined. */
  load(id: string): Promise<R | undefined>;
  /** How many parts the work has (at least 1). */
  parts(record: R): number;
  /** Whether the part's checkpoint is stored already (a redelivery): its work is not done again. */
  isCheckpointed(record: R, part: number): boolean;
  /**
   * Extends the work's lease: a worker is on it. Called when a part starts and when it is
   * checkpointed, so a lease lapses only when no worker has touched the work for its length (the
   * reaper then sends the unfinished parts again). Idempotent, and a no-op for work that ended.
   */
  renew(record: R): Promise<void>;
  /** Checks, at every delivery, that the work can still go on; throws a permanent error if not. */
  check?(record: R): Promise<void>;
  /**
   * Does the part's work and stores its checkpoint; returns the tally after counting it, or
   * undefined if the work left pending meanwhile (nothing more is done).
   */
  work(record: R, part: number): Promise<T | undefined>;
  /**
   * Counts a checkpointed part again, for a worker that died between its checkpoint and finishing
   * the work; undefined when there is nothing to count (the delivery is `skipped`). Without it a
   * redelivered checkpointed part is `skipped`.
   */
  recount?(record: R, part: number): Promise<T | undefined>;
  /** Records progress (0–95: the rest is finishing) after a part that was not the last. */
  progress(record: R, percent: number): Promise<void>;
  /** Every part is checkpointed: joins them and ends the work as done. Idempotent. */
  finish(record: R, tally: T): Promise<void>;
  /**
   * Fails the work for good: `error` with the reason, and everything it wrote (data, checkpoints,
   * staged objects) removed, unless the work reached another end meanwhile. Idempotent.
   */
  fail(record: R, reason: string): Promise<void>;
}

/**
 * Runs the parts of one kind of server-side work (see {@link PartKind} for the steps and their order).
 * A redelivered or stray message never poisons the queue: work that is gone, done or failed, and a
 * part out of range, are `skipped` without a side effect.
 */
export class PartRunner<R, T extends PartTally = PartTally> {
  readonly #kind: PartKind<R, T>;

  constructor(kind: PartKind<R, T>) {
    this.#kind = kind;
  }

  /** Runs part `part` of the work `id`; the delivery that checkpoints the last part finishes it. */
  runPart(id: string, part: number): Promise<PartOutcome> {
    return this.attempt(id, async (record) => {
      const kind = this.#kind;
      const parts = kind.parts(record);
      if (!Number.isInteger(part) || part < 0 || part >= parts) return 'skipped';
      await kind.renew(record);
      await kind.check?.(record);
      const tally = kind.isCheckpointed(record, part)
        ? await kind.recount?.(record, part)
        : await kind.work(record, part);
      if (tally === undefined) return 'skipped';
      if (tally.done < parts) {
        await kind.renew(record);
        await kind.progress(record, Math.floor((95 * tally.done) / parts));
        return 'part';
      }
      await kind.finish(record, tally);
      return 'completed';
    });
  }

  /**
   * Loads the work `id` and runs `work` on it: `skipped` if it is no longer to be done; a permanent
   * failure fails it for good (`error`); a transient one is thrown, for the message to come again.
   * For steps of a kind that are not a part (an image snapshot deciding whether to split).
   */
  async attempt<O extends string>(
    id: string,
    work: (record: R) => Promise<O>,
  ): Promise<O | 'error' | 'skipped'> {
    const record = await this.#kind.load(id);
    if (record === undefined) return 'skipped';
    try {
      return await work(record);
    } catch (error) {
      if (!isPermanent(error)) throw error;
      await this.#kind.fail(record, error.message);
      return 'error';
    }
  }
}

/** A failure that doing the part again cannot mend (bad data, a source gone): the work fails for good. */
export function isPermanent(error: unknown): error is VolsnapError {
  return error instanceof VolsnapError && error.exposed;
}
