import type { Manifest, ManifestEntry } from '../format/manifest.ts';
import { decodeManifest } from '../format/manifest.ts';
import type { Caller } from '../identity/identity.ts';
import { ObjectLayout } from '../ports/objects.ts';
import { isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId } from '../shared/ids.ts';
import { type SegmentCheck, SegmentChecks } from './segment-checks.ts';
import { requirePending, type SnapshotAccess, SYSTEM_KEY_ID, systemOf } from './snapshot-access.ts';
import {
  checkInherited,
  entriesAgainstIndex,
  type Rejection,
  retireSession,
  verifySegment,
} from './snapshot-verify.ts';
import { LIVE_MANIFEST_STATES, type Snapshot, type SnapshotStats } from './snapshots.ts';

/**
 * Completing a snapshot: the staged manifest checked against its volume, its session and its
 * parent, every new block verified (in the request, or by workers in parts), then `completed`.
 */
export class SnapshotCompletion {
  readonly #a: SnapshotAccess;
  readonly #checks: SegmentChecks;

  constructor(access: SnapshotAccess) {
    this.#a = access;
    this.#checks = new SegmentChecks(access);
  }

  /**
   * Completes a pending snapshot from the manifest uploaded to `manifestUploadId` (a key issued by
   * {@link uploadUrls}; the service's own workers stage theirs without one). One rule:
   * - the manifest or a segment it names in this upload is not stored yet (or shorter than it
   *   says): 409, the snapshot stays `pending`; upload it and complete again;
   * - anything else wrong (a manifest that does not decode, does not describe this volume, names
   *   segments that are neither this upload's nor its parent's, blocks that are not the parent's
   *   at the place it names, or blocks whose segment index, encoding or SHA-256 disagree with it):
   *   400 `snapshot.manifestInvalid`, the snapshot goes to `error` with the reason, naming the
   *   block and segment; it never becomes a parent.
   * Every new block is read, decoded and hashed before `completed` (not for the service's own
   * workers, which hashed what they wrote): a segment workers checked as it landed (its record's
   * size and ETag still the object's) needs only its entries compared with its recorded index, one
   * written again since is refused; the rest are read here. Up to `inlineVerifyBytes` of segments
   * not checked yet that happens in the request; beyond, the snapshot stays `pending` while workers verify it in parts and the
   * last one completes it (returned pending: the route answers 202). Idempotent: completing a
   * completed snapshot, or one being verified, returns it.
   */
  async complete(
    caller: Caller,
    snapshotId: string,
    options: { manifestUploadId?: string } = {},
  ): Promise<Snapshot> {
    const snapshot = await this.#a.owned(caller, snapshotId, 'snapshot:create', 'write');
    if (snapshot.state === 'completed') return snapshot;
    const trusted = caller.keyId === SYSTEM_KEY_ID;
    // Verification by workers under way (or server-side work that completes by itself).
    if (snapshot.state === 'pending' && snapshot.leaseUntil && !trusted) return snapshot;
    requirePending(snapshot);
    const { manifestUploadId } = options;
    if (manifestUploadId !== undefined && !isId('manifestUpload', manifestUploadId))
      throw unissuedManifest(snapshotId, manifestUploadId);
    // The reads below do not depend on one another: asked together, answered in the order they
    // are judged (the manifest key issued, then the staged manifest, then its segments stored).
    const issued =
      manifestUploadId === undefined
        ? Promise.resolve(true)
        : this.#a.options.snapshots
            .sessionManifestUploads(snapshotId)
            .then((ids) => ids.has(manifestUploadId));
    const loading = this.#loadStaged(snapshot, manifestUploadId, true);
    loading.catch(() => {}); // judged after `issued`
    if (!(await issued)) throw unissuedManifest(snapshotId, manifestUploadId ?? '');
    const staged = await loading;
    if (typeof staged === 'string') return this.#a.failUpload(snapshot, staged);
    const { manifest, session, fresh, parent } = staged;
    // Which segments workers checked as they landed: read beside the HEADs (a few are compared).
    const checkedSoFar =
      fresh.length <= INLINE_VERIFY_SEGMENTS && !trusted
        ? this.#checks.checkedIds(snapshotId)
        : Promise.resolve(new Set<string>());
    checkedSoFar.catch(() => {}); // judged after the HEADs
    const missing = await this.#missingSegments(snapshot.accountId, fresh);
    if (missing.short.length > 0) {
      throw new VolsnapError(
        'snapshot.segmentsMissing',
        `${missing.short.length} segment(s) of the manifest are not stored (or not whole): ${missing.short.slice(0, 5).join(', ')}${missing.short.length > 5 ? ', …' : ''}. Upload them, then complete again.`,
        { details: { segmentIds: missing.short } },
      );
    }
    if (missing.long[0])
      return this.#a.failUpload(
        snapshot,
        `Segment ${missing.long[0]} is stored larger than the ${manifest.segments.get(missing.long[0])} bytes the manifest declares.`,
      );
    const inheritedWrong = parent && checkInherited(manifest, parent, session);
    if (inheritedWrong) return this.#a.failUpload(snapshot, inheritedWrong);
    if (trusted) return this.#finish(caller, snapshot, manifestUploadId, manifest, session);
    // In the request: at most so many bytes to read, and records to compare (each a GET).
    const checked = await checkedSoFar;
    // One completion verifies at a time: the one that claims it (another gets the pending snapshot).
    const claimed = await this.#claimVerification(snapshot, manifestUploadId, fresh.length);
    if (!claimed) return this.#a.visible(caller, snapshotId);
    const bytes = fresh.reduce((sum, [id, size]) => sum + (checked.has(id) ? 0 : size), 0);
    const inline = bytes <= this.#a.options.inlineVerifyBytes && fresh.length <= INLINE_VERIFY_SEGMENTS;
    if (!inline && this.#a.hasQueue) {
      // A message lost here is sent again by the reaper when the lease lapses.
      for (let part = 0; part < (claimed.parts ?? 1); part++)
        await this.#a.options.queue.send({ kind: 'snapshot.verifyPart', snapshotId, part });
      return claimed;
    }
    try {
      const checks = await this.#checks.load(
        snapshotId,
        fresh.filter(([id]) => checked.has(id)).map(([id]) => id),
      );
      const rejected = await this.#verifySegments(snapshot, manifest, fresh, checks, missing.heads);
      if (rejected) return await this.#a.failUpload(snapshot, rejected);
      return await this.#finish(caller, snapshot, manifestUploadId, manifest, session);
    } catch (error) {
      // Storage failed us, not the upload: give the claim back so that completing again works
      // (a no-op once the snapshot left pending).
      await this.#a.options.snapshots.transition(snapshotId, ['pending'], 'pending', {
        leaseUntil: undefined,
        verification: undefined,
        parts: undefined,
      });
      throw error;
    }
  }

  /**
   * Verifies part `part` of a snapshot handed to workers by {@link complete} (a queue message);
   * the worker finishing the last part completes it. A failure puts the snapshot in `error`.
   * Idempotent: a part done twice counts once; a snapshot no longer pending is skipped. Memory:
   * the staged manifest and one segment run (16 MiB).
   */
  async verifyPart(snapshotId: string, part: number): Promise<'part' | 'completed' | 'error' | 'skipped'> {
    const snapshot = await this.#a.options.snapshots.get(snapshotId);
    const verification = snapshot?.verification;
    if (snapshot?.state !== 'pending' || !verification) return 'skipped';
    const parts = snapshot.parts ?? 1;
    if (!Number.isInteger(part) || part < 0 || part >= parts) return 'skipped';
    // The staged manifest is write-once and was checked against the parent by complete().
    const staged = await this.#loadStaged(snapshot, verification.manifestUploadId, false);
    if (typeof staged === 'string') {
      await this.#a.failUpload(snapshot, staged).catch(ignoreInvalid);
      return 'error';
    }
    const { manifest, session, fresh } = staged;
    // A worker is on it (the same lease rule as every kind of part work: see PartKind.renew).
    const renew = () =>
      this.#a.options.snapshots.extendLease(
        snapshotId,
        isoTime(this.#a.options.clock.now() + this.#a.options.leaseMs),
      );
    await renew();
    if (!snapshot.partsDone?.includes(part)) {
      const mine = fresh.slice(
        part * verification.segmentsPerPart,
        (part + 1) * verification.segmentsPerPart,
      );
      const checks = await this.#checks.load(
        snapshotId,
        mine.map(([id]) => id),
      );
      const rejected = await this.#verifySegments(snapshot, manifest, mine, checks);
      if (rejected) {
        await this.#a
          .failUpload(snapshot, `${rejected} (found by verification part ${part + 1} of ${parts})`)
          .catch(ignoreInvalid);
        return 'error';
      }
    }
    const done = await this.#a.options.snapshots.completePart(snapshotId, part);
    if (done === undefined) return 'skipped';
    if (done < parts) {
      await renew();
      await this.#a.options.snapshots.transition(snapshotId, ['pending'], 'pending', {
        progress: Math.floor((95 * done) / parts),
      });
      return 'part';
    }
    try {
      await this.#finish(
        systemOf(snapshot.accountId),
        snapshot,
        verification.manifestUploadId,
        manifest,
        session,
      );
    } catch (error) {
      // The parent went meanwhile: #finish failed the snapshot with the reason.
      ignoreInvalid(error);
      return 'error';
    }
    return 'completed';
  }

  /**
   * The staged manifest, decoded and checked against the snapshot: its volume and, `againstParent`,
   * segments that are this session's or the parent's (whose manifest is returned). A string is why
   * it is invalid; not stored yet is a 409.
   */
  async #loadStaged(
    snapshot: Snapshot,
    manifestUploadId: string | undefined,
    againstParent: boolean,
  ): Promise<
    { manifest: Manifest; session: Set<string>; fresh: [string, number][]; parent?: Manifest } | Rejection
  > {
    const key = manifestUploadId
      ? ObjectLayout.manifestStaging(snapshot.snapshotId, manifestUploadId)
      : ObjectLayout.manifestUpload(snapshot.snapshotId);
    // The session's segments and the parent's manifest are read beside the staged manifest.
    const sessionRead = this.#a.options.snapshots.sessionSegments(snapshot.snapshotId);
    const parentRead =
      againstParent && snapshot.parentSnapshotId
        ? this.#a.parentManifest(snapshot.parentSnapshotId)
        : Promise.resolve(undefined);
    sessionRead.catch(() => {});
    parentRead.catch(() => {});
    const uploaded = await this.#a.options.objects.get(key);
    if (!uploaded || uploaded.length === 0) {
      throw new VolsnapError(
        'snapshot.manifestMissing',
        `Snapshot ${snapshot.snapshotId} has no uploaded manifest${manifestUploadId ? ` at ${manifestUploadId}` : ''}: PUT it to the manifest URL, then complete again.`,
      );
    }
    let manifest: Manifest;
    try {
      manifest = decodeManifest(uploaded);
    } catch (error) {
      // Pure decoding: whatever it throws, the bytes are not a sound manifest.
      return `The manifest is not valid: ${(error as Error).message}`;
    }
    if (manifest.volumeSize !== snapshot.volumeSize)
      return `The manifest describes a volume of ${manifest.volumeSize} bytes; this snapshot's volume has ${snapshot.volumeSize}.`;
    const session = await sessionRead;
    const fresh = [...manifest.segments].filter(([id]) => session.has(id));
    if (!againstParent) return { manifest, session, fresh };
    const parent = await parentRead;
    const foreign = [...manifest.segments.keys()].filter(
      (id) => !session.has(id) && !parent?.segments.has(id),
    );
    if (foreign.length > 0)
      return `The manifest names ${foreign.length} segment(s) that neither this snapshot's upload nor its parent holds: ${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''}.`;
    return { manifest, session, fresh, ...(parent ? { parent } : {}) };
  }

  /**
   * Verifies the manifest's blocks in `segments` (of this session), {@link VERIFY_CONCURRENCY} segments
   * at a time: a segment with a record in `checks` by its recorded index (after a HEAD, unless `heads`
   * has it, shows it unchanged), any other by reading and hashing its blocks. The first rejection in
   * the order of `segments` is returned. Memory: one 16 MiB run per segment being read.
   */
  async #verifySegments(
    snapshot: Snapshot,
    manifest: Manifest,
    segments: readonly [string, number][],
    checks: ReadonlyMap<string, SegmentCheck>,
    heads: ReadonlyMap<string, { size: number; etag?: string }> = new Map(),
  ): Promise<Rejection | undefined> {
    const wanted = new Set(segments.map(([id]) => id));
    const entries = new Map<string, ManifestEntry[]>();
    for (const entry of manifest.entries) {
      if (!wanted.has(entry.segmentId)) continue;
      const list = entries.get(entry.segmentId);
      if (list) list.push(entry);
      else entries.set(entry.segmentId, [entry]);
    }
    const { objects, compressor } = this.#a.options;
    const one = async ([segmentId, size]: [string, number]): Promise<Rejection | undefined> => {
      const mine = entries.get(segmentId) ?? [];
      const check = checks.get(segmentId);
      if (!check) {
        const key = { accountId: snapshot.accountId, segmentId, size };
        return verifySegment(objects, compressor, key, mine);
      }
      const now =
        heads.get(segmentId) ?? (await objects.head(ObjectLayout.segment(snapshot.accountId, segmentId)));
      if (!now || now.size !== check.size || now.etag !== check.etag || check.size !== size)
        return `Segment ${segmentId} was written again after the service checked it (it was ${check.size} bytes with ETag ${check.etag}, it is ${now ? `${now.size} bytes with ETag ${now.etag ?? 'none'}` : 'gone'}): a segment is written once.`;
      return entriesAgainstIndex(mine, check.index, segmentId);
    };
    const results: (Rejection | undefined)[] = [];
    let next = 0;
    let failed = false;
    const runner = async () => {
      while (!failed && next < segments.length) {
        const at = next++;
        const rejected = await one(segments[at] as [string, number]);
        results[at] = rejected;
        if (rejected) failed = true;
      }
    };
    await Promise.all(Array.from({ length: Math.min(VERIFY_CONCURRENCY, segments.length) }, runner));
    return results.find((rejected) => rejected !== undefined);
  }

  /**
   * Claims the verification of an upload for one completion: the lease, the staged manifest and its
   * parts, in one conditional write. A completion that loses (another one is verifying) gets
   * undefined. A claim whose request is lost is finished by workers: the reaper sends its parts.
   */
  async #claimVerification(
    snapshot: Snapshot,
    manifestUploadId: string | undefined,
    segments: number,
  ): Promise<Snapshot | undefined> {
    const now = this.#a.options.clock.now();
    const segmentsPerPart = this.#a.options.verifySegmentsPerPart;
    const claimed = await this.#a.options.snapshots.renewLease(
      snapshot.snapshotId,
      undefined,
      { leaseUntil: isoTime(now + this.#a.options.leaseMs), leaseParts: 0, dispatches: 0 },
      {
        verification: { ...(manifestUploadId ? { manifestUploadId } : {}), segmentsPerPart },
        parts: Math.max(1, Math.ceil(segments / segmentsPerPart)),
        // Verifying gets its own time: the upload's deadline may be near.
        deadline: isoTime(now + this.#a.options.uploadTimeoutMs),
      },
    );
    return claimed ? this.#a.options.snapshots.get(snapshot.snapshotId) : undefined;
  }

  /** The completing transition (with the parent check), then the session's unused keys retired. */
  async #finish(
    caller: Caller,
    snapshot: Snapshot,
    manifestUploadId: string | undefined,
    manifest: Manifest,
    session: Set<string>,
  ): Promise<Snapshot> {
    const snapshotId = snapshot.snapshotId;
    await this.#a.options.objects.copy(
      manifestUploadId
        ? ObjectLayout.manifestStaging(snapshotId, manifestUploadId)
        : ObjectLayout.manifestUpload(snapshotId),
      ObjectLayout.manifest(snapshotId),
    );
    // Inheriting blocks: the parent must still hold them at the instant this completes (a parent
    // being deleted meanwhile fails the child, rather than leaving it naming reclaimable blocks).
    const inheritsFromParent = [...manifest.segments.keys()].some((id) => !session.has(id));
    const completed = await this.#a.options.snapshots.transition(
      snapshotId,
      ['pending'],
      'completed',
      {
        progress: 100,
        completedAt: isoTime(this.#a.options.clock.now()),
        stats: statsOf(manifest, session),
        // What verifying it took is over (a server-side snapshot keeps its parts' record).
        ...(snapshot.verification || caller.keyId !== SYSTEM_KEY_ID
          ? {
              leaseUntil: undefined,
              leaseParts: undefined,
              dispatches: undefined,
              parts: undefined,
              partsDone: undefined,
              verification: undefined,
            }
          : { leaseUntil: undefined }),
      },
      inheritsFromParent && snapshot.parentSnapshotId
        ? { snapshotId: snapshot.parentSnapshotId, states: LIVE_MANIFEST_STATES }
        : undefined,
    );
    if (!completed) {
      const now = await this.#a.visible(caller, snapshotId);
      if (now.state === 'completed') return now;
      if (now.state === 'pending' && inheritsFromParent) {
        return this.#a.failUpload(
          now,
          `Its parent ${snapshot.parentSnapshotId} was deleted while it completed, and with it blocks this snapshot names.`,
        );
      }
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshotId} is ${now.state}; it cannot be completed.`,
      );
    }
    await retireSession(
      this.#a.options.objects,
      this.#a.options.snapshots,
      completed,
      new Set(manifest.segments.keys()),
    );
    return completed;
  }

  /**
   * Segments not stored or stored shorter than the manifest records (not uploaded yet, or torn:
   * `short`), and segments stored longer than it records (`long`: the manifest is wrong).
   */
  async #missingSegments(
    accountId: string,
    segments: [string, number][],
  ): Promise<{ short: string[]; long: string[]; heads: Map<string, { size: number; etag?: string }> }> {
    const short: string[] = [];
    const long: string[] = [];
    const heads = new Map<string, { size: number; etag?: string }>();
    for (let i = 0; i < segments.length; i += 32) {
      const batch = segments.slice(i, i + 32);
      const found = await Promise.all(
        batch.map(([id]) => this.#a.options.objects.head(ObjectLayout.segment(accountId, id))),
      );
      batch.forEach(([id, size], j) => {
        const head = found[j];
        if (head) heads.set(id, head);
        const stored = head?.size;
        if (stored === undefined || stored < size) short.push(id);
        else if (stored > size) long.push(id);
      });
    }
    return { short, long, heads };
  }
}

/**
 * Segments completion reads at once. Each takes one 16 MiB run of memory; with the client's uploads
 * checked as they land, what is left is about the uploads that were in flight last (4 by default).
 */
const VERIFY_CONCURRENCY = 4;
/**
 * The most new segments completion verifies in the request (8 GiB), however many were checked as
 * they landed: each checked one still costs a GET of its record (16 at a time), inside the 29 s.
 */
const INLINE_VERIFY_SEGMENTS = 512;

function unissuedManifest(snapshotId: string, manifestUploadId: string): VolsnapError {
  return new VolsnapError(
    'request.invalid',
    `No manifest upload ${manifestUploadId} was issued for snapshot ${snapshotId}: ask \`upload-urls\` with \`manifest: true\` for one.`,
    { details: { snapshotId, manifestUploadId } },
  );
}

/** A snapshot failed by #fail is what the caller wanted; anything else goes on (and is retried). */
function ignoreInvalid(error: unknown): void {
  if (!(error instanceof VolsnapError && error.code === 'snapshot.manifestInvalid')) throw error;
}

function statsOf(manifest: Manifest, session: Set<string>): SnapshotStats {
  const locations = new Map<string, { bytes: number; fresh: boolean }>();
  let newBlocks = 0;
  for (const entry of manifest.entries) {
    const fresh = session.has(entry.segmentId);
    if (fresh) newBlocks++;
    locations.set(`${entry.segmentId}@${entry.offset}`, { bytes: entry.storedLength, fresh });
  }
  const unique = [...locations.values()];
  return {
    blockCount: manifest.entries.length,
    storedBytes: unique.reduce((sum, l) => sum + l.bytes, 0),
    newBlocks,
    newBytes: unique.filter((l) => l.fresh).reduce((sum, l) => sum + l.bytes, 0),
    reusedBlocks: manifest.entries.length - newBlocks,
    zeroBlocks: manifest.volumeSize / manifest.blockSize - manifest.entries.length,
  };
}
