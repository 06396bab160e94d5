import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** One segment this host uploaded for a pending snapshot: the id it went to and what it held. */
interface JournalLine {
  segmentId: string;
  sha256: string;
  size: number;
}

/**
 * What this host already uploaded for a pending snapshot, so that a rerun with the same client
 * token (the same snapshot) uploads only the segments that are not stored yet: one JSON line per
 * segment the store acknowledged (2xx), under `dir/<snapshotId>.jsonl`. A segment is known by the
 * SHA-256 of its bytes, not its place: the writer packs the same file into the same segments, and
 * a segment whose bytes changed (the file did) is uploaded again to a fresh key. The service checks
 * every block at completion either way. Removed once the snapshot is no longer pending. Not for
 * concurrent writers of one snapshot (one CLI writes a snapshot).
 */
export class UploadJournal {
  readonly #path: string | undefined;
  readonly #dir: string | undefined;
  readonly #stored = new Map<string, JournalLine>();

  private constructor(dir: string | undefined, snapshotId: string) {
    this.#dir = dir;
    this.#path = dir === undefined ? undefined : join(dir, `${snapshotId}.jsonl`);
  }

  /**
   * Adds segments the service says are stored for the snapshot (reported by an earlier run, from
   * this host or another): known from now on, not written to the file.
   */
  learn(stored: readonly JournalLine[]): void {
    for (const entry of stored) this.#stored.set(`${entry.sha256}:${entry.size}`, entry);
  }

  /**
   * The journal of `snapshotId` in `dir`, with what an earlier run recorded (a torn last line is
   * skipped); without `dir`, one kept in memory only (what the service says it has, {@link learn}).
   */
  static async open(dir: string | undefined, snapshotId: string): Promise<UploadJournal> {
    const journal = new UploadJournal(dir, snapshotId);
    if (!journal.#path) return journal;
    const text = await readFile(journal.#path, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      try {
        const entry = JSON.parse(line) as JournalLine;
        if (typeof entry.segmentId === 'string' && typeof entry.sha256 === 'string')
          journal.#stored.set(`${entry.sha256}:${entry.size}`, entry);
      } catch {
        // a line torn by a kill mid-write, or an empty one
      }
    }
    return journal;
  }

  /** The SHA-256 a segment is known by here. */
  static digest(object: Uint8Array): string {
    return createHash('sha256').update(object).digest('hex');
  }

  /** The id a segment with these bytes was stored under by an earlier run, if one was. */
  storedAs(sha256: string, size: number): string | undefined {
    return this.#stored.get(`${sha256}:${size}`)?.segmentId;
  }

  /** Records a segment the store acknowledged. */
  async record(segmentId: string, sha256: string, size: number): Promise<void> {
    if (!this.#dir || !this.#path) return;
    await mkdir(this.#dir, { recursive: true });
    await appendFile(this.#path, `${JSON.stringify({ segmentId, sha256, size })}\n`);
  }

  /** Forgets the snapshot: it is no longer pending, or its recorded segments are not all stored. */
  async remove(): Promise<void> {
    if (this.#path) await rm(this.#path, { force: true });
  }
}
