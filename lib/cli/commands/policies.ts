import { type Command, InvalidArgumentError, Option } from 'commander';
import type {
  CopyRule,
  Policy,
  PolicyChanges,
  PolicyRetention,
  PolicySchedule,
} from '../../client/api-client.ts';
import { option, parseDuration, positiveInteger } from '../args.ts';
import type { CliContext } from '../context.ts';
import { printAnswer, printRows } from '../output.ts';
import { firstOf } from '../reading.ts';
import { addDeleteCommand, addRecordCommand } from '../record-commands.ts';
import { collectTag, formatTags } from '../units.ts';

/** What `policy create` and `policy update` take (durations already in milliseconds). */
interface PolicyOptions {
  name?: string;
  description?: string;
  targetTag?: Record<string, string>;
  every?: number;
  cron?: string;
  keep?: number;
  keepFor?: number;
  copyTo?: string[];
  copyKeep?: number;
  copyKeepFor?: number;
  /** false with --no-copy (update only). */
  copy?: boolean;
  agentTimeout?: number;
  disabled?: boolean;
}

const milliseconds = option((text: string) => parseDuration(text) * 1000);
const collectRegion = (region: string, regions: string[] = []) => [...regions, region];

/** The options `policy create` and `policy update` share. */
function policyOptions(command: Command, creating: boolean): Command {
  return command
    .option('--description <text>', 'what the policy is for')
    .option(
      '--target-tag <key=value>',
      `snapshot the volumes carrying this tag (repeat: volumes carrying all of them)${creating ? '' : '; replaces the targets'}`,
      option(collectTag),
    )
    .addOption(
      new Option(
        '--every <duration>',
        'run every 90m, 6h, 1d… (at least 1m; aligned: every 6h runs at 00, 06, 12 and 18 UTC)',
      )
        .argParser(milliseconds)
        .conflicts('cron'),
    )
    .option('--cron <expression>', "run on a 5-field cron schedule in UTC, e.g. '0 3 * * *' (03:00 daily)")
    .addOption(
      new Option(
        '--keep <count>',
        "keep this many of the policy's newest completed snapshots of each volume (1-1000)",
      )
        .argParser(option(positiveInteger))
        .conflicts('keepFor'),
    )
    .option(
      '--keep-for <duration>',
      "keep the policy's snapshots this long, e.g. 30d (at least 1m; the newest completed one always stays)",
      milliseconds,
    )
    .option(
      '--copy-to <region>',
      'copy each new snapshot to this region (repeat for up to 3 regions)',
      collectRegion,
    )
    .addOption(
      new Option(
        '--copy-keep <count>',
        'how many copies to keep in each copy region (default: as --keep/--keep-for)',
      )
        .argParser(option(positiveInteger))
        .conflicts('copyKeepFor'),
    )
    .option('--copy-keep-for <duration>', 'how long to keep the copies, e.g. 90d', milliseconds)
    .option(
      '--agent-timeout <duration>',
      "how long a snapshot waits for the volume host's agent before it fails (1s-7d; default 1h)",
      milliseconds,
    );
}

function scheduleOf(options: PolicyOptions): PolicySchedule | undefined {
  if (options.every !== undefined) return { everyMs: options.every };
  if (options.cron !== undefined) return { cron: options.cron };
  return undefined;
}

function retentionOf(keep: number | undefined, keepForMs: number | undefined): PolicyRetention | undefined {
  if (keep !== undefined) return { keep };
  if (keepForMs !== undefined) return { keepForMs };
  return undefined;
}

/** `volsnap policy create|list|show|enable|disable|update|delete`. */
export function addPolicyCommands(program: Command, ctx: CliContext): void {
  const policy = program
    .command('policy')
    .description(
      'snapshot policies: snapshot tagged volumes on a schedule, keep some, copy them to other regions',
    );
  addCreate(policy, ctx);
  addList(policy, ctx);
  addRecordCommand(policy, ctx, {
    name: 'show',
    description: "a policy's settings, next run and what its last run did",
    args: ['<policy-id>'],
    call: (api, policyId) => api.getPolicy(policyId),
    view: policyRecord,
  });
  for (const [name, enabled, description] of [
    ['enable', true, 'turn a policy on: it next runs at its next scheduled time from now'],
    ['disable', false, 'turn a policy off: it makes and deletes no snapshots until enabled'],
  ] as const) {
    addRecordCommand(policy, ctx, {
      name,
      description,
      args: ['<policy-id>'],
      call: (api, policyId) => api.updatePolicy(policyId, { enabled }),
      view: policyRecord,
    });
  }
  policyOptions(
    policy
      .command('update')
      .argument('<policy-id>')
      .description('change the settings given; the others stay')
      .option('--name <name>', 'a new name'),
    false,
  )
    .option('--no-copy', 'remove every copy rule')
    .action((policyId: string, options: PolicyOptions) => updatePolicy(ctx, policyId, options));
  addDeleteCommand(policy, ctx, {
    description: 'delete a policy (the snapshots it made stay, tagged volsnap:policy=<policy-id>)',
    arg: '<policy-id>',
    idField: 'policyId',
    remove: (api, policyId) => api.deletePolicy(policyId),
    done: (policyId) => `Deleted ${policyId}; the snapshots it made stay.\n`,
  });
}

function addCreate(policy: Command, ctx: CliContext): void {
  policyOptions(
    policy
      .command('create')
      .description('a policy that snapshots every volume carrying the target tags, on a schedule')
      .requiredOption('--name <name>', 'a name for the policy'),
    true,
  )
    .option('--disabled', 'create it turned off (turn it on with `policy enable`)')
    .action(async (options: PolicyOptions) => {
      const { api, json } = ctx.client();
      const schedule = scheduleOf(options);
      const retention = retentionOf(options.keep, options.keepFor);
      if (!schedule) throw usage('give a schedule: --every 6h, or --cron "0 3 * * *"');
      if (!retention) throw usage('give a retention: --keep 7, or --keep-for 30d');
      if (!options.targetTag) throw usage('give the volumes to snapshot: --target-tag key=value');
      if (!options.copyTo && (options.copyKeep !== undefined || options.copyKeepFor !== undefined))
        throw usage('--copy-keep and --copy-keep-for go with --copy-to REGION');
      const created = await api.createPolicy({
        name: options.name ?? '',
        description: options.description,
        targetTags: options.targetTag,
        schedule,
        retention,
        copyRules: copyRulesOf(options.copyTo ?? [], options, retention),
        agentTimeoutMs: options.agentTimeout,
        enabled: !options.disabled,
      });
      printAnswer(ctx.io.out, json, created, policyRecord);
    });
}

function addList(policy: Command, ctx: CliContext): void {
  policy
    .command('list')
    .description('your policies in this region, newest first')
    .action(async () => {
      const { api, json } = ctx.client();
      const rows = await firstOf(api.allPolicies());
      printRows(
        ctx.io.out,
        json,
        rows,
        (p) => ({
          id: p.policyId,
          name: p.name,
          enabled: p.enabled ? 'yes' : 'no',
          schedule: formatSchedule(p.schedule),
          retention: formatRetention(p.retention),
          targets: formatTags(p.targetTags, true),
          copies: p.copyRules.map((r) => r.region),
          'next run': p.enabled ? p.nextRunAt : undefined,
        }),
        ['id', 'name', 'enabled', 'schedule', 'retention', 'targets', 'copies', 'next run'],
      );
    });
}

async function updatePolicy(ctx: CliContext, policyId: string, options: PolicyOptions): Promise<void> {
  const { api, json } = ctx.client();
  const retention = retentionOf(options.keep, options.keepFor);
  const changes: PolicyChanges = {
    name: options.name,
    description: options.description,
    targetTags: options.targetTag,
    schedule: scheduleOf(options),
    retention,
    agentTimeoutMs: options.agentTimeout,
  };
  const copyRetention = options.copyKeep !== undefined || options.copyKeepFor !== undefined;
  if (options.copy === false) {
    if (options.copyTo || copyRetention) throw usage('--no-copy goes without --copy-to and --copy-keep*');
    changes.copyRules = [];
  } else if (options.copyTo || copyRetention) {
    // Copies keep as asked, else as the policy's (new or current) retention says.
    const current = await api.getPolicy(policyId);
    const regions = options.copyTo ?? current.copyRules.map((r) => r.region);
    if (regions.length === 0)
      throw usage(`policy ${policyId} has no copy rules: add them with --copy-to REGION`);
    changes.copyRules = copyRulesOf(regions, options, retention ?? current.retention, current.copyRules);
  }
  printAnswer(ctx.io.out, json, await api.updatePolicy(policyId, changes), policyRecord);
}

/** A command line to fix: printed as a usage error (exit 2), pointing at the command's help. */
function usage(message: string): InvalidArgumentError {
  return new InvalidArgumentError(message);
}

/**
 * Copy rules to `regions`: with --copy-keep/--copy-keep-for if given, else the rule's current
 * retention (on update), else `fallback` (the policy's own retention).
 */
function copyRulesOf(
  regions: string[],
  options: PolicyOptions,
  fallback: PolicyRetention,
  current: CopyRule[] = [],
): CopyRule[] {
  const asked = retentionOf(options.copyKeep, options.copyKeepFor);
  return regions.map((region) => ({
    region,
    retention: asked ?? current.find((r) => r.region === region)?.retention ?? fallback,
  }));
}

function policyRecord(p: Policy) {
  const last = p.lastRun;
  return {
    id: p.policyId,
    name: p.name,
    description: p.description || '-',
    enabled: p.enabled ? 'yes' : 'no',
    targets: `volumes tagged ${formatTags(p.targetTags, true)}`,
    schedule: formatSchedule(p.schedule),
    retention: formatRetention(p.retention),
    copies:
      p.copyRules.length > 0
        ? p.copyRules.map((r) => `${r.region} (${formatRetention(r.retention)})`).join(', ')
        : 'none',
    'agent timeout': formatDuration(p.agentTimeoutMs),
    'next run': p.enabled ? p.nextRunAt : 'disabled',
    'last run': last
      ? `${last.at}: ${last.created.length} created, ${last.deleted.length} deleted, ${last.copied.length} copied, ${last.skipped.length} skipped, ${last.errors.length} errors`
      : (p.lastRunAt ?? 'never'),
    errors: last && last.errors.length > 0 ? last.errors.join('; ') : undefined,
    region: p.region,
    created: p.createdAt,
  };
}

function formatSchedule(schedule: PolicySchedule): string {
  return 'everyMs' in schedule ? `every ${formatDuration(schedule.everyMs)}` : `cron ${schedule.cron} (UTC)`;
}

function formatRetention(retention: PolicyRetention): string {
  return 'keep' in retention ? `keep ${retention.keep}` : `keep for ${formatDuration(retention.keepForMs)}`;
}

/** `21600000` → `6h`; the largest unit that divides it, down to milliseconds. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
