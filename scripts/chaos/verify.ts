// What must hold once the chaos is over: nothing pending, every completed snapshot whole, no orphan
// segment after GC, and every command's exit code the truth about what the server did.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { localResourceNames } from '../../infra/resources.ts';
import { decodeManifest } from '../../lib/core/format/manifest.ts';
import { lastLine } from './run-cli.ts';
import type { Workload } from './workload.ts';

interface Listed {
  snapshotId: string;
  name?: string;
  state: string;
  stateReason?: string;
}

interface ListedExport {
  exportId: string;
  key: string;
  state: string;
  stateReason?: string;
}

export interface Verdict {
  /** Work still pending once the settle time was over. */
  pending: string[];
  /** Commands whose exit code says otherwise than the server's final state. */
  misreported: string[];
  /** Completed snapshots that did not restore to the bytes they were made of. */
  corrupt: string[];
  /** Segment objects no live snapshot references, after GC. */
  orphans: string[];
  /** Completed snapshots restored and compared. */
  restored: number;
  /** Snapshots and exports in `error` (failed cleanly: not a finding by itself). */
  failedCleanly: string[];
}

/** Snapshot list and export list of the demo account in `region`, read until they answer. */
async function listings(w: Workload, region: string) {
  const read = async <T>(args: string[]): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      const run = await w.cli('demo', region, args, 120_000);
      if (run.code === 0) return JSON.parse(run.stdout) as T;
      if (attempt >= 5) throw new Error(`volsnap ${args.join(' ')} failed: ${lastLine(run.stderr)}`);
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  };
  return {
    snapshots: await read<Listed[]>(['snapshot', 'list']),
    exports: await read<ListedExport[]>(['export', 'list']),
  };
}

/** Waits (polling every 10 s, at most `settleMs`) until no snapshot or export of demo is pending. */
export async function settle(
  w: Workload,
  regions: readonly string[],
  settleMs: number,
  log: (l: string) => void,
) {
  const started = Date.now();
  for (;;) {
    const pending: string[] = [];
    for (const region of regions) {
      const { snapshots, exports } = await listings(w, region);
      for (const s of snapshots)
        if (s.state === 'pending' || s.state === 'queued')
          pending.push(`${region} ${s.snapshotId} (${s.name ?? ''}) ${s.state}`);
      for (const e of exports)
        if (e.state === 'pending') pending.push(`${region} ${e.exportId} (${e.key}) pending`);
    }
    if (pending.length === 0 || Date.now() - started > settleMs) {
      log(
        `chaos: settled in ${((Date.now() - started) / 1000).toFixed(0)} s, ${pending.length} still pending`,
      );
      return pending;
    }
    await new Promise((resolve) => setTimeout(resolve, 10_000));
  }
}

/** The reaper, then GC with no grace period, in every region (each sent until it answers). */
export async function collect(w: Workload, regions: readonly string[]): Promise<void> {
  for (const job of [['reaper'], ['gc', '--grace', '0s']])
    for (const region of regions)
      for (let attempt = 1; ; attempt++) {
        const run = await w.cli('operator', region, ['admin', 'run', ...job], 180_000);
        if (run.code === 0) break;
        if (attempt >= 5) throw new Error(`admin run ${job[0]} in ${region} failed: ${lastLine(run.stderr)}`);
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
}

/** Compares each command's exit code with what the server holds for its name now. */
function misreports(w: Workload, state: Map<string, Listed | ListedExport>): string[] {
  const found: string[] = [];
  for (const op of w.operations) {
    if (op.kind === 'restore' || op.kind === 'gc') continue;
    const server = state.get(`${op.region}/${op.name}`);
    const completed = server?.state === 'completed';
    if (op.code === null)
      found.push(
        `${op.kind} ${op.name}: the CLI hung (killed after its timeout); server: ${server?.state ?? 'nothing'}`,
      );
    else if (op.code === 0 && !completed)
      found.push(`${op.kind} ${op.name}: the CLI exited 0, the server says ${server?.state ?? 'nothing'}`);
    else if (op.code !== 0 && completed)
      found.push(`${op.kind} ${op.name}: the CLI exited ${op.code} (${op.error}), yet it completed`);
  }
  return found;
}

/** Segments on disk in `region`'s bucket that no live snapshot's manifest references. */
function orphansIn(dataDir: string, region: string, live: string[]): string[] {
  const bucket = join(dataDir, region, 's3', localResourceNames(region).bucket);
  const referenced = new Set<string>();
  for (const id of live) {
    const file = join(bucket, 'manifests', `${id}._S3rver_object`);
    if (!existsSync(file)) continue;
    for (const segment of decodeManifest(readFileSync(file)).segments.keys()) referenced.add(segment);
  }
  const orphans: string[] = [];
  const segments = join(bucket, 'segments');
  if (!existsSync(segments)) return orphans;
  for (const account of readdirSync(segments))
    for (const file of readdirSync(join(segments, account)))
      if (file.endsWith('._S3rver_object')) {
        const id = file.slice(0, -'._S3rver_object'.length);
        if (!referenced.has(id)) orphans.push(`${region} segments/${account}/${id}`);
      }
  return orphans;
}

/** Restores `id` (retrying what the faults break) and compares its digest; undefined when it never restored. */
async function restoredDigest(
  w: Workload,
  region: string,
  id: string,
  to: string,
): Promise<string | undefined> {
  for (let attempt = 1; attempt <= 4; attempt++) {
    const run = await w.cli('demo', region, ['snapshot', 'restore', id, '--to', to, '--force'], 300_000);
    if (run.code === 0) {
      const digest = createHash('sha256').update(readFileSync(to)).digest('hex');
      rmSync(to, { force: true });
      return digest;
    }
  }
  return undefined;
}

/** Everything the chaos run must leave true (see {@link Verdict}); the cloud must be quiet by now. */
export async function verify(
  w: Workload,
  options: { regions: readonly string[]; dataDir: string; workDir: string; pending: string[] },
): Promise<Verdict> {
  const verdict: Verdict = {
    pending: options.pending,
    misreported: [],
    corrupt: [],
    orphans: [],
    restored: 0,
    failedCleanly: [],
  };
  const state = new Map<string, Listed | ListedExport>();
  for (const region of options.regions) {
    const { snapshots, exports } = await listings(w, region);
    for (const s of snapshots) {
      if (s.name) state.set(`${region}/${s.name}`, s);
      if (s.state === 'error')
        verdict.failedCleanly.push(`${region} ${s.snapshotId} (${s.name}): ${s.stateReason ?? ''}`);
    }
    for (const e of exports) {
      // exports/{account}/{prefix}{exportId}.{format}: the workload's prefix names the command.
      const prefix = /chaos-export-\d+\//.exec(e.key)?.[0];
      if (prefix) state.set(`${region}/${prefix}`, e);
      if (e.state === 'error')
        verdict.failedCleanly.push(`${region} ${e.exportId} (${e.key}): ${e.stateReason ?? ''}`);
    }
    const live = snapshots.filter((s) => s.state === 'completed');
    verdict.orphans.push(
      ...orphansIn(
        options.dataDir,
        region,
        live.map((s) => s.snapshotId),
      ),
    );
    for (const s of live) {
      const expected = s.name ? w.expected.get(`${region}/${s.name}`) : undefined;
      if (!expected) continue;
      const digest = await restoredDigest(
        w,
        region,
        s.snapshotId,
        join(options.workDir, `verify-${s.snapshotId}.img`),
      );
      verdict.restored++;
      if (digest !== expected.digest)
        verdict.corrupt.push(
          `${region} ${s.snapshotId} (${s.name}): ${digest ? 'restored other bytes' : 'never restored'}`,
        );
    }
  }
  verdict.misreported = misreports(w, state);
  return verdict;
}
