import { BLOCK_SIZE, blockHash } from '../format/blocks.ts';
import type { Manifest, ManifestEntry } from '../format/manifest.ts';
import {
  parseSegmentFooter,
  parseSegmentIndex,
  readSegmentBlock,
  SEGMENT_FOOTER_SIZE,
  type SegmentEntry,
} from '../format/segment.ts';
import { BlockEncoding, type Compressor, decodeBlock } from '../ports/codec.ts';
import { DELETE_BATCH_KEYS, ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import { VolsnapError } from '../shared/errors.ts';
import type { Snapshot, SnapshotRepository } from './snapshots.ts';

/**
 * What completion checks of a client's upload before a snapshot is `completed` (docs/formats.md,
 * "Completion"), and how an upload session ends: every key it was issued and does not keep is
 * made unusable at once.
 */

/**
 * Volume bytes per segment URL a snapshot may be issued. Segments are sealed at 16 MiB of stored
 * blocks, so a snapshot never needs more than volumeSize / 16 MiB of them (plus one per writer
 * flush); half that leaves room for one full rerun with the same client token.
 */
export const VOLUME_BYTES_PER_SEGMENT_URL = 8 * 1024 * 1024;
/** Segment URLs every snapshot may be issued beyond its size's share (small volumes, batches). */
export const SEGMENT_URL_SLACK = 64;
/** Manifest upload URLs a snapshot may be issued (one per upload attempt). */
export const MAX_MANIFEST_UPLOADS = 32;

/** The most segment URLs a snapshot of a volume of `volumeSize` bytes is issued, in all. */
export function maxSegmentUrls(volumeSize: number): number {
  return Math.ceil(volumeSize / VOLUME_BYTES_PER_SEGMENT_URL) + SEGMENT_URL_SLACK;
}

/** Bytes of a segment read with one GET while verifying (memory per verifier: about this). */
const VERIFY_RUN_BYTES = 16 * 1024 * 1024;
/** Keys retired at once. */
const RETIRE_CONCURRENCY = 16;
const TOMBSTONE = new Uint8Array(0);

/** A reason the upload is not what its manifest says, naming the block and segment. */
export type Rejection = string;

/**
 * What is wrong with one block of a segment, as {@link inspectSegment} finds it. `problem`:
 * `digest` (the block decodes to other bytes than its SHA-256: `found` is theirs), `unreadable`
 * (it does not decode, or the segment's index does not describe it), `missing` (the segment is not
 * stored, or not at the size the manifest records).
 */
export interface BlockFinding {
  blockIndex: number;
  segmentId: string;
  /** Where the block's stored bytes start in the segment. */
  offset: number;
  problem: 'digest' | 'unreadable' | 'missing';
  /** The SHA-256 the manifest records (hex). */
  expected: string;
  /** The SHA-256 of what the block decodes to, when it decodes (hex). */
  found?: string;
  /** The sentence completion reports, naming the block and segment. */
  message: string;
}

/**
 * Checks the manifest's entries in one segment of this upload against the segment itself: its
 * footer and index (digest), every entry equal to an index entry (offset, stored length, encoding,
 * SHA-256, a full plain block), and every block decoded and hashed. `size` is the segment's object
 * size, already checked to be what the manifest declares. Reads the segment in runs of at most
 * 16 MiB, one at a time. Returns undefined when it holds, else why not.
 */
export async function verifySegment(
  objects: ObjectStore,
  compressor: Compressor,
  key: { accountId: string; segmentId: string; size: number },
  entries: readonly ManifestEntry[],
): Promise<Rejection | undefined> {
  const [first] = await inspectSegment(objects, compressor, key, entries, { stopAtFirst: true });
  return first?.message;
}

/**
 * The one checker of a segment's blocks (completion's, and the re-verification of stored
 * snapshots): every finding, block by block, or with `stopAtFirst` the first one. `index` is the
 * segment's index when the caller read it already (see {@link readSegmentTail}). Memory: one run
 * of at most 16 MiB. Read-only, so safe to run again.
 */
export async function inspectSegment(
  objects: ObjectStore,
  compressor: Compressor,
  key: { accountId: string; segmentId: string; size: number },
  entries: readonly ManifestEntry[],
  options: {
    stopAtFirst?: boolean;
    index?: readonly SegmentEntry[];
    /** The whole segment, already read (`size` bytes): its blocks are checked from it, with no GET. */
    bytes?: Uint8Array;
  } = {},
): Promise<BlockFinding[]> {
  const { segmentId, size } = key;
  const objectKey = ObjectLayout.segment(key.accountId, segmentId);
  const where = `segment ${segmentId}`;
  const findings: BlockFinding[] = [];
  const unreadable = (message: string): BlockFinding[] =>
    (options.stopAtFirst ? entries.slice(0, 1) : entries).map((entry) => ({
      ...findingOf(entry, 'unreadable'),
      message,
    }));
  if (size < SEGMENT_FOOTER_SIZE)
    return unreadable(
      `The ${where} is ${size} bytes, too short to be a segment (blocks ${blockList(entries)}).`,
    );
  let index: readonly SegmentEntry[];
  try {
    index = options.index ?? (await readSegmentTail(objects, objectKey, size)).index;
  } catch (error) {
    if (!(error instanceof VolsnapError && error.code === 'data.corrupt')) throw error;
    return unreadable(
      `The ${where} is not a sound segment (${error.message}); it holds blocks ${blockList(entries)}.`,
    );
  }
  const byOffset = new Map(index.map((entry) => [entry.offset, entry]));
  // One check per stored location: identical blocks of a snapshot share one.
  const locations = new Map<number, SegmentEntry>();
  const blocksAt = new Map<number, ManifestEntry[]>();
  for (const entry of entries) {
    const wrong = indexDisagreement(entry, byOffset.get(entry.offset), where);
    if (wrong) {
      findings.push({ ...findingOf(entry, 'unreadable'), message: wrong });
      if (options.stopAtFirst) return findings;
      continue;
    }
    locations.set(entry.offset, byOffset.get(entry.offset) as SegmentEntry);
    blocksAt.set(entry.offset, [...(blocksAt.get(entry.offset) ?? []), entry]);
  }
  const sorted = [...locations.values()].sort((a, b) => a.offset - b.offset);
  for (let i = 0; i < sorted.length; ) {
    const first = sorted[i] as SegmentEntry;
    let end = first.offset + first.storedLength;
    let j = i + 1;
    for (; j < sorted.length; j++) {
      const next = sorted[j] as SegmentEntry;
      const nextEnd = Math.max(end, next.offset + next.storedLength);
      if (nextEnd - first.offset > VERIFY_RUN_BYTES) break;
      end = nextEnd;
    }
    const run = options.bytes
      ? options.bytes.subarray(first.offset, end)
      : await objects.getRange(objectKey, first.offset, end);
    for (const stored of sorted.slice(i, j)) {
      const bytes = run.subarray(
        stored.offset - first.offset,
        stored.offset - first.offset + stored.storedLength,
      );
      const bad = blockProblem(compressor, stored, bytes);
      if (!bad) continue;
      for (const entry of blocksAt.get(stored.offset) ?? []) {
        findings.push({
          ...findingOf(entry, bad.found === undefined ? 'unreadable' : 'digest'),
          ...(bad.found !== undefined ? { found: bad.found } : {}),
          message: `Block ${entry.blockIndex} (in ${where} at offset ${stored.offset}) does not hold what the manifest says: ${bad.message}`,
        });
        if (options.stopAtFirst) return findings;
      }
    }
    i = j;
  }
  return findings;
}

/**
 * A segment's index, checked against its footer, and the bytes they were read from: the object's
 * tail [indexOffset, size), index then footer. Two ranged GETs; throws `data.corrupt` when they are
 * not a sound index of an object of `size` bytes.
 */
export async function readSegmentTail(
  objects: ObjectStore,
  objectKey: string,
  size: number,
): Promise<{ index: SegmentEntry[]; tail: Uint8Array }> {
  if (size < SEGMENT_FOOTER_SIZE)
    throw new VolsnapError('data.corrupt', `${size} bytes are too short to be a segment.`);
  const footerBytes = await objects.getRange(objectKey, size - SEGMENT_FOOTER_SIZE, size);
  const footer = parseSegmentFooter(footerBytes, size);
  const indexBytes = await objects.getRange(
    objectKey,
    footer.indexOffset,
    footer.indexOffset + footer.indexLength,
  );
  const index = parseSegmentIndex(indexBytes, footer);
  return { index, tail: Buffer.concat([indexBytes, footerBytes]) };
}

/** {@link readSegmentTail} of a segment already read whole: no request. Throws `data.corrupt` likewise. */
export function segmentTailOf(segment: Uint8Array): { index: SegmentEntry[]; tail: Uint8Array } {
  const size = segment.length;
  if (size < SEGMENT_FOOTER_SIZE)
    throw new VolsnapError('data.corrupt', `${size} bytes are too short to be a segment.`);
  const footerBytes = segment.subarray(size - SEGMENT_FOOTER_SIZE);
  const footer = parseSegmentFooter(footerBytes, size);
  const indexBytes = segment.subarray(footer.indexOffset, footer.indexOffset + footer.indexLength);
  const index = parseSegmentIndex(indexBytes, footer);
  return { index, tail: Buffer.concat([indexBytes, footerBytes]) };
}

/** The index held in a segment's tail as {@link readSegmentTail} read it (checked again: digest, size). */
export function parseSegmentTail(tail: Uint8Array, size: number): SegmentEntry[] {
  if (tail.length < SEGMENT_FOOTER_SIZE)
    throw new VolsnapError('data.corrupt', `A segment tail of ${tail.length} bytes has no footer.`);
  const footer = parseSegmentFooter(tail.subarray(tail.length - SEGMENT_FOOTER_SIZE), size);
  return parseSegmentIndex(tail.subarray(0, tail.length - SEGMENT_FOOTER_SIZE), footer);
}

/**
 * Check 3 of completion without reading blocks, for a segment whose every indexed block the service
 * already read and hashed (segment-checks.ts): each manifest entry must equal an index entry.
 */
export function entriesAgainstIndex(
  entries: readonly ManifestEntry[],
  index: readonly SegmentEntry[],
  segmentId: string,
): Rejection | undefined {
  const byOffset = new Map(index.map((entry) => [entry.offset, entry]));
  for (const entry of entries) {
    const wrong = indexDisagreement(entry, byOffset.get(entry.offset), `segment ${segmentId}`);
    if (wrong) return wrong;
  }
  return undefined;
}

/** Why a manifest entry is not the segment index's block at its offset, or undefined. */
function indexDisagreement(
  entry: ManifestEntry,
  stored: SegmentEntry | undefined,
  where: string,
): string | undefined {
  const block = `Block ${entry.blockIndex} (in ${where} at offset ${entry.offset})`;
  if (entry.encoding !== BlockEncoding.raw && entry.encoding !== BlockEncoding.zstd)
    return `${block} names encoding ${entry.encoding}, which volsnap does not know.`;
  if (!stored)
    return `${block} is not a block of the segment: its index has no block at that offset (it may point into another block, the index or the footer).`;
  if (stored.storedLength !== entry.storedLength || stored.encoding !== entry.encoding)
    return `${block} is ${entry.storedLength} bytes in encoding ${entry.encoding} by the manifest, ${stored.storedLength} bytes in encoding ${stored.encoding} by the segment's index.`;
  if (!stored.hash.equals(entry.hash))
    return `${block} has SHA-256 ${entry.hash.toString('hex')} in the manifest, ${stored.hash.toString('hex')} in the segment's index.`;
  if (stored.plainLength !== BLOCK_SIZE)
    return `${block} is ${stored.plainLength} bytes plain by the segment's index, not a ${BLOCK_SIZE}-byte block.`;
  return undefined;
}

/** Whether a stored block holds what its index entry says; if not, why, and the digest it has. */
function blockProblem(
  compressor: Compressor,
  stored: SegmentEntry,
  bytes: Uint8Array,
): { message: string; found?: string } | undefined {
  try {
    readSegmentBlock(compressor, stored, bytes);
    return undefined;
  } catch (error) {
    if (!(error instanceof VolsnapError && error.code === 'data.corrupt')) throw error;
    let found: string | undefined;
    try {
      found = blockHash(decodeBlock(compressor, stored.encoding, bytes, stored.plainLength)).toString('hex');
    } catch {
      // It does not decode: there is no digest to show.
    }
    return { message: error.message, ...(found !== undefined ? { found } : {}) };
  }
}

function findingOf(entry: ManifestEntry, problem: BlockFinding['problem']): Omit<BlockFinding, 'message'> {
  return {
    blockIndex: entry.blockIndex,
    segmentId: entry.segmentId,
    offset: entry.offset,
    problem,
    expected: entry.hash.toString('hex'),
  };
}

/**
 * Checks the entries that point into the parent's segments: each must be the parent's own entry at
 * that location (segment, offset, stored length, encoding, SHA-256), and each such segment declared
 * at the parent's size. A manifest cannot invent blocks in segments it did not write.
 */
export function checkInherited(
  manifest: Manifest,
  parent: Manifest,
  session: ReadonlySet<string>,
): Rejection | undefined {
  for (const [segmentId, size] of manifest.segments) {
    if (session.has(segmentId)) continue;
    const parentSize = parent.segments.get(segmentId);
    if (parentSize !== undefined && parentSize !== size)
      return `The manifest declares segment ${segmentId} as ${size} bytes; the parent's manifest says ${parentSize}.`;
  }
  const byLocation = new Map<string, Map<number, ManifestEntry>>();
  for (const entry of parent.entries) {
    const inSegment = byLocation.get(entry.segmentId) ?? new Map<number, ManifestEntry>();
    inSegment.set(entry.offset, entry);
    byLocation.set(entry.segmentId, inSegment);
  }
  for (const entry of manifest.entries) {
    if (session.has(entry.segmentId)) continue;
    const known = byLocation.get(entry.segmentId)?.get(entry.offset);
    if (
      !known ||
      known.storedLength !== entry.storedLength ||
      known.encoding !== entry.encoding ||
      !known.hash.equals(entry.hash)
    ) {
      return `Block ${entry.blockIndex} points at offset ${entry.offset} of segment ${entry.segmentId}, inherited from the parent, where the parent's manifest has ${known ? `another block (SHA-256 ${known.hash.toString('hex')}, ${known.storedLength} bytes, encoding ${known.encoding})` : 'no block'}.`;
    }
  }
  return undefined;
}

/**
 * Ends an upload session: every segment key it was issued and `keep` does not name, and every
 * manifest staging key, is overwritten with an empty tombstone. A write-once URL still in flight
 * then gets 412, and whatever was PUT there is gone at once (no quota passes through an unused
 * URL). Tombstones are unreferenced objects: garbage collection deletes them after its grace
 * period, long after every URL expired. Idempotent; work bounded by the session's URL cap.
 */
export async function retireSession(
  objects: ObjectStore,
  snapshots: Pick<SnapshotRepository, 'sessionSegments' | 'sessionManifestUploads'>,
  snapshot: Pick<Snapshot, 'snapshotId' | 'accountId'> & Partial<Pick<Snapshot, 'direct'>>,
  keep: ReadonlySet<string> = new Set(),
): Promise<void> {
  // Blocks staged through the EBS direct API are no use once the snapshot leaves pending.
  if (snapshot.direct) await deleteStagedBlocks(objects, snapshot.snapshotId);
  const [segments, manifestUploads] = await Promise.all([
    snapshots.sessionSegments(snapshot.snapshotId),
    snapshots.sessionManifestUploads(snapshot.snapshotId),
  ]);
  // Independent keys, retired together; each step is idempotent, so a failed one is redone whole.
  await Promise.all([
    retireKeys(objects, [
      ...[...segments]
        .filter((segmentId) => !keep.has(segmentId))
        .map((segmentId) => ObjectLayout.segment(snapshot.accountId, segmentId)),
      ...[...manifestUploads].map((id) => ObjectLayout.manifestStaging(snapshot.snapshotId, id)),
    ]),
    // The workers' own staging key was never given out: deleting it is enough.
    objects.delete(ObjectLayout.manifestUpload(snapshot.snapshotId)),
    // Records of segments checked as they landed are no use once the session is over.
    deleteListed(objects, [ObjectLayout.segmentCheckPrefix(snapshot.snapshotId)]),
  ]);
}

/**
 * Deletes what the EBS direct API staged for a snapshot: its blocks (listed under the snapshot's
 * prefix, so a block PUT while this runs may stay: garbage collection removes it) and the packing
 * parts' digests. Idempotent.
 */
export async function deleteStagedBlocks(objects: ObjectStore, snapshotId: string): Promise<void> {
  await deleteListed(objects, [ObjectLayout.stagedBlockPrefix(snapshotId), `uploads/digests/${snapshotId}/`]);
}

/** Deletes every object under `prefixes`, a batch of keys per request ({@link ObjectStore.deleteMany}). */
async function deleteListed(objects: ObjectStore, prefixes: readonly string[]): Promise<void> {
  let batch: string[] = [];
  for (const prefix of prefixes) {
    for await (const object of objects.list(prefix)) {
      batch.push(object.key);
      if (batch.length >= DELETE_BATCH_KEYS) {
        await objects.deleteMany(batch);
        batch = [];
      }
    }
  }
  if (batch.length > 0) await objects.deleteMany(batch);
}

/** Overwrites each key with an empty tombstone (see {@link retireSession}). */
export async function retireKeys(objects: ObjectStore, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += RETIRE_CONCURRENCY)
    await Promise.all(keys.slice(i, i + RETIRE_CONCURRENCY).map((key) => objects.put(key, TOMBSTONE)));
}

function blockList(entries: readonly ManifestEntry[]): string {
  const indices = entries.slice(0, 5).map((e) => e.blockIndex);
  return `${indices.join(', ')}${entries.length > 5 ? ', …' : ''}`;
}
