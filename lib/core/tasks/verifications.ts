import { decodeManifest, type Manifest, type ManifestEntry } from '../format/manifest.ts';
import { type Caller, requirePermission } from '../identity/identity.ts';
import type { AuditLog } from '../ports/audit.ts';
import type { Compressor } from '../ports/codec.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import type { WorkQueue } from '../ports/queue.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import { DEFAULT_LEASE_MS, type SnapshotService, SYSTEM_KEY_ID } from '../snapshots/snapshot-service.ts';
import { inspectSegment } from '../snapshots/snapshot-verify.ts';
import type { Snapshot, SnapshotIntegrity, SnapshotRepository } from '../snapshots/snapshots.ts';
import { type PartKind, type PartOutcome, PartRunner, type PartTally } from './part-runner.ts';
import { partKey } from './parts.ts';
import {
  type BadBlock,
  MAX_REPORTED_BAD_BLOCKS,
  type Verification,
  type VerificationRepository,
  type VerificationResult,
} from './verification-records.ts';

export type {
  BadBlock,
  Verification,
  VerificationRepository,
  VerificationResult,
  VerificationState,
} from './verification-records.ts';

export interface VerificationServiceOptions {
  verifications: VerificationRepository;
  snapshots: Pick<SnapshotRepository, 'get' | 'transition'>;
  service: Pick<SnapshotService, 'get'>;
  objects: ObjectStore;
  queue: WorkQueue;
  clock: Clock;
  compressor: Compressor;
  region: string;
  audit: AuditLog;
  /** Segments one worker reads per part (16 MiB each at most: 64 is about 1 GiB). */
  segmentsPerPart?: number;
  /** The workers' lease; the snapshots' by default. */
  leaseMs?: number;
}

/** A pending verification not done in this time is failed by the reaper. */
const VERIFICATION_TIMEOUT_MS = 6 * 3600 * 1000;
/** Segments a worker reads between two extensions of the lease (at most 256 MiB: seconds). */
const SEGMENTS_PER_RENEWAL = 16;
/** Bad blocks the snapshot's own `integrity` names (the verification names more). */
const INTEGRITY_BAD_BLOCKS = 10;

/**
 * Verification of stored snapshots, the way restic's `check --read-data` does it: workers read
 * every segment a completed snapshot's manifest names, in parts, and check each block with the one
 * checker completion uses ({@link inspectSegment}): stored at the recorded size, its index sound,
 * each block decoding to its SHA-256. Read-only on the data: doing a part again is harmless. The
 * outcome is recorded on the verification and marked on the snapshot (`integrity`), with an audit
 * entry in the owner's trail.
 */
export class VerificationService {
  readonly #o: Required<VerificationServiceOptions>;
  readonly #runner: PartRunner<Verification>;

  constructor(options: VerificationServiceOptions) {
    this.#o = { segmentsPerPart: 64, leaseMs: DEFAULT_LEASE_MS, ...options };
    this.#runner = new PartRunner(this.#kind());
  }

  /**
   * Starts verifying a completed snapshot of the caller's account (others' answer 404 if the
   * caller cannot see them, 403 if shared with it: only the owner marks a snapshot).
   */
  async start(caller: Caller, snapshotId: string): Promise<Verification> {
    requirePermission(caller, 'snapshot:create');
    const snapshot = await this.#o.service.get(caller, snapshotId);
    if (snapshot.accountId !== caller.accountId) {
      throw new VolsnapError(
        'auth.forbidden',
        `Snapshot ${snapshotId} belongs to another account: only its owner can verify it.`,
        { details: { snapshotId } },
      );
    }
    return this.begin(snapshot, 'request');
  }

  /** Starts verifying a completed snapshot (for its owner, or the scrub); its parts are queued. */
  async begin(snapshot: Snapshot, origin: Verification['origin']): Promise<Verification> {
    if (snapshot.state !== 'completed') {
      throw new VolsnapError(
        'snapshot.invalidState',
        `Snapshot ${snapshot.snapshotId} is ${snapshot.state}; only completed snapshots are verified.`,
        { details: { snapshotId: snapshot.snapshotId, state: snapshot.state } },
      );
    }
    const manifest = await this.#manifest(snapshot.snapshotId);
    const now = this.#o.clock.now();
    const record: Verification = {
      verificationId: newId('verification'),
      snapshotId: snapshot.snapshotId,
      accountId: snapshot.accountId,
      region: this.#o.region,
      state: 'pending',
      progress: 0,
      origin,
      parts: Math.max(1, Math.ceil(manifest.segments.size / this.#o.segmentsPerPart)),
      segmentsPerPart: this.#o.segmentsPerPart,
      totalBytes: [...manifest.segments.values()].reduce((sum, size) => sum + size, 0),
      createdAt: isoTime(now),
      deadline: isoTime(now + VERIFICATION_TIMEOUT_MS),
      leaseUntil: isoTime(now + this.#o.leaseMs),
      leaseParts: 0,
      dispatches: 0,
    };
    await this.#o.verifications.create(record);
    // A message lost here is sent again by the reaper when the lease lapses.
    for (let part = 0; part < record.parts; part++)
      await this.#o.queue.send({ kind: 'verification.part', verificationId: record.verificationId, part });
    return record;
  }

  /** The caller's verification, or `verification.notFound` (also another account's). */
  async get(caller: Caller, verificationId: string): Promise<Verification> {
    const found = isId('verification', verificationId)
      ? await this.#o.verifications.get(verificationId)
      : undefined;
    if (!found || found.accountId !== caller.accountId) {
      throw new VolsnapError(
        'verification.notFound',
        `No verification ${verificationId} in this account and region.`,
        { details: { verificationId } },
      );
    }
    return found;
  }

  /** Reads part `part` of a verification; the worker finishing the last part records the outcome. */
  runPart(verificationId: string, part: number): Promise<PartOutcome> {
    return this.#runner.runPart(verificationId, part);
  }

  /** Fails a pending verification for good (the reaper's, past its deadline or attempts). Idempotent. */
  async fail(record: Verification, reason: string): Promise<boolean> {
    await this.#kind().fail(record, reason);
    return (await this.#o.verifications.get(record.verificationId))?.state === 'error';
  }

  #kind(): PartKind<Verification> {
    const o = this.#o;
    const renew = (record: Verification) =>
      o.verifications.extendLease(record.verificationId, isoTime(o.clock.now() + o.leaseMs));
    return {
      load: async (id) => {
        const record = await o.verifications.get(id);
        return record?.state === 'pending' ? record : undefined;
      },
      parts: (record) => record.parts,
      isCheckpointed: (record, part) => record.partsDone?.includes(part) ?? false,
      renew,
      check: async (record) => {
        const snapshot = await o.snapshots.get(record.snapshotId);
        if (snapshot?.state !== 'completed' && snapshot?.state !== 'recycled')
          throw new VolsnapError(
            'snapshot.notFound',
            `Snapshot ${record.snapshotId} is gone; nothing to verify.`,
          );
      },
      work: async (record, part) => {
        const result = await this.#readPart(record, part, () => renew(record));
        await o.objects.put(partKey(record.verificationId, part), Buffer.from(JSON.stringify(result)));
        return this.#counted(record, part);
      },
      recount: (record, part) => this.#counted(record, part),
      progress: async (record, progress) => {
        await o.verifications.transition(record.verificationId, ['pending'], 'pending', { progress });
      },
      finish: (record) => this.#finish(record),
      fail: async (record, reason) => {
        const failed = await o.verifications.transition(record.verificationId, ['pending'], 'error', {
          stateReason: reason,
          completedAt: isoTime(o.clock.now()),
          leaseUntil: undefined,
        });
        if (failed) await this.#deleteParts(record);
      },
    };
  }

  async #counted(record: Verification, part: number): Promise<PartTally | undefined> {
    const done = await this.#o.verifications.completePart(record.verificationId, part);
    return done === undefined ? undefined : { done };
  }

  /** Reads the part's segments and checks their blocks. Memory: the manifest and one 16 MiB run. */
  async #readPart(
    record: Verification,
    part: number,
    renew: () => Promise<void>,
  ): Promise<VerificationResult> {
    const manifest = await this.#manifest(record.snapshotId);
    const segments = [...manifest.segments].slice(
      part * record.segmentsPerPart,
      (part + 1) * record.segmentsPerPart,
    );
    const entries = entriesBySegment(manifest, new Set(segments.map(([id]) => id)));
    const result: VerificationResult = { segments: 0, blocks: 0, bytes: 0, badBlockCount: 0, badBlocks: [] };
    for (const [segmentId, size] of segments) {
      const mine = entries.get(segmentId) ?? [];
      const bad = await this.#checkSegment(record.accountId, segmentId, size, mine);
      result.segments++;
      result.blocks += mine.length;
      result.bytes += size;
      result.badBlockCount += bad.length;
      for (const block of bad)
        if (result.badBlocks.length < MAX_REPORTED_BAD_BLOCKS)
          result.badBlocks.push({ ...block, volumeOffset: block.blockIndex * manifest.blockSize });
      if (result.segments % SEGMENTS_PER_RENEWAL === 0) await renew();
    }
    return result;
  }

  /** The bad blocks of one segment: all of them when it is missing or not at its recorded size. */
  async #checkSegment(
    accountId: string,
    segmentId: string,
    size: number,
    entries: readonly ManifestEntry[],
  ): Promise<Omit<BadBlock, 'volumeOffset'>[]> {
    const segmentKey = ObjectLayout.segment(accountId, segmentId);
    const head = await this.#o.objects.head(segmentKey);
    if (!head || head.size !== size) {
      const reason = head
        ? `segment unreadable: stored ${head.size} bytes, the manifest records ${size}`
        : 'segment missing';
      return entries.map((entry) => ({
        blockIndex: entry.blockIndex,
        segmentId,
        segmentKey,
        offset: entry.offset,
        problem: head ? 'unreadable' : 'missing',
        expected: entry.hash.toString('hex'),
        reason,
      }));
    }
    const findings = await inspectSegment(
      this.#o.objects,
      this.#o.compressor,
      { accountId, segmentId, size },
      entries,
    );
    return findings.map(({ message, ...finding }) => ({ ...finding, segmentKey, reason: message }));
  }

  /** Joins the parts' results, records the outcome, marks the snapshot, writes the audit entry. */
  async #finish(record: Verification): Promise<void> {
    const o = this.#o;
    const result: VerificationResult = { segments: 0, blocks: 0, bytes: 0, badBlockCount: 0, badBlocks: [] };
    for (let part = 0; part < record.parts; part++) {
      const bytes = await o.objects.get(partKey(record.verificationId, part));
      if (!bytes)
        throw new Error(`part ${part} of ${record.verificationId} is marked done but its report is missing`);
      const partial = JSON.parse(Buffer.from(bytes).toString('utf8')) as VerificationResult;
      result.segments += partial.segments;
      result.blocks += partial.blocks;
      result.bytes += partial.bytes;
      result.badBlockCount += partial.badBlockCount;
      result.badBlocks.push(...partial.badBlocks.slice(0, MAX_REPORTED_BAD_BLOCKS - result.badBlocks.length));
    }
    const checkedAt = isoTime(o.clock.now());
    const done = await o.verifications.transition(record.verificationId, ['pending'], 'completed', {
      progress: 100,
      completedAt: checkedAt,
      result,
      leaseUntil: undefined,
    });
    if (done) await this.#mark(record, result, checkedAt);
    await this.#deleteParts(record);
  }

  /** The snapshot's `integrity` and the owner's audit entry (a snapshot gone meanwhile is not marked). */
  async #mark(record: Verification, result: VerificationResult, checkedAt: string): Promise<void> {
    const integrity: SnapshotIntegrity = {
      state: result.badBlockCount > 0 ? 'damaged' : 'ok',
      checkedAt,
      verificationId: record.verificationId,
      badBlockCount: result.badBlockCount,
      badBlocks: result.badBlocks
        .slice(0, INTEGRITY_BAD_BLOCKS)
        .map(({ blockIndex, segmentId, problem }) => ({ blockIndex, segmentId, problem })),
    };
    const snapshot = await this.#o.snapshots.get(record.snapshotId);
    if (snapshot?.state === 'completed' || snapshot?.state === 'recycled')
      await this.#o.snapshots.transition(record.snapshotId, [snapshot.state], snapshot.state, { integrity });
    await this.#o.audit.record({
      eventId: `${record.verificationId}#done`,
      at: checkedAt,
      accountId: record.accountId,
      userName: record.origin === 'scrub' ? 'volsnap-scrub' : 'volsnap-worker',
      keyId: SYSTEM_KEY_ID,
      action: integrity.state === 'ok' ? 'snapshot.verified' : 'snapshot.damaged',
      target: { snapshotId: record.snapshotId, verificationId: record.verificationId },
      requestId: record.verificationId,
      status: 200,
    });
  }

  async #deleteParts(record: Verification): Promise<void> {
    for (let part = 0; part < record.parts; part++)
      await this.#o.objects.delete(partKey(record.verificationId, part));
  }

  async #manifest(snapshotId: string): Promise<Manifest> {
    const bytes = await this.#o.objects.get(ObjectLayout.manifest(snapshotId));
    if (!bytes) {
      throw new VolsnapError(
        'data.corrupt',
        `The manifest of snapshot ${snapshotId} is not stored: its blocks cannot be found.`,
        { details: { snapshotId } },
      );
    }
    return decodeManifest(bytes);
  }
}

function entriesBySegment(manifest: Manifest, wanted: ReadonlySet<string>): Map<string, ManifestEntry[]> {
  const entries = new Map<string, ManifestEntry[]>();
  for (const entry of manifest.entries) {
    if (!wanted.has(entry.segmentId)) continue;
    const list = entries.get(entry.segmentId);
    if (list) list.push(entry);
    else entries.set(entry.segmentId, [entry]);
  }
  return entries;
}
