import { type SegmentEntry, segmentCapacity } from '../format/segment.ts';
import { ObjectLayout } from '../ports/objects.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId } from '../shared/ids.ts';
import { MAX_URLS_PER_REQUEST, type SnapshotAccess } from './snapshot-access.ts';
import { inspectSegment, parseSegmentTail, segmentTailOf } from './snapshot-verify.ts';
import type { Snapshot } from './snapshots.ts';

/**
 * Segments checked as they land (docs/formats.md, "Completion"): while a client still uploads, it
 * reports the segments it stored, and workers read and hash each one against its own index. A
 * segment found sound gets a record: its size, its ETag and its index as read. Completion then
 * reads no block of a recorded segment: it checks that the segment still has that size and ETag
 * (an object written again has another) and that each manifest entry equals an entry of the
 * recorded index; a segment without a record is read and hashed by completion itself, as before.
 * Records are only a shortcut: losing one (a lost message, a worker that died) costs completion
 * the read of that segment, nothing else.
 */

/** What the service found of one segment it read whole: sound, at this size and ETag. */
export interface SegmentCheck {
  size: number;
  etag: string;
  /** The segment's index as it was read (every block it lists decodes to its SHA-256). */
  index: SegmentEntry[];
}

/** Records read at once by completion. */
const RECORD_CONCURRENCY = 16;

/**
 * Buffers segments are read into by checks, reused: a fresh 16 MiB buffer per check costs its
 * zeroing and the first touch of each of its pages, several times the copy. One per check running
 * at once in this process.
 */
const scratchBuffers: Buffer[] = [];

export class SegmentChecks {
  readonly #a: SnapshotAccess;

  constructor(access: SnapshotAccess) {
    this.#a = access;
  }

  /**
   * A client reports segments of its upload stored (`landed`): each gets a check by a worker
   * (`snapshot.checkSegment`). Ids must be this snapshot's session segments (else 400
   * `request.invalid`, nothing sent; with `foreign: 'ignore'` such ids are skipped, as reports of
   * stored segments are); at most {@link MAX_URLS_PER_REQUEST} at a time. Without a
   * queue, nothing happens (completion checks them). Repeating a report is harmless.
   */
  async landed(
    snapshot: Snapshot,
    reported: readonly string[],
    options: { foreign: 'refuse' | 'ignore' } = { foreign: 'refuse' },
  ): Promise<void> {
    if (reported.length === 0) return;
    const session = await this.#a.options.snapshots.sessionSegments(snapshot.snapshotId);
    const issued = (id: string) => isId('segment', id) && session.has(id);
    const segmentIds = options.foreign === 'ignore' ? reported.filter(issued) : reported;
    const foreign = segmentIds.find((id) => !issued(id));
    if (segmentIds.length > MAX_URLS_PER_REQUEST || foreign !== undefined) {
      throw new VolsnapError(
        'request.invalid',
        `Report up to ${MAX_URLS_PER_REQUEST} landed segments at a time, each one issued to snapshot ${snapshot.snapshotId}${foreign === undefined ? '' : ` (${foreign} was not)`}.`,
        {
          details: {
            snapshotId: snapshot.snapshotId,
            ...(foreign === undefined ? {} : { segmentId: foreign }),
          },
        },
      );
    }
    if (!this.#a.hasQueue) return;
    for (const segmentId of new Set(segmentIds))
      await this.#a.options.queue.send({
        kind: 'snapshot.checkSegment',
        snapshotId: snapshot.snapshotId,
        segmentId,
      });
  }

  /**
   * A worker's check of one landed segment: read whole in one GET, every block its index lists
   * decoded and hashed, with completion's checker. Sound → recorded (`checked`) with the ETag of the
   * version read. Unsound → nothing recorded (`unsound`): completion reads
   * it again and fails the snapshot with its reason. Skipped when the snapshot is no longer pending,
   * the segment is not its own or not stored yet, or the store gives no ETags. Idempotent; memory:
   * one run of 16 MiB.
   */
  async check(snapshotId: string, segmentId: string): Promise<'checked' | 'unsound' | 'skipped'> {
    const snapshot = await this.#a.options.snapshots.get(snapshotId);
    if (snapshot?.state !== 'pending' || !isId('segment', segmentId)) return 'skipped';
    if (!(await this.#a.options.snapshots.sessionSegments(snapshotId)).has(segmentId)) return 'skipped';
    const { objects } = this.#a.options;
    const objectKey = ObjectLayout.segment(snapshot.accountId, segmentId);
    // One GET: the bytes checked are the version its ETag names, so no HEAD before or after is needed.
    const scratch = scratchBuffers.pop() ?? Buffer.allocUnsafe(segmentCapacity());
    try {
      return await this.#checkRead(
        snapshot,
        segmentId,
        await objects.getVersion(objectKey, { into: scratch }),
      );
    } finally {
      // Nothing read from it is kept: the record is encoded before this.
      scratchBuffers.push(scratch);
    }
  }

  async #checkRead(
    snapshot: Snapshot,
    segmentId: string,
    got: { bytes: Uint8Array; etag?: string } | undefined,
  ): Promise<'checked' | 'unsound' | 'skipped'> {
    const { objects, compressor } = this.#a.options;
    const snapshotId = snapshot.snapshotId;
    if (!got?.etag) return 'skipped';
    const size = got.bytes.length;
    let read: { index: SegmentEntry[]; tail: Uint8Array };
    try {
      read = segmentTailOf(got.bytes);
    } catch (error) {
      if (error instanceof VolsnapError && error.code === 'data.corrupt') return 'unsound';
      throw error;
    }
    const everyBlock = read.index.map((entry, position) => ({
      blockIndex: position,
      segmentId,
      offset: entry.offset,
      storedLength: entry.storedLength,
      encoding: entry.encoding,
      hash: entry.hash,
    }));
    const findings = await inspectSegment(
      objects,
      compressor,
      { accountId: snapshot.accountId, segmentId, size },
      everyBlock,
      { stopAtFirst: true, index: read.index, bytes: got.bytes },
    );
    if (findings.length > 0) return 'unsound';
    await objects.put(
      ObjectLayout.segmentCheck(snapshotId, segmentId),
      encodeCheck({ size, etag: got.etag, tail: read.tail }),
    );
    return 'checked';
  }

  /**
   * Which segments of the snapshot have a record: one listing (a page per 1,000 records), keys only.
   */
  async checkedIds(snapshotId: string): Promise<Set<string>> {
    const prefix = ObjectLayout.segmentCheckPrefix(snapshotId);
    const ids = new Set<string>();
    for await (const object of this.#a.options.objects.list(prefix)) ids.add(object.key.slice(prefix.length));
    return ids;
  }

  /**
   * The records of `segmentIds` (this snapshot's), by segment id: a GET of each, 16 at a time. A
   * record absent or that does not parse counts as none (completion reads that segment). Memory:
   * about 3 KiB per record of a 16 MiB segment of incompressible blocks.
   */
  async load(snapshotId: string, segmentIds: Iterable<string>): Promise<Map<string, SegmentCheck>> {
    const ids = [...segmentIds];
    const records = new Map<string, SegmentCheck>();
    for (let i = 0; i < ids.length; i += RECORD_CONCURRENCY) {
      await Promise.all(
        ids.slice(i, i + RECORD_CONCURRENCY).map(async (segmentId) => {
          const key = ObjectLayout.segmentCheck(snapshotId, segmentId);
          const record = decodeCheck(await this.#a.options.objects.get(key));
          if (record) records.set(segmentId, record);
        }),
      );
    }
    return records;
  }
}

function encodeCheck(record: { size: number; etag: string; tail: Uint8Array }): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      version: 1,
      size: record.size,
      etag: record.etag,
      tail: Buffer.from(record.tail).toString('base64'),
    }),
  );
}

function decodeCheck(bytes: Uint8Array | undefined): SegmentCheck | undefined {
  if (!bytes || bytes.length === 0) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
    const { size, etag, tail } = parsed;
    if (
      parsed.version !== 1 ||
      !Number.isSafeInteger(size) ||
      typeof etag !== 'string' ||
      typeof tail !== 'string'
    )
      return undefined;
    return {
      size: size as number,
      etag,
      index: parseSegmentTail(Buffer.from(tail, 'base64'), size as number),
    };
  } catch {
    // Not a record this build wrote (or damaged): as if there were none.
    return undefined;
  }
}
