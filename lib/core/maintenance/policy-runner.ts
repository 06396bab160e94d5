import type { Caller } from '../identity/identity.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import type { SnapshotService } from '../snapshots/snapshot-service.ts';
import { isHeld, type Snapshot, type SnapshotRepository } from '../snapshots/snapshots.ts';
import { systemCaller } from '../tasks/parts.ts';
import { lineageVolumeId, type SnapshotCopier } from '../tasks/snapshot-copy.ts';
import type { Volume, VolumeRepository } from '../volumes/volumes.ts';
import {
  nextRunAfter,
  POLICY_TAG,
  type Policy,
  type PolicyRepository,
  type PolicyRetention,
  type PolicyRunReport,
} from './policies.ts';
import { pages } from './work.ts';

/** A region as the policy runner uses it: where snapshots and copies are made and kept. */
export interface PolicyRegion {
  snapshots: SnapshotRepository;
  service: SnapshotService;
  /** Copies into this region (for copy rules pointing at it). */
  copier: SnapshotCopier;
}

export interface PolicyRunnerOptions {
  policies: PolicyRepository;
  volumes: VolumeRepository;
  clock: Clock;
  region: string;
  /** This region, or another one by name (`region.unknown` for one the registry does not know). */
  regionOf: (region: string) => PolicyRegion;
}

export interface PolicyRunSummary {
  /** Policies run, each with what it did. */
  runs: { policyId: string; accountId: string; report: PolicyRunReport }[];
}

/**
 * Runs snapshot policies, as AWS Data Lifecycle Manager does: for each policy due (or every enabled
 * one, on demand), snapshot every volume of its account carrying its target tags, apply retention,
 * copy new snapshots to the regions of its copy rules and apply their retention there. A run is
 * claimed with a conditional write on the policy's next run time, so two overlapping runners never
 * run the same policy twice; within a run, every step is idempotent (client tokens for creations
 * and copies, conditional transitions for deletions).
 */
export class PolicyRunner {
  constructor(private readonly o: PolicyRunnerOptions) {}

  async run(options: { force?: boolean; policyId?: string } = {}): Promise<PolicyRunSummary> {
    const nowMs = this.o.clock.now();
    const now = isoTime(nowMs);
    const candidates = options.policyId
      ? [await this.o.policies.get(options.policyId)].filter((p): p is Policy => p?.enabled === true)
      : options.force
        ? await this.o.policies.listEnabled()
        : await this.o.policies.listDue(now);
    const runs: PolicyRunSummary['runs'] = [];
    for (const policy of candidates) {
      const next = isoTime(nextRunAfter(policy.schedule, nowMs));
      const claimed = await this.o.policies.claimRun(
        policy.policyId,
        policy.nextRunAt,
        next,
        now,
        policy.lastRunAt ?? null,
      );
      if (!claimed) continue;
      const report = await this.#runPolicy(policy, nowMs);
      await this.o.policies.recordRun(policy.policyId, report);
      runs.push({ policyId: policy.policyId, accountId: policy.accountId, report });
    }
    return { runs };
  }

  async #runPolicy(policy: Policy, nowMs: number): Promise<PolicyRunReport> {
    const report: PolicyRunReport = {
      at: isoTime(nowMs),
      created: [],
      deleted: [],
      copied: [],
      skipped: [],
      errors: [],
    };
    const caller = { ...systemCaller(policy.accountId), userName: `policy:${policy.policyId}` };
    const home = this.o.regionOf(this.o.region);
    const volumes: Volume[] = [];
    for await (const volume of pages((page) =>
      this.o.volumes.list(policy.accountId, { tags: policy.targetTags }, page),
    ))
      volumes.push(volume);
    const tags = { [POLICY_TAG]: policy.policyId };
    for (const volume of volumes) {
      await step(report, `snapshot of ${volume.volumeId}`, async () => {
        const snapshot = await home.service.createScheduled(
          caller,
          volume,
          {
            name: `${policy.name} ${report.at}`,
            description: `Taken by policy ${policy.name} (${policy.policyId}).`,
            tags,
            // One snapshot per volume per run, even if a run is retried.
            clientToken: `${policy.policyId}:${volume.volumeId}:${nowMs}`,
          },
          policy.agentTimeoutMs,
        );
        report.created.push(snapshot.snapshotId);
      });
      const kept = await step(report, `retention of ${volume.volumeId}`, () =>
        this.#retain(home, caller, policy.retention, volume.volumeId, policy.policyId, nowMs, report),
      );
      for (const rule of policy.copyRules) {
        await step(report, `copy of ${volume.volumeId} to ${rule.region}`, async () => {
          const target = this.o.regionOf(rule.region);
          const lineage = lineageVolumeId(policy.accountId, this.o.region, volume.volumeId);
          const copies = await this.#policySnapshots(
            target.snapshots,
            policy.accountId,
            lineage,
            policy.policyId,
          );
          const copied = new Set(copies.map((c) => c.copiedFrom?.snapshotId));
          // Every kept snapshot newer than the newest one copied: a missed run is caught up.
          const newestCopied = (kept ?? []).findIndex((s) => copied.has(s.snapshotId));
          const toCopy = (kept ?? [])
            .slice(0, newestCopied === -1 ? undefined : newestCopied)
            .filter((s) => s.state === 'completed')
            .reverse();
          for (const source of toCopy) {
            const copy = await target.copier.start(caller, {
              sourceRegion: this.o.region,
              sourceSnapshotId: source.snapshotId,
              name: source.name,
              description: `Copied by policy ${policy.name} (${policy.policyId}) from ${this.o.region}.`,
              tags,
              clientToken: `${policy.policyId}:copy:${source.snapshotId}`,
            });
            report.copied.push(copy.snapshotId);
          }
          await this.#retain(target, caller, rule.retention, lineage, policy.policyId, nowMs, report);
        });
      }
    }
    return report;
  }

  /**
   * Applies retention to a policy's snapshots of one volume; returns those it keeps, newest first.
   * Only completed snapshots count: `keep N` keeps the newest N, `keep-for` those younger than it and
   * always the newest one (age alone never leaves a volume without a good snapshot while newer work
   * has not completed). Kept too: queued and pending ones, the parent of any snapshot of the volume
   * being written (its blocks are that one's), and the newest failed one while nothing newer
   * completed (for its reason to be read; it counts for nothing). The rest goes: completed ones to
   * the recycle bin (the account's setting), except those shared, public or held by a copy or export;
   * failed ones for good.
   */
  async #retain(
    region: PolicyRegion,
    caller: Caller,
    retention: PolicyRetention,
    volumeId: string,
    policyId: string,
    nowMs: number,
    report: PolicyRunReport,
  ): Promise<Snapshot[]> {
    const ofVolume = await this.#liveSnapshots(region.snapshots, caller.accountId, volumeId);
    const all = ofVolume.filter((s) => s.tags[POLICY_TAG] === policyId);
    const now = isoTime(nowMs);
    // Work in progress (the policy's or anyone's) is written against its parent's blocks.
    const childOf = new Map<string, string>();
    for (const s of ofVolume)
      if ((s.state === 'queued' || s.state === 'pending') && s.parentSnapshotId)
        childOf.set(s.parentSnapshotId, s.snapshotId);
    const completed = all.filter((s) => s.state === 'completed');
    const cutoff = isoTime(nowMs - ('keepForMs' in retention ? retention.keepForMs : 0));
    const retained = new Set(
      ('keep' in retention
        ? completed.slice(0, retention.keep)
        : completed.filter((s, i) => i === 0 || s.createdAt > cutoff)
      ).map((s) => s.snapshotId),
    );
    const newestFailed = all.find((s) => s.state === 'error');
    const kept: Snapshot[] = [];
    for (const snapshot of all) {
      if (snapshot.state === 'queued' || snapshot.state === 'pending' || retained.has(snapshot.snapshotId)) {
        kept.push(snapshot);
        continue;
      }
      if (snapshot.state === 'error') {
        const superseded = completed[0] !== undefined && completed[0].createdAt >= snapshot.createdAt;
        if (snapshot === newestFailed && !superseded) continue;
      } else if (snapshot.state === 'completed') {
        const child = childOf.get(snapshot.snapshotId);
        if (child) {
          report.skipped.push(
            `${snapshot.snapshotId}: ${child} is being written against it, so retention keeps it until that completes`,
          );
          kept.push(snapshot);
          continue;
        }
        if (snapshot.public || (snapshot.sharedWith?.length ?? 0) > 0) {
          report.skipped.push(`${snapshot.snapshotId}: shared, so retention keeps it`);
          continue;
        }
        if (isHeld(snapshot, now)) {
          report.skipped.push(
            `${snapshot.snapshotId}: being copied or exported, so retention keeps it for now`,
          );
          continue;
        }
      } else continue;
      try {
        await region.service.delete(caller, snapshot.snapshotId);
        report.deleted.push(snapshot.snapshotId);
      } catch (error) {
        if (!(error instanceof VolsnapError && error.code === 'snapshot.invalidState')) throw error;
      }
    }
    return kept;
  }

  /** A policy's snapshots of a volume in a region (not those in the recycle bin), newest first. */
  async #policySnapshots(
    snapshots: SnapshotRepository,
    accountId: string,
    volumeId: string,
    policyId: string,
  ): Promise<Snapshot[]> {
    return (await this.#liveSnapshots(snapshots, accountId, volumeId)).filter(
      (s) => s.tags[POLICY_TAG] === policyId,
    );
  }

  /** Every snapshot of a volume in a region (not those in the recycle bin), newest first. */
  async #liveSnapshots(
    snapshots: SnapshotRepository,
    accountId: string,
    volumeId: string,
  ): Promise<Snapshot[]> {
    const found: Snapshot[] = [];
    for await (const snapshot of pages((page) => snapshots.list(accountId, { volumeId }, page)))
      if (snapshot.state !== 'recycled' && snapshot.state !== 'deleting') found.push(snapshot);
    return found;
  }
}

/** Runs one step of a policy; a failure is reported and the run goes on with the next step. */
async function step<T>(
  report: PolicyRunReport,
  what: string,
  work: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await work();
  } catch (error) {
    report.errors.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}
