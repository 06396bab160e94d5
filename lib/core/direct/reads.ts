import { BLOCK_SIZE, blockHash } from '../format/blocks.ts';
import { decodeManifest, type Manifest, type ManifestEntry } from '../format/manifest.ts';
import type { Caller } from '../identity/identity.ts';
import { type Compressor, decodeBlock } from '../ports/codec.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import type { Clock } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import type { Snapshot } from '../snapshots/snapshots.ts';
import {
  BLOCK_TOKEN_TTL_SECONDS,
  PAGE_TOKEN_TTL_SECONDS,
  type PageScope,
  type TokenKeySource,
  TokenSigner,
} from './tokens.ts';

/** MaxResults of the EBS model: at most 10,000; fewer than 100 are answered as 100 (the EBS FAQ). */
export const MIN_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 10_000;
/** Without MaxResults, a page holds up to this many blocks (coldsnap asks the maximum anyway). */
export const DEFAULT_PAGE_SIZE = 10_000;
/**
 * ListChangedBlocks looks at most this many times MaxResults manifest entries per page, so a
 * request's work is bounded however few blocks changed: a page may then be empty and carry a
 * NextToken (the EBS FAQ says clients keep paging until NextToken is null).
 */
export const CHANGED_SCAN_FACTOR = 4;
/**
 * Decoded manifests kept per container (immutable once completed), the most recently used: the
 * pages of one listing (two manifests for ListChangedBlocks) read each once.
 */
const MANIFEST_CACHE_ENTRIES = 2;

export interface DirectReadsOptions {
  /** A snapshot the caller may read (own, shared with its account, public), else `snapshot.notFound`. */
  snapshots: { get(caller: Caller, snapshotId: string): Promise<Snapshot> };
  objects: ObjectStore;
  compressor: Compressor;
  clock: Clock;
  /** The deployment's token key (asked once, on first use). */
  tokenKey: TokenKeySource;
}

/** Which page of a listing: `nextToken` continues one, else from `startingBlockIndex` (0 unless given). */
export interface PageRequest {
  maxResults?: number;
  startingBlockIndex?: number;
  nextToken?: string;
}

/** What every page of a listing says besides its blocks. */
export interface ListingPage {
  /** When the page's block tokens expire (epoch seconds). */
  expiresAt: number;
  /** The snapshot's size in bytes (the EBS API answers it in GiB). */
  volumeSize: number;
  blockSize: number;
  /** Absent on the last page. */
  nextToken?: string;
}

export interface BlockListing extends ListingPage {
  blocks: { blockIndex: number; blockToken: string }[];
}

export interface ChangedBlockListing extends ListingPage {
  /** A token is absent where that snapshot has no (a zero) block at the index. */
  changedBlocks: { blockIndex: number; firstBlockToken?: string; secondBlockToken?: string }[];
}

/** One block's bytes, checked against its SHA-256. */
export interface BlockData {
  data: Uint8Array;
  hash: Buffer;
}

/**
 * The reads of the EBS direct API over volsnap's snapshots: any completed snapshot the caller may
 * read, however it was written (the CLI, a worker, the EBS API). Lists a snapshot's written (stored,
 * non-zero) blocks in index order with a block token each, the blocks two snapshots of one volume
 * differ in, and a block's bytes for its token. Tokens are stateless ({@link TokenSigner}); every
 * call is a read, safe to retry. Memory: a listing decodes the snapshot's manifest (52 bytes a block
 * stored, more once decoded) and keeps the last two decoded; a block read holds one block.
 */
export class DirectReads {
  readonly #options: DirectReadsOptions;
  #signer: Promise<TokenSigner> | undefined;
  readonly #manifests = new Map<string, Promise<Manifest>>();

  constructor(options: DirectReadsOptions) {
    this.#options = options;
  }

  /** ListSnapshotBlocks: a page of the snapshot's written blocks, ascending. */
  async listBlocks(caller: Caller, snapshotId: string, page: PageRequest): Promise<BlockListing> {
    const snapshot = await this.#readable(caller, snapshotId);
    const signer = await this.#tokens();
    const now = this.#nowSeconds();
    const scope: PageScope = { kind: 'blocks', snapshotId };
    const size = pageSize(page.maxResults);
    const from = startIndex(signer, scope, page, now);
    const { entries } = await this.#manifest(snapshotId);
    const first = firstAtOrAfter(entries, from);
    const taken = entries.slice(first, first + size);
    const expiresAt = now + BLOCK_TOKEN_TTL_SECONDS;
    const rest = entries[first + size];
    return {
      blocks: taken.map((entry) => ({
        blockIndex: entry.blockIndex,
        blockToken: signer.blockToken(snapshotId, entry.blockIndex, entry, expiresAt),
      })),
      ...pageOf(snapshot, expiresAt),
      ...(rest ? { nextToken: signer.pageToken(scope, rest.blockIndex, now + PAGE_TOKEN_TTL_SECONDS) } : {}),
    };
  }

  /**
   * ListChangedBlocks: the blocks at which `secondSnapshotId` differs from `firstSnapshotId` (its
   * block's SHA-256 differs, or only one of them has a block there), ascending. Both must be
   * snapshots of one volume (`UNRELATED_SNAPSHOTS` otherwise). Without a first snapshot, every block
   * of the second is changed.
   */
  async listChanged(
    caller: Caller,
    secondSnapshotId: string,
    firstSnapshotId: string | undefined,
    page: PageRequest,
  ): Promise<ChangedBlockListing> {
    const [second, first] = await Promise.all([
      this.#readable(caller, secondSnapshotId),
      firstSnapshotId === undefined ? undefined : this.#readable(caller, firstSnapshotId),
    ]);
    if (first && first.volumeId !== second.volumeId) {
      throw new VolsnapError(
        'request.invalid',
        `Snapshots ${first.snapshotId} and ${second.snapshotId} are of different volumes: changed blocks are defined between snapshots of one volume.`,
        { details: { reason: 'UNRELATED_SNAPSHOTS' } },
      );
    }
    const signer = await this.#tokens();
    const now = this.#nowSeconds();
    const scope: PageScope = { kind: 'changed', firstSnapshotId, secondSnapshotId };
    const size = pageSize(page.maxResults);
    const from = startIndex(signer, scope, page, now);
    const [before, after] = await Promise.all([
      first ? this.#manifest(first.snapshotId) : { entries: [] as ManifestEntry[] },
      this.#manifest(second.snapshotId),
    ]);
    const walk = changedFrom(before.entries, after.entries, from, size, size * CHANGED_SCAN_FACTOR);
    const expiresAt = now + BLOCK_TOKEN_TTL_SECONDS;
    const token = (snapshotId: string, entry: ManifestEntry | undefined) =>
      entry ? signer.blockToken(snapshotId, entry.blockIndex, entry, expiresAt) : undefined;
    return {
      changedBlocks: walk.changed.map(({ blockIndex, before: a, after: b }) => ({
        blockIndex,
        ...(first && a ? { firstBlockToken: token(first.snapshotId, a) } : {}),
        ...(b ? { secondBlockToken: token(second.snapshotId, b) } : {}),
      })),
      ...pageOf(second, expiresAt),
      ...(walk.next !== undefined
        ? { nextToken: signer.pageToken(scope, walk.next, now + PAGE_TOKEN_TTL_SECONDS) }
        : {}),
    };
  }

  /**
   * GetSnapshotBlock: the plain bytes of block `blockIndex`, read with one ranged GET of its segment
   * at the place its token names, decoded and checked against the SHA-256 the token carries. A
   * block whose stored bytes do not match is a 500 (`internal`, logged), never wrong bytes.
   */
  async getBlock(
    caller: Caller,
    snapshotId: string,
    blockIndex: number,
    blockToken: string,
  ): Promise<BlockData> {
    const snapshot = await this.#readable(caller, snapshotId);
    const claims = (await this.#tokens()).checkBlockToken(
      blockToken,
      snapshotId,
      blockIndex,
      this.#nowSeconds(),
    );
    const { objects, compressor } = this.#options;
    const key = ObjectLayout.segment(snapshot.accountId, claims.segmentId);
    const stored = await objects.getRange(key, claims.offset, claims.offset + claims.storedLength);
    let data: Uint8Array;
    try {
      data = decodeBlock(compressor, claims.encoding, stored, BLOCK_SIZE);
    } catch (cause) {
      throw corruptBlock(snapshotId, blockIndex, claims.segmentId, cause);
    }
    if (data.byteLength !== BLOCK_SIZE || !blockHash(data).equals(claims.hash))
      throw corruptBlock(snapshotId, blockIndex, claims.segmentId);
    return { data, hash: claims.hash };
  }

  /** A completed snapshot the caller may read; any other (pending, in error, unseen) is a 404. */
  async #readable(caller: Caller, snapshotId: string): Promise<Snapshot> {
    const snapshot = await this.#options.snapshots.get(caller, snapshotId);
    if (snapshot.state !== 'completed') {
      throw new VolsnapError(
        'snapshot.notFound',
        `Snapshot ${snapshotId} is ${snapshot.state}: only completed snapshots can be read.`,
        { details: { snapshotId, state: snapshot.state } },
      );
    }
    return snapshot;
  }

  /** The signer over the token key, asked once; a failed ask is asked again by the next request. */
  #tokens(): Promise<TokenSigner> {
    if (!this.#signer) {
      const signer = this.#options.tokenKey().then((key) => new TokenSigner(key));
      signer.catch(() => {
        if (this.#signer === signer) this.#signer = undefined;
      });
      this.#signer = signer;
    }
    return this.#signer;
  }

  #manifest(snapshotId: string): Promise<Manifest> {
    let manifest = this.#manifests.get(snapshotId);
    if (manifest) {
      this.#manifests.delete(snapshotId);
    } else {
      manifest = this.#options.objects.get(ObjectLayout.manifest(snapshotId)).then((bytes) => {
        if (!bytes)
          throw new VolsnapError('internal', `The manifest of completed snapshot ${snapshotId} is missing.`);
        return decodeManifest(bytes);
      });
      manifest.catch(() => this.#manifests.delete(snapshotId));
    }
    this.#manifests.set(snapshotId, manifest);
    for (const oldest of this.#manifests.keys()) {
      if (this.#manifests.size <= MANIFEST_CACHE_ENTRIES) break;
      this.#manifests.delete(oldest);
    }
    return manifest;
  }

  #nowSeconds(): number {
    return Math.floor(this.#options.clock.now() / 1000);
  }
}

/** MaxResults as a page size: 100–10,000, fewer than 100 answered as 100. */
export function pageSize(maxResults: number | undefined): number {
  if (maxResults === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(maxResults) || maxResults < 0 || maxResults > MAX_PAGE_SIZE) {
    throw new VolsnapError(
      'request.invalid',
      `MaxResults must be a whole number from ${MIN_PAGE_SIZE} to ${MAX_PAGE_SIZE}, not ${maxResults}.`,
    );
  }
  return Math.max(maxResults, MIN_PAGE_SIZE);
}

function startIndex(signer: TokenSigner, scope: PageScope, page: PageRequest, now: number): number {
  // With a NextToken, StartingBlockIndex is ignored (the EBS model).
  if (page.nextToken !== undefined) return signer.checkPageToken(page.nextToken, scope, now);
  const start = page.startingBlockIndex ?? 0;
  if (!Number.isSafeInteger(start) || start < 0)
    throw new VolsnapError('request.invalid', `StartingBlockIndex must be a whole number ≥ 0, not ${start}.`);
  return start;
}

function pageOf(snapshot: Snapshot, expiresAt: number) {
  return { expiresAt, volumeSize: snapshot.volumeSize, blockSize: snapshot.blockSize };
}

/** The position of the first entry at or after block `index` (entries ascend). */
function firstAtOrAfter(entries: readonly ManifestEntry[], index: number): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((entries[middle] as ManifestEntry).blockIndex < index) low = middle + 1;
    else high = middle;
  }
  return low;
}

interface ChangedBlock {
  blockIndex: number;
  before?: ManifestEntry;
  after?: ManifestEntry;
}

/**
 * Walks two ascending manifests together from block `from`: up to `limit` changed blocks, looking at
 * no more than `scanLimit` indices that either has. `next` is where the next page starts, if any.
 */
export function changedFrom(
  before: readonly ManifestEntry[],
  after: readonly ManifestEntry[],
  from: number,
  limit: number,
  scanLimit: number,
): { changed: ChangedBlock[]; next?: number } {
  let i = firstAtOrAfter(before, from);
  let j = firstAtOrAfter(after, from);
  const changed: ChangedBlock[] = [];
  let scanned = 0;
  while (i < before.length || j < after.length) {
    const a = before[i];
    const b = after[j];
    const index = Math.min(
      a?.blockIndex ?? Number.POSITIVE_INFINITY,
      b?.blockIndex ?? Number.POSITIVE_INFINITY,
    );
    if (changed.length === limit || scanned === scanLimit) return { changed, next: index };
    scanned++;
    const here = { a: a?.blockIndex === index ? a : undefined, b: b?.blockIndex === index ? b : undefined };
    if (here.a) i++;
    if (here.b) j++;
    if (here.a && here.b && here.a.hash.equals(here.b.hash)) continue;
    changed.push({
      blockIndex: index,
      ...(here.a ? { before: here.a } : {}),
      ...(here.b ? { after: here.b } : {}),
    });
  }
  return { changed };
}

function corruptBlock(
  snapshotId: string,
  blockIndex: number,
  segmentId: string,
  cause?: unknown,
): VolsnapError {
  return new VolsnapError(
    'internal',
    `Block ${blockIndex} of snapshot ${snapshotId} in segment ${segmentId} does not match its SHA-256.`,
    cause === undefined ? {} : { cause },
  );
}
