import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_TOKEN_LENGTH, TokenSigner } from '../../../../lib/core/direct/tokens.ts';

const place = {
  hash: randomBytes(32),
  segmentId: `seg-${'x'.repeat(20)}`,
  offset: 16 * 1024 * 1024,
  storedLength: 524288,
  encoding: 1,
};

describe('TokenSigner', () => {
  it('makes block tokens within the EBS pattern and length that carry the block’s place back', () => {
    const signer = new TokenSigner(randomBytes(32));
    const token = signer.blockToken('snap-0123456789abcdef', 134217727, place, 2_000_000_000);
    expect(token).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(token.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
    expect(signer.checkBlockToken(token, 'snap-0123456789abcdef', 134217727, 1_999_999_999)).toEqual({
      ...place,
      expiresAt: 2_000_000_000,
    });
  });

  it('refuses a token whose carried place was changed: encoding, offset, stored length, segment id, or expiry', () => {
    const signer = new TokenSigner(randomBytes(32));
    const token = Buffer.from(signer.blockToken('snap-1', 7, place, 2_000_000_000), 'base64');
    // The body's layout: kind(1) expiry(4) sha256(32) encoding(1) offset(4) length(4) idLength(1) id.
    const fields = {
      expiry: 1,
      encoding: 37,
      offset: 38,
      storedLength: 42,
      segmentIdLength: 46,
      segmentId: 50,
    };
    for (const [field, at] of Object.entries(fields)) {
      const forged = Buffer.from(token);
      forged[at] = (forged[at] ?? 0) ^ 1;
      expect(
        () => signer.checkBlockToken(forged.toString('base64'), 'snap-1', 7, 0),
        `a token with its ${field} changed`,
      ).toThrow(expect.objectContaining({ details: { reason: 'INVALID_BLOCK_TOKEN' } }));
    }
    // Another segment's id, of the same length, in its place: refused too.
    const elsewhere = Buffer.from(token);
    elsewhere.write('seg-yyyyyyyyyyyyyyyyyyyy', 47, 'ascii');
    expect(() => signer.checkBlockToken(elsewhere.toString('base64'), 'snap-1', 7, 0)).toThrow(
      expect.objectContaining({ details: { reason: 'INVALID_BLOCK_TOKEN' } }),
    );
  });

  it('refuses a token signed under another key, and a key shorter than 32 bytes', () => {
    const token = new TokenSigner(randomBytes(32)).blockToken('snap-1', 0, place, 2_000_000_000);
    expect(() => new TokenSigner(randomBytes(32)).checkBlockToken(token, 'snap-1', 0, 0)).toThrow(
      expect.objectContaining({ code: 'request.invalid', details: { reason: 'INVALID_BLOCK_TOKEN' } }),
    );
    expect(() => new TokenSigner(randomBytes(16))).toThrow(/at least 32 bytes/);
  });

  it('binds page tokens to their listing: the kind, and both snapshots of a comparison', () => {
    const signer = new TokenSigner(randomBytes(32));
    const token = signer.pageToken(
      { kind: 'changed', firstSnapshotId: 'snap-a', secondSnapshotId: 'snap-b' },
      42,
      100,
    );
    expect(
      signer.checkPageToken(
        token,
        { kind: 'changed', firstSnapshotId: 'snap-a', secondSnapshotId: 'snap-b' },
        99,
      ),
    ).toBe(42);
    for (const scope of [
      { kind: 'changed' as const, secondSnapshotId: 'snap-b' },
      { kind: 'changed' as const, firstSnapshotId: 'snap-b', secondSnapshotId: 'snap-a' },
      { kind: 'blocks' as const, snapshotId: 'snap-b' },
    ])
      expect(() => signer.checkPageToken(token, scope, 99)).toThrow(
        expect.objectContaining({ details: { reason: 'INVALID_PAGE_TOKEN' } }),
      );
    expect(() =>
      signer.checkPageToken(
        token,
        { kind: 'changed', firstSnapshotId: 'snap-a', secondSnapshotId: 'snap-b' },
        100,
      ),
    ).toThrow(/expired/);
  });
});
