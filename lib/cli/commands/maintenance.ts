import { type Command, InvalidArgumentError } from 'commander';
import { runAgentPass } from '../../client/agent.ts';
import type { PolicyRunSummary } from '../../core/maintenance/policy-runner.ts';
import { escapeUnprintable } from '../../core/shared/text.ts';
import { option, parseDuration, positiveInteger } from '../args.ts';
import type { CliContext } from '../context.ts';
import { alignedLines, printRecord } from '../output.ts';
import { splitPair } from '../units.ts';

const JOBS = ['gc', 'reaper', 'expiry', 'policies', 'scrub'];

function collectVolume(value: string, previous: Map<string, string> = new Map()): Map<string, string> {
  const pair = splitPair(value, true);
  if (!pair) throw new InvalidArgumentError(`'${value}' is not VOLUME=PATH (e.g. vol-…=/dev/sdb).`);
  return new Map(previous).set(...pair);
}

/** `volsnap agent …` (on a volume's host) and `volsnap admin run JOB` (the operator). */
export function addMaintenanceCommands(program: Command, admin: Command, ctx: CliContext): void {
  program
    .command('agent')
    .description(
      "run on a volume's host: take the snapshots policies queued for its volumes, write them from their files or devices, and complete them (sync or stop writers first: a snapshot of a busy device is crash-consistent)",
    )
    .requiredOption(
      '--volume <volume=path>',
      'a volume and its file or block device (repeat for more)',
      collectVolume,
    )
    .option('--once', 'one pass, then exit (for cron or tests); the default polls forever')
    .option(
      '--interval <duration>',
      'how often to look for queued snapshots: 30s, 5m… (a bare number is seconds)',
      option(parseDuration),
      30,
    )
    .option('--concurrency <n>', 'segment uploads at once per snapshot', option(positiveInteger), 4)
    .action((options: AgentOptions) => runAgent(ctx, options));

  admin
    .command('run')
    .description(
      'run a scheduled job of the region now (operator): gc (unreferenced segments), reaper (stuck work), expiry (exports, recycle bin), policies (due ones), scrub (verifies a sample of snapshots); prints its report',
    )
    .argument('<job>', JOBS.join(' | '))
    .option(
      '--grace <duration>',
      'gc: collect garbage older than this, e.g. 12h, or 0 for all (default: the deployment’s, 24h)',
      option(parseDuration),
    )
    .option('--force', 'policies: run every enabled policy now, due or not')
    .option('--policy <policy-id>', 'policies: run this policy now')
    .action(async (job: string, options: { grace?: number; force?: boolean; policy?: string }) => {
      if (!JOBS.includes(job))
        throw new InvalidArgumentError(`'${job}' is not a job: use ${JOBS.join(', ')}.`);
      const { api, json } = ctx.client();
      const report = await api.runJob(job, {
        ...(options.grace !== undefined ? { graceSeconds: options.grace } : {}),
        ...(options.force ? { force: true } : {}),
        ...(options.policy ? { policyId: options.policy } : {}),
      });
      if (!json && job === 'policies') ctx.io.out(formatPolicyRuns(report as unknown as PolicyRunSummary));
      else printRecord(ctx.io.out, json ? report : summarize(report), json);
    });
}

interface AgentOptions {
  volume: Map<string, string>;
  once?: boolean;
  interval: number;
  concurrency: number;
}

/** Agent passes until `--once` is done or SIGINT/SIGTERM; exit code 1 when a snapshot failed. */
async function runAgent(ctx: CliContext, options: AgentOptions): Promise<void> {
  const { api, json } = ctx.client();
  const { io } = ctx;
  let failed = 0;
  const onEvent = (event: { snapshotId: string; volumeId: string; outcome: string; reason?: string }) => {
    if (event.outcome === 'failed') failed++;
    io.out(
      json
        ? `${JSON.stringify(event)}\n`
        : `${event.snapshotId} (${event.volumeId}): ${event.outcome}${event.reason ? `: ${event.reason}` : ''}\n`,
    );
  };
  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (!json) io.out(agentStartLine(options.volume, options.once ? undefined : options.interval));
  try {
    do {
      await runAgentPass(api, { volumes: options.volume, concurrency: options.concurrency, onEvent });
      if (options.once) break;
      for (let waited = 0; waited < options.interval * 1000 && !stopping; waited += 250)
        await new Promise((resolve) => setTimeout(resolve, 250));
    } while (!stopping);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (failed > 0) process.exitCode = 1;
}

/** A report as one line per field: lists as their length and first ids. */
function summarize(report: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(report).map(([key, value]) => [
      key,
      Array.isArray(value)
        ? value.length === 0
          ? '-'
          : `${value.length}: ${value
              .slice(0, 5)
              .map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v)))
              .join(', ')}${value.length > 5 ? ', …' : ''}`
        : typeof value === 'object'
          ? JSON.stringify(value)
          : String(value),
    ]),
  );
}

/**
 * What `volsnap agent` prints when it starts: the volumes and devices it watches, and how often it
 * looks (`intervalSeconds` undefined: one pass, `--once`).
 */
export function agentStartLine(volumes: Map<string, string>, intervalSeconds: number | undefined): string {
  const watched = [...volumes].map(([volumeId, path]) => `${volumeId} (${path})`).join(', ');
  const how =
    intervalSeconds === undefined
      ? 'one pass (--once)'
      : `every ${formatSeconds(intervalSeconds)} until stopped (Ctrl-C or SIGTERM)`;
  return `volsnap agent: taking queued snapshots of ${watched}, ${how}.\n`;
}

function formatSeconds(seconds: number): string {
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const)
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  return `${seconds}s`;
}

/** The policies job's report as a table, one policy a row (and its errors under it), not JSON. */
export function formatPolicyRuns(summary: PolicyRunSummary): string {
  if (summary.runs.length === 0) return 'No policy was due.\n';
  const rows = summary.runs.map(({ policyId, accountId, report }) => [
    policyId,
    accountId,
    idsCell(report.created),
    idsCell(report.deleted),
    idsCell(report.copied),
    idsCell(report.skipped),
    String(report.errors.length),
  ]);
  const header = ['POLICY', 'ACCOUNT', 'CREATED', 'DELETED', 'COPIED', 'SKIPPED', 'ERRORS'];
  const errors = summary.runs.flatMap(({ policyId, report }) =>
    report.errors.map((e) => `  ${policyId}: ${escapeUnprintable(e)}`),
  );
  return `${[...alignedLines(header, rows), ...(errors.length > 0 ? ['errors:', ...errors] : [])].join('\n')}\n`;
}

/** `-`, or the ids of a report's list (its length first when there are several). */
function idsCell(ids: string[]): string {
  if (ids.length === 0) return '-';
  return ids.length === 1
    ? escapeUnprintable(ids[0] ?? '')
    : `${ids.length}: ${ids.map(escapeUnprintable).join(', ')}`;
}
