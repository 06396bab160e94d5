import { type Command, Option } from 'commander';
import type { Snapshot } from '../../client/api-client.ts';
import { restoreSnapshot } from '../../client/snapshot-restore.ts';
import { option, positiveInteger } from '../args.ts';
import type { CliContext } from '../context.ts';
import { deletedRecord, printAnswer, printJson, printRows } from '../output.ts';
import { progressBar } from '../progress.ts';
import { firstOf } from '../reading.ts';
import { addRecordCommand } from '../record-commands.ts';
import { snapshotRecord } from '../records.ts';
import { collectTag, formatSize } from '../units.ts';
import { addCopyCommand } from './copy.ts';
import { addImportCommand } from './import.ts';
import { addSharingCommands } from './sharing.ts';
import { addSnapshotCreate } from './snapshot-create.ts';
import { addVerifyCommand } from './verify.ts';

/**
 * `volsnap snapshot …`: create, list, show, update, delete, undelete, copy, import, share,
 * unshare, publish, unpublish, restore, diff (and `export`, which the exports group adds). Answers
 * the group, for that.
 */
export function addSnapshotCommands(program: Command, ctx: CliContext): Command {
  const snapshot = program
    .command('snapshot')
    .description('create, list, show, update, delete, restore and compare snapshots');
  addSnapshotCreate(snapshot, ctx);
  addList(snapshot, ctx);
  addRecordCommand(snapshot, ctx, {
    name: 'show',
    description: "show a snapshot's fields",
    args: ['<snapshot-id>'],
    call: (api, snapshotId) => api.getSnapshot(snapshotId),
    view: snapshotRecord,
  });
  addUpdate(snapshot, ctx);
  addDelete(snapshot, ctx);
  addUndelete(snapshot, ctx);
  addCopyCommand(snapshot, ctx);
  addImportCommand(snapshot, ctx);
  addSharingCommands(snapshot, ctx);
  addVerifyCommand(snapshot, ctx);
  addRestore(snapshot, ctx);
  addDiff(snapshot, ctx);
  return snapshot;
}

interface ListOptions {
  shared?: boolean;
  public?: boolean;
  recycleBin?: boolean;
  volume?: string;
  state?: Snapshot['state'];
  name?: string;
  tag?: Record<string, string>;
  limit?: number;
}

function addList(snapshot: Command, ctx: CliContext): void {
  snapshot
    .command('list')
    .description(
      'list your snapshots in this region (or those shared with you, or public ones), newest first',
    )
    .addOption(new Option('--shared', "other accounts' snapshots shared with yours").conflicts('public'))
    .addOption(new Option('--public', 'public snapshots of any account'))
    .addOption(
      new Option('--recycle-bin', 'your deleted snapshots that can still be recovered').conflicts([
        'shared',
        'public',
        'state',
      ]),
    )
    .option('--volume <volume-id>', 'only snapshots of this volume')
    .option('--state <state>', 'only snapshots in this state (queued, pending, completed, error)')
    .option('--name <prefix>', 'only snapshots whose name starts with this')
    .option(
      '--tag <key=value>',
      'only snapshots with this tag (repeat to require several; a policy tags its snapshots volsnap:policy=<policy-id>)',
      option(collectTag),
    )
    .option('--limit <n>', 'at most this many', option(positiveInteger))
    .action((options: ListOptions) => listSnapshots(ctx, options));
}

async function listSnapshots(ctx: CliContext, options: ListOptions): Promise<void> {
  const { api, json } = ctx.client();
  const scope = options.shared ? 'shared' : options.public ? 'public' : undefined;
  const rows = await firstOf(
    api.allSnapshots({
      scope,
      volumeId: options.volume,
      state: options.recycleBin ? 'recycled' : options.state,
      name: options.name,
      tags: options.tag,
    }),
    options.limit,
  );
  printRows(
    ctx.io.out,
    json,
    rows,
    (s) => ({
      id: s.snapshotId,
      volume: s.volumeId,
      name: s.name || '-',
      size: formatSize(s.volumeSize),
      stored: s.stats ? formatSize(s.stats.storedBytes) : '-',
      state:
        s.state === 'pending'
          ? `pending ${s.progress}%`
          : s.state === 'recycled'
            ? `recycled until ${s.purgeAt}`
            : s.state,
      created: s.createdAt,
      owner: s.accountId,
    }),
    scope
      ? ['id', 'owner', 'name', 'size', 'state', 'created']
      : ['id', 'volume', 'name', 'size', 'stored', 'state', 'created'],
  );
}

function addUpdate(snapshot: Command, ctx: CliContext): void {
  snapshot
    .command('update')
    .description('change the name, description or tags (tags given replace all tags)')
    .argument('<snapshot-id>')
    .option('--name <name>', 'a new name')
    .option('--description <text>', 'a new description')
    .option('--tag <key=value>', 'the tags (repeat for more)', option(collectTag))
    .action(
      async (
        snapshotId: string,
        options: { name?: string; description?: string; tag?: Record<string, string> },
      ) => {
        const { api, json } = ctx.client();
        const updated = await api.updateSnapshot(snapshotId, {
          name: options.name,
          description: options.description,
          tags: options.tag,
        });
        printAnswer(ctx.io.out, json, updated, snapshotRecord);
      },
    );
}

function addDelete(snapshot: Command, ctx: CliContext): void {
  snapshot
    .command('delete')
    .description(
      "delete a snapshot: a completed one waits in the recycle bin for the account's retention (7 days unless set otherwise), recoverable with `snapshot undelete`; newer snapshots of the volume keep every block they need",
    )
    .argument('<snapshot-id>')
    .action(async (snapshotId: string) => {
      const { api, json } = ctx.client();
      const { io } = ctx;
      const { recycled, accessLost } = await api.deleteSnapshot(snapshotId);
      if (json)
        printJson(io.out, {
          ...(recycled ?? deletedRecord('snapshotId', snapshotId)),
          ...(accessLost ? { accessLost } : {}),
        });
      else {
        if (recycled)
          io.out(
            `Moved ${snapshotId} to the recycle bin until ${recycled.purgeAt}; \`volsnap snapshot undelete ${snapshotId}\` recovers it.\n`,
          );
        else io.out(`Deleted ${snapshotId}.\n`);
        if (accessLost) io.out(`${accessLost.message}\n`);
      }
    });
}

function addUndelete(snapshot: Command, ctx: CliContext): void {
  snapshot
    .command('undelete')
    .description(
      'take a snapshot out of the recycle bin, whole (list them with `snapshot list --recycle-bin`)',
    )
    .argument('<snapshot-id>')
    .action(async (snapshotId: string) => {
      const { api, json } = ctx.client();
      const restored = await api.undeleteSnapshot(snapshotId);
      if (json) printJson(ctx.io.out, restored);
      else ctx.io.out(`Recovered ${snapshotId}: ${restored.state}.\n`);
    });
}

interface RestoreOptions {
  to: string;
  resume?: boolean;
  force?: boolean;
  concurrency: number;
}

function addRestore(snapshot: Command, ctx: CliContext): void {
  snapshot
    .command('restore')
    .description("write a snapshot's bytes to a file (sparse) or block device, verifying every block")
    .argument('<snapshot-id>')
    .requiredOption('--to <path>', 'the file or device to write')
    .option('--resume', 'continue an interrupted restore into --to (blocks already right are kept)')
    .option('--force', 'replace an existing file')
    .option(
      '--concurrency <n>',
      'ranged downloads at once (memory: about n × 16 MiB)',
      option(positiveInteger),
      4,
    )
    .action((snapshotId: string, options: RestoreOptions) => restore(ctx, snapshotId, options));
}

async function restore(ctx: CliContext, snapshotId: string, options: RestoreOptions): Promise<void> {
  const { api, json } = ctx.client();
  const bar = progressBar('restore', !json);
  const started = Date.now();
  const report = await restoreSnapshot(api, snapshotId, {
    target: options.to,
    resume: options.resume,
    force: options.force,
    concurrency: options.concurrency,
    onProgress: (p) => bar.update(p.blocksDone * 512 * 1024, p.totalBlocks * 512 * 1024),
  }).finally(() => bar.stop());
  const seconds = (Date.now() - started) / 1000;
  if (json) printJson(ctx.io.out, { snapshotId, to: options.to, report: { ...report, seconds } });
  else
    ctx.io.out(
      `Restored ${snapshotId} to ${options.to}: ${report.fetchedBlocks} block(s) fetched and verified, ${report.skippedBlocks} already there, ${report.zeroBlocks} zero (left as holes); ${formatSize(report.bytesDownloaded)} in ${report.requests} request(s), ${seconds.toFixed(1)} s.\n`,
    );
}

function addDiff(snapshot: Command, ctx: CliContext): void {
  snapshot
    .command('diff')
    .description('blocks changed between two snapshots of the same volume')
    .argument('<from-snapshot-id>')
    .argument('<to-snapshot-id>')
    .action(async (from: string, to: string) => {
      const { api, json } = ctx.client();
      const { io } = ctx;
      const diff = await api.changedBlocks(to, from);
      if (json) {
        printJson(io.out, diff);
        return;
      }
      io.out(
        `${diff.changedBlocks} of ${diff.volumeSize / diff.blockSize} blocks (${formatSize(diff.blockSize)} each) changed:\n`,
      );
      for (const r of diff.ranges)
        io.out(
          `  blocks ${r.start}${r.count > 1 ? `-${r.start + r.count - 1}` : ''}  (bytes ${r.start * diff.blockSize}-${(r.start + r.count) * diff.blockSize - 1})\n`,
        );
    });
}
