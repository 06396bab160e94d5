import { createHmac, timingSafeEqual } from 'node:crypto';
import { VolsnapError } from '../shared/errors.ts';

/**
 * The block and page tokens of the EBS direct API's reads (ListSnapshotBlocks, ListChangedBlocks,
 * GetSnapshotBlock): stateless and signed. Each is a few bytes and an HMAC-SHA256 under the
 * deployment's token key, base64 (the EBS pattern `^[A-Za-z0-9+/=]+$`, at most 256 characters). The
 * MAC also covers what the request names (the snapshot id or ids, the block index), so a token
 * answered for one snapshot or index is refused for another; nothing is stored, so a token of an
 * earlier page stays valid until it expires, whatever was listed since.
 *
 * Block token (103 bytes, 140 characters): kind 1 (u8) | expiry, epoch seconds (u32) | SHA-256 of
 * the plain block (32) | encoding (u8) | offset in its segment (u32) | stored length (u32) |
 * segment id length (u8) + segment id (ASCII, ≤ 24) | MAC (32). It carries the block's place, so
 * GetSnapshotBlock reads the block with one ranged GET and no manifest.
 * Page token (41 bytes, 56 characters): kind 2 (ListSnapshotBlocks) or 3 (ListChangedBlocks) (u8) |
 * next block index (u32) | expiry (u32) | MAC (32).
 */

/** Block tokens live 7 days (the EBS FAQ). */
export const BLOCK_TOKEN_TTL_SECONDS = 7 * 24 * 3600;
/** Page tokens (NextToken) live 60 minutes (the EBS FAQ). */
export const PAGE_TOKEN_TTL_SECONDS = 3600;
/** The EBS model's bound on BlockToken and NextToken. */
export const MAX_TOKEN_LENGTH = 256;
/** The smallest key {@link TokenSigner} accepts. */
export const MIN_TOKEN_KEY_BYTES = 32;

const MAC_BYTES = 32;
const KIND_BLOCK = 1;
const KIND_BLOCKS_PAGE = 2;
const KIND_CHANGED_PAGE = 3;
const MAX_SEGMENT_ID = 24;
const TOKEN_PATTERN = /^[A-Za-z0-9+/]+={0,2}$/;

/** Where a block is stored, as a block token carries it. */
export interface BlockPlace {
  hash: Buffer;
  segmentId: string;
  offset: number;
  storedLength: number;
  encoding: number;
}

/** What a valid block token says. */
export interface BlockTokenClaims extends BlockPlace {
  /** Epoch seconds. */
  expiresAt: number;
}

/** Which listing a page token continues, and the snapshots it was answered for. */
export type PageScope =
  | { kind: 'blocks'; snapshotId: string }
  | { kind: 'changed'; firstSnapshotId?: string; secondSnapshotId: string };

/**
 * The deployment's token key, as a port: the same bytes in every function of a region for as long
 * as the deployment keeps its secret (lib/aws: derived from a KMS HMAC key; the local cloud: a key
 * file in its data directory). Asked once per container; may be retried.
 */
export type TokenKeySource = () => Promise<Uint8Array>;

/** Signs and checks tokens under one key. Pure (the clock reading is passed in); safe to share. */
export class TokenSigner {
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    if (key.byteLength < MIN_TOKEN_KEY_BYTES)
      throw new VolsnapError('internal', `The token key must hold at least ${MIN_TOKEN_KEY_BYTES} bytes.`);
    this.#key = Buffer.from(key);
  }

  /** A block token for block `blockIndex` of `snapshotId`, expiring at `expiresAt` (epoch seconds). */
  blockToken(snapshotId: string, blockIndex: number, place: BlockPlace, expiresAt: number): string {
    const segmentId = Buffer.from(place.segmentId, 'ascii');
    if (segmentId.length > MAX_SEGMENT_ID || place.hash.length !== 32)
      throw new VolsnapError('internal', `Block ${blockIndex} of ${snapshotId} has no valid place.`);
    const body = Buffer.alloc(1 + 4 + 32 + 1 + 4 + 4 + 1 + segmentId.length);
    body.writeUInt8(KIND_BLOCK, 0);
    body.writeUInt32LE(expiresAt, 1);
    place.hash.copy(body, 5);
    body.writeUInt8(place.encoding, 37);
    body.writeUInt32LE(place.offset, 38);
    body.writeUInt32LE(place.storedLength, 42);
    body.writeUInt8(segmentId.length, 46);
    segmentId.copy(body, 47);
    return Buffer.concat([body, this.#mac(body, [snapshotId, String(blockIndex)])]).toString('base64');
  }

  /**
   * What a block token says, if it was signed here for exactly this snapshot and index and has not
   * expired at `nowSeconds`; else 400 `INVALID_BLOCK_TOKEN` (forged, altered, expired or another's).
   */
  checkBlockToken(
    token: string,
    snapshotId: string,
    blockIndex: number,
    nowSeconds: number,
  ): BlockTokenClaims {
    const invalid = (why: string) => invalidToken('INVALID_BLOCK_TOKEN', `The block token ${why}.`);
    const bytes = this.#verified(token, [snapshotId, String(blockIndex)], KIND_BLOCK);
    if (!bytes || bytes.length < 47 || bytes.length !== 47 + (bytes[46] ?? 0))
      throw invalid(
        `is not valid for block ${blockIndex} of snapshot ${snapshotId}: list the blocks again for a new one`,
      );
    const expiresAt = bytes.readUInt32LE(1);
    if (expiresAt <= nowSeconds) throw invalid('has expired: list the blocks again for a new one');
    return {
      expiresAt,
      hash: Buffer.from(bytes.subarray(5, 37)),
      encoding: bytes.readUInt8(37),
      offset: bytes.readUInt32LE(38),
      storedLength: bytes.readUInt32LE(42),
      segmentId: bytes.subarray(47).toString('ascii'),
    };
  }

  /** A NextToken continuing `scope` at block index `nextIndex`. */
  pageToken(scope: PageScope, nextIndex: number, expiresAt: number): string {
    const body = Buffer.alloc(9);
    body.writeUInt8(scope.kind === 'blocks' ? KIND_BLOCKS_PAGE : KIND_CHANGED_PAGE, 0);
    body.writeUInt32LE(nextIndex, 1);
    body.writeUInt32LE(expiresAt, 5);
    return Buffer.concat([body, this.#mac(body, scopeParts(scope))]).toString('base64');
  }

  /**
   * The block index a NextToken continues at, if it was answered here for this very listing and has
   * not expired; else 400 `INVALID_PAGE_TOKEN`.
   */
  checkPageToken(token: string, scope: PageScope, nowSeconds: number): number {
    const kind = scope.kind === 'blocks' ? KIND_BLOCKS_PAGE : KIND_CHANGED_PAGE;
    const bytes = this.#verified(token, scopeParts(scope), kind);
    if (bytes?.length !== 9)
      throw invalidToken(
        'INVALID_PAGE_TOKEN',
        'The NextToken is not one this listing answered: list again from the start.',
      );
    if (bytes.readUInt32LE(5) <= nowSeconds)
      throw invalidToken(
        'INVALID_PAGE_TOKEN',
        'The NextToken has expired (they live 60 minutes): list again from the start.',
      );
    return bytes.readUInt32LE(1);
  }

  /** The token's body when its MAC is this key's over `bound` and its kind is `kind`, else undefined. */
  #verified(token: string, bound: readonly string[], kind: number): Buffer | undefined {
    if (token.length > MAX_TOKEN_LENGTH || !TOKEN_PATTERN.test(token)) return undefined;
    const bytes = Buffer.from(token, 'base64');
    if (bytes.length <= MAC_BYTES || bytes[0] !== kind) return undefined;
    const body = bytes.subarray(0, bytes.length - MAC_BYTES);
    const mac = bytes.subarray(bytes.length - MAC_BYTES);
    return timingSafeEqual(mac, this.#mac(body, bound)) ? body : undefined;
  }

  #mac(body: Buffer, bound: readonly string[]): Buffer {
    const hmac = createHmac('sha256', this.#key);
    hmac.update('volsnap ebs token v1\0');
    for (const part of bound) hmac.update(`${part}\0`);
    return hmac.update(body).digest();
  }
}

function scopeParts(scope: PageScope): string[] {
  return scope.kind === 'blocks'
    ? ['blocks', scope.snapshotId]
    : ['changed', scope.firstSnapshotId ?? '', scope.secondSnapshotId];
}

function invalidToken(reason: 'INVALID_BLOCK_TOKEN' | 'INVALID_PAGE_TOKEN', message: string): VolsnapError {
  return new VolsnapError('request.invalid', message, { details: { reason } });
}
