/** A piece of an object a worker wants: bytes [start, end) of `object`, and what it is for. */
export interface WantedRange<T> {
  object: string;
  start: number;
  end: number;
  item: T;
}

/** Neighbouring pieces of one object, read with one ranged GET of [start, end). */
export interface RangeRun<T> {
  object: string;
  start: number;
  end: number;
  pieces: WantedRange<T>[];
}

/** The longest ranged GET workers make by default (a run of neighbouring blocks): 8 MiB. */
export const RUN_BYTES = 8 * 1024 * 1024;

/**
 * Coalesces pieces, in the order given, into runs: a piece joins the run before it when it is of the
 * same object, starts where that run ends, and the run stays within `maxBytes` (a piece longer than
 * that is a run of its own). One GET per run instead of one per block: a segment's blocks lie
 * end to end, as do a vsnap object's.
 */
export function coalesceRanges<T>(pieces: readonly WantedRange<T>[], maxBytes = RUN_BYTES): RangeRun<T>[] {
  const runs: RangeRun<T>[] = [];
  for (const piece of pieces) {
    const run = runs.at(-1);
    if (run && run.object === piece.object && run.end === piece.start && piece.end - run.start <= maxBytes) {
      run.end = piece.end;
      run.pieces.push(piece);
    } else {
      runs.push({ object: piece.object, start: piece.start, end: piece.end, pieces: [piece] });
    }
  }
  return runs;
}

/**
 * Buffers that runs are read into, reused from run to run and call to call: filling a fresh 8 MiB
 * array costs its pages every time, more than the read's own copy into a warm one. Keeps at most
 * `keep` spare buffers of `size` bytes; a run longer than `size` gets no buffer (bytes of its own).
 */
export class RunBuffers {
  readonly #spare: Uint8Array[] = [];

  constructor(
    private readonly size = RUN_BYTES,
    private readonly keep = 8,
  ) {}

  /** A buffer for `bytes` bytes, or undefined when they do not fit one. */
  take(bytes: number): Uint8Array | undefined {
    if (bytes > this.size) return undefined;
    return this.#spare.pop() ?? new Uint8Array(this.size);
  }

  /** Hands back a buffer of {@link take} once nothing reads it any more. */
  give(buffer: Uint8Array | undefined): void {
    if (buffer && this.#spare.length < this.keep) this.#spare.push(buffer);
  }
}

/**
 * The run buffers of this process's workers (exports, copies): one set, whichever service instance
 * reads, as a container runs one at a time (the local cloud, several: each run takes its own).
 * Memory: at most 8 spare buffers of {@link RUN_BYTES} (64 MiB) once a read has used them.
 */
export const sharedRunBuffers = new RunBuffers();

/**
 * Reads `runs` ahead, at most `concurrency` at once, and hands each to `use` in order, with the
 * bytes of each of its pieces. The next reads start while `use` works on one (reading overlaps the
 * work). Memory: `concurrency` runs read ahead plus the one in use (with {@link RUN_BYTES} runs and 4
 * at once, 40 MiB). A failed read fails the call when its turn comes. With `buffers`, each run is
 * read `into` one of them, handed back once `use` is done with its pieces: `use` must then copy
 * what it keeps, as the bytes are read over by a later run.
 */
export async function readRunsInOrder<T>(
  runs: readonly RangeRun<T>[],
  concurrency: number,
  read: (run: RangeRun<T>, into?: Uint8Array) => Promise<Uint8Array>,
  use: (piece: WantedRange<T>, bytes: Uint8Array) => Promise<void> | void,
  buffers?: RunBuffers,
): Promise<void> {
  const reads: ({ bytes: Promise<Uint8Array>; into?: Uint8Array } | undefined)[] = [];
  const fill = (upTo: number) => {
    while (reads.length < Math.min(runs.length, upTo)) {
      const run = runs[reads.length] as RangeRun<T>;
      const into = buffers?.take(run.end - run.start);
      const bytes = read(run, into);
      bytes.catch(() => {}); // awaited in order below; a failure surfaces there
      reads.push({ bytes, ...(into ? { into } : {}) });
    }
  };
  fill(Math.max(1, concurrency));
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i] as RangeRun<T>;
    const next = reads[i] as { bytes: Promise<Uint8Array>; into?: Uint8Array };
    const bytes = await next.bytes;
    reads[i] = undefined;
    fill(i + 1 + Math.max(1, concurrency));
    if (bytes.length !== run.end - run.start)
      throw new Error(`asked for ${run.end - run.start} bytes of ${run.object}, got ${bytes.length}`);
    for (const piece of run.pieces)
      await use(piece, bytes.subarray(piece.start - run.start, piece.end - run.start));
    buffers?.give(next.into);
  }
}
