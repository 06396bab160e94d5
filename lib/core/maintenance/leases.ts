import type { WorkMessage, WorkQueue } from '../ports/queue.ts';
import { isoTime } from '../shared/clock.ts';

/** Work under a workers' lease (a server-side snapshot, an export, a verification), for the reaper. */
export interface LeasedWork {
  leaseUntil?: string;
  leaseParts?: number;
  dispatches?: number;
  partsDone?: number[];
  renew(
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
  ): Promise<boolean>;
  messages(): WorkMessage[];
  /** Fails the work for good; whether it is in `error` now (false: it ended otherwise meanwhile). */
  fail(reason: string): Promise<boolean>;
}

/**
 * A lapsed lease: no worker started or finished a part for a lease's length, so whatever is
 * unfinished has no live worker. The unfinished parts are sent again (all checkpointed: the last
 * one, whose redelivery finishes the work), at most `maxDispatches` times in a row without a part
 * finished in between; then the work fails for good through its kind's fail.
 */
export async function redispatchLapsed(
  work: LeasedWork,
  nowMs: number,
  o: { maxDispatches: number; leaseMs: number; queue: WorkQueue },
): Promise<'redispatched' | 'failed' | 'lost'> {
  const done = work.partsDone?.length ?? 0;
  const progressed = done > (work.leaseParts ?? 0);
  const dispatches = progressed ? 0 : (work.dispatches ?? 0) + 1;
  if (dispatches > o.maxDispatches) {
    const failed = await work.fail(
      `Workers made no progress after it was dispatched ${o.maxDispatches} more times; the last attempts failed or timed out.`,
    );
    return failed ? 'failed' : 'lost';
  }
  const won = await work.renew(work.leaseUntil, {
    leaseUntil: isoTime(nowMs + o.leaseMs),
    leaseParts: done,
    dispatches,
  });
  if (!won) return 'lost';
  for (const message of work.messages()) await o.queue.send(message);
  return 'redispatched';
}
