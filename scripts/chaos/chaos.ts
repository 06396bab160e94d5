// One chaos run against a running local cloud (started with --faults): the workload while the monkey
// kills and stalls processes, then the settle, the reaper and GC, then the verdict.
import { seededRandom } from '../local-cloud/faults.ts';
import { cloudState } from './control.ts';
import { type MonkeyCounts, runMonkey } from './monkey.ts';
import { collect, settle, type Verdict, verify } from './verify.ts';
import { type OperationKind, Workload } from './workload.ts';

export interface ChaosOptions {
  configPath: string;
  dataDir: string;
  stateFile: string;
  cli: readonly string[];
  workDir: string;
  seed: number;
  /** How long new operations are started (and the monkey strikes). */
  workMs: number;
  /** How long pending work may take to finish afterwards (the lease is 3 minutes, the reaper runs every minute). */
  settleMs: number;
  regions?: readonly [string, string];
  workers?: number;
  /** Time between two strikes of the monkey, [min, max] ms. */
  strikeEveryMs?: [number, number];
  log: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  minutes: number;
  operations: Record<OperationKind, { ok: number; failed: number }>;
  monkey: MonkeyCounts;
  /** Restarts the supervisor made, by child. */
  restarts: Record<string, number>;
  verdict: Verdict;
  /** Misbehaviour seen while it ran (stack traces, wrong restores). */
  findings: string[];
}

/** Runs the chaos and answers what it found; a report with no finding is a pass (see {@link failures}). */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const regions = options.regions ?? ['eu-west-1', 'us-east-1'];
  const workload = new Workload({
    configPath: options.configPath,
    cli: options.cli,
    workDir: options.workDir,
    regions,
    seed: options.seed,
    workers: options.workers ?? 3,
    opTimeoutMs: options.settleMs + 120_000,
    log: options.log,
  });
  await workload.setUp();
  const end = Date.now() + options.workMs;
  const over = () => Date.now() >= end;
  const [monkey] = await Promise.all([
    runMonkey(
      {
        stateFile: options.stateFile,
        regions,
        random: seededRandom(options.seed ^ 0x5eed),
        everyMs: options.strikeEveryMs ?? [6000, 20_000],
        stallMs: [2000, 12_000],
        log: options.log,
      },
      over,
    ),
    workload.run(over),
  ]);
  options.log(`chaos: workload over after ${((Date.now() - started) / 1000).toFixed(0)} s; settling`);
  const pending = await settle(workload, regions, options.settleMs, options.log);
  await collect(workload, regions);
  const verdict = await verify(workload, {
    regions,
    dataDir: options.dataDir,
    workDir: options.workDir,
    pending,
  });
  const operations = {} as ChaosReport['operations'];
  for (const kind of ['create', 'copy', 'export', 'import', 'restore', 'gc'] as OperationKind[]) {
    const ops = workload.operations.filter((o) => o.kind === kind);
    operations[kind] = {
      ok: ops.filter((o) => o.code === 0).length,
      failed: ops.filter((o) => o.code !== 0).length,
    };
  }
  const restarts = Object.fromEntries(
    cloudState(options.stateFile).children.map((c) => [c.name, c.restarts]),
  );
  return {
    seed: options.seed,
    minutes: (Date.now() - started) / 60_000,
    operations,
    monkey,
    restarts,
    verdict,
    findings: workload.findings,
  };
}

/** Everything the run found wrong, one line each; empty for a pass. */
export function failures(report: ChaosReport): string[] {
  const v = report.verdict;
  return [
    ...report.findings,
    ...v.pending.map((p) => `pending past the settle time: ${p}`),
    ...v.misreported.map((m) => `misreported: ${m}`),
    ...v.corrupt.map((c) => `not whole: ${c}`),
    ...v.orphans.map((o) => `orphan after GC: ${o}`),
  ];
}

/** The summary `npm run chaos` prints. */
export function summary(report: ChaosReport): string {
  const ops = Object.entries(report.operations)
    .map(([kind, { ok, failed }]) => `${kind} ${ok}${failed ? ` (+${failed} failed)` : ''}`)
    .join(', ');
  const count = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  const list = (r: Record<string, number>) =>
    Object.entries(r)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  const found = failures(report);
  return [
    `Chaos run, seed ${report.seed}: ${report.minutes.toFixed(1)} min`,
    `  operations: ${ops}`,
    `  kills: ${count(report.monkey.kills)} (${list(report.monkey.kills)})`,
    `  stalls: ${count(report.monkey.stalls)} (${list(report.monkey.stalls)})`,
    `  restarts by the supervisor: ${list(report.restarts)}`,
    `  afterwards: ${report.verdict.restored} completed snapshots restored and compared; ${report.verdict.failedCleanly.length} in error (failed cleanly); ${report.verdict.pending.length} pending; ${report.verdict.orphans.length} orphan segments`,
    ...report.verdict.failedCleanly.map((f) => `    in error: ${f}`),
    `  failures found: ${found.length}`,
    ...found.map((f) => `    ${f}`),
  ].join('\n');
}
