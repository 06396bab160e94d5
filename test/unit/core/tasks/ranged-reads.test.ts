import { describe, expect, it } from 'vitest';
import { pipelinedStore } from '../../../../lib/core/tasks/parts.ts';
import { coalesceRanges, RunBuffers, readRunsInOrder } from '../../../../lib/core/tasks/ranged-reads.ts';

const piece = (object: string, start: number, end: number) => ({
  object,
  start,
  end,
  item: `${object}@${start}`,
});

describe('coalesced ranged reads', () => {
  it('join pieces of one object that lie end to end, up to the longest GET, keeping their order', () => {
    const runs = coalesceRanges(
      [piece('a', 0, 10), piece('a', 10, 25), piece('a', 25, 30), piece('a', 40, 50), piece('b', 50, 60)],
      25,
    );
    expect(runs.map((r) => [r.object, r.start, r.end, r.pieces.length])).toEqual([
      ['a', 0, 25, 2],
      ['a', 25, 30, 1],
      ['a', 40, 50, 1],
      ['b', 50, 60, 1],
    ]);
  });

  it('hand each piece its own bytes in order, with at most `concurrency` reads ahead', async () => {
    const object = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    const runs = coalesceRanges(
      Array.from({ length: 16 }, (_, i) => piece('o', i * 4, i * 4 + 4)),
      8,
    );
    let inFlight = 0;
    let most = 0;
    const seen: number[] = [];
    await readRunsInOrder(
      runs,
      2,
      async (run) => {
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 1));
        inFlight--;
        return object.subarray(run.start, run.end);
      },
      (p, bytes) => {
        expect([...bytes]).toEqual([...object.subarray(p.start, p.end)]);
        seen.push(p.start);
      },
    );
    expect(seen).toEqual(Array.from({ length: 16 }, (_, i) => i * 4));
    expect(most).toBeLessThanOrEqual(2);
  });

  it('read each run into a buffer taken from `buffers` and given back once its pieces are used: no more buffers than reads at once', async () => {
    const object = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    const runs = coalesceRanges(
      [...Array.from({ length: 15 }, (_, i) => piece('o', i * 4, i * 4 + 4)), piece('o', 60, 64)],
      8,
    );
    const made: Uint8Array[] = [];
    const buffers = new (class extends RunBuffers {
      override take(bytes: number) {
        const buffer = super.take(bytes);
        if (buffer && !made.includes(buffer)) made.push(buffer);
        return buffer;
      }
    })(8, 8);
    const inUse = new Set<Uint8Array>();
    const seen: number[] = [];
    for (let round = 0; round < 2; round++) {
      await readRunsInOrder(
        runs,
        2,
        async (run, into) => {
          if (!into) throw new Error('no buffer for a run that fits one');
          expect(inUse.has(into)).toBe(false); // never one still read by another run
          inUse.add(into);
          await new Promise((resolve) => setTimeout(resolve, 1));
          into.set(object.subarray(run.start, run.end));
          return into.subarray(0, run.end - run.start);
        },
        (p, bytes) => {
          expect([...bytes]).toEqual([...object.subarray(p.start, p.end)]);
          seen.push(p.start);
          if (p.end % 8 === 0) for (const b of inUse) if (bytes.buffer === b.buffer) inUse.delete(b);
        },
        buffers,
      );
    }
    expect(seen).toEqual([
      ...Array.from({ length: 16 }, (_, i) => i * 4),
      ...Array.from({ length: 16 }, (_, i) => i * 4),
    ]);
    // 2 ahead and the one in use; the second round reuses the first round's.
    expect(made.length).toBeLessThanOrEqual(3);
    // A run longer than the buffers gets none: bytes of its own.
    await readRunsInOrder(
      coalesceRanges([piece('o', 0, 16)], 16),
      2,
      async (run, into) => {
        expect(into).toBeUndefined();
        return object.subarray(run.start, run.end);
      },
      () => {},
      buffers,
    );
  });

  it('fail when a read fails, or comes back short', async () => {
    const runs = coalesceRanges([piece('o', 0, 4), piece('o', 8, 12)]);
    await expect(
      readRunsInOrder(
        runs,
        4,
        async (run) => (run.start === 8 ? Promise.reject(new Error('gone')) : Buffer.alloc(4)),
        () => {},
      ),
    ).rejects.toThrow('gone');
    await expect(
      readRunsInOrder(
        runs,
        4,
        async () => Buffer.alloc(3),
        () => {},
      ),
    ).rejects.toThrow(/asked for 4 bytes/);
  });
});

describe("a worker's segment stores", () => {
  it('overlap with filling the next segment, at most `inFlight` at once, and flush waits for them', async () => {
    const release: (() => void)[] = [];
    const stored: string[] = [];
    let inFlight = 0;
    let most = 0;
    const sink = pipelinedStore(async (id) => {
      most = Math.max(most, ++inFlight);
      await new Promise<void>((resolve) => release.push(resolve));
      inFlight--;
      stored.push(id);
    }, 2);
    const segment = () => sink.segmentBuffer?.() ?? Buffer.alloc(0);
    await sink.store('s1', segment());
    await sink.store('s2', segment());
    // A third waits for a slot.
    let thirdStarted = false;
    const third = sink.store('s3', segment()).then(() => (thirdStarted = true));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(thirdStarted).toBe(false);
    release.shift()?.();
    await third;
    let flushed = false;
    const flush = sink.flush?.().then(() => (flushed = true));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(flushed).toBe(false);
    while (release.length > 0 || !flushed) {
      release.shift()?.();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await flush;
    expect(stored.sort()).toEqual(['s1', 's2', 's3']);
    expect(most).toBe(2);
  });

  it('fail the next store or the flush when a store failed', async () => {
    const sink = pipelinedStore(async (id) => {
      if (id === 'bad') throw new Error('store refused');
    }, 2);
    await sink.store('bad', Buffer.alloc(16));
    await expect(sink.flush?.()).rejects.toThrow('store refused');
    await expect(sink.store('next', Buffer.alloc(16))).rejects.toThrow('store refused');
  });
});
