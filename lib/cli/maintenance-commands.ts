import { type Command, InvalidArgumentError } from 'commander';
import { runAgentPass } from '../client/agent.ts';
import type { ApiClient } from '../client/api-client.ts';
import { option, parseDuration, positiveInteger } from './args.ts';
import { printRecord } from './output.ts';

type Io = { out: (text: string) => void; err: (text: string) => void };
type Client = () => { api: ApiClient; json: boolean };

const JOBS = ['gc', 'reaper', 'expiry', 'policies'];

function collectVolume(value: string, previous: Map<string, string> = new Map()): Map<string, string> {
  const at = value.indexOf('=');
  if (at < 1 || at === value.length - 1)
    throw new InvalidArgumentError(`'${value}' is not VOLUME=PATH (e.g. vol-…=/dev/sdb).`);
  return new Map(previous).set(value.slice(0, at), value.slice(at + 1));
}

/** `volsnap agent …` (on a volume's host) and `volsnap admin run JOB` (the operator). */
export function addMaintenanceCommands(program: Command, client: Client, io: Io): void {
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
    .option('--interval <duration>', 'how often to look for queued snapshots', option(parseDuration), 30)
    .option('--concurrency <n>', 'segment uploads at once per snapshot', option(positiveInteger), 4)
    .action(
      async (options: {
        volume: Map<string, string>;
        once?: boolean;
        interval: number;
        concurrency: number;
      }) => {
        const { api, json } = client();
        let failed = 0;
        const onEvent = (event: {
          snapshotId: string;
          volumeId: string;
          outcome: string;
          reason?: string;
        }) => {
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
      },
    );

  const admin = program.commands.find((c) => c.name() === 'admin');
  if (!admin) throw new Error('the admin command must be added first');
  admin
    .command('run')
    .description(
      'run a scheduled job of the region now (operator): gc (unreferenced segments), reaper (stuck work), expiry (exports, recycle bin), policies (due ones); prints its report',
    )
    .argument('<job>', JOBS.join(' | '))
    .option(
      '--grace <duration>',
      'gc: collect garbage older than this (default: the deployment’s, 24h)',
      option(parseDuration),
    )
    .option('--force', 'policies: run every enabled policy now, due or not')
    .option('--policy <policy-id>', 'policies: run this policy now')
    .action(async (job: string, options: { grace?: number; force?: boolean; policy?: string }) => {
      if (!JOBS.includes(job))
        throw new InvalidArgumentError(`'${job}' is not a job: use ${JOBS.join(', ')}.`);
      const { api, json } = client();
      const report = await api.runJob(job, {
        ...(options.grace !== undefined ? { graceSeconds: options.grace } : {}),
        ...(options.force ? { force: true } : {}),
        ...(options.policy ? { policyId: options.policy } : {}),
      });
      printRecord(io.out, json ? report : summarize(report), json);
    });
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
