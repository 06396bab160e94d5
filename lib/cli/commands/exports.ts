import { type Command, Option } from 'commander';
import type { ApiClient, Export } from '../../client/api-client.ts';
import { settle } from '../../client/poll.ts';
import { DISK_FORMATS, type DiskFormat } from '../../core/format/disk-format.ts';
import { option, parseDuration } from '../args.ts';
import type { CliContext } from '../context.ts';
import { printAnswer, printRecord, printRows } from '../output.ts';
import { progressBar } from '../progress.ts';
import { waitForExport } from '../reading.ts';
import { addDeleteCommand, addRecordCommand } from '../record-commands.ts';
import { formatSize } from '../units.ts';

/** `volsnap snapshot export …` and `volsnap export list|show|url|delete`. */
export function addExportCommands(program: Command, snapshot: Command, ctx: CliContext): void {
  addSnapshotExport(snapshot, ctx);
  const exports = program
    .command('export')
    .description('exports of your snapshots: list, show, presigned URLs, delete');
  addList(exports, ctx);
  addRecordCommand(exports, ctx, {
    name: 'show',
    description: "an export's fields",
    args: ['<export-id>'],
    call: (api, exportId) => api.getExport(exportId),
    view: exportRecord,
  });
  addUrl(exports, ctx);
  addDeleteCommand(exports, ctx, {
    description: 'delete an export and its object',
    arg: '<export-id>',
    idField: 'exportId',
    remove: (api, exportId) => api.deleteExport(exportId),
    done: (exportId) => `Deleted ${exportId}; its URLs no longer work.\n`,
  });
}

interface ExportOptions {
  format: DiskFormat;
  bucket?: string;
  prefix?: string;
  keepFor?: number;
  wait: boolean;
}

function addSnapshotExport(snapshot: Command, ctx: CliContext): void {
  snapshot
    .command('export')
    .description(
      'write a completed snapshot (yours, or shared with you) as one object in the region, to download with `export url`',
    )
    .argument('<snapshot-id>')
    .addOption(
      new Option(
        '--format <format>',
        "vsnap: volsnap's own, sparse and verifiable; raw: the plain disk image; qcow2: for QEMU and cloud images",
      )
        .choices(DISK_FORMATS)
        .default('vsnap'),
    )
    .option('--bucket <name>', "a bucket the deployment may write exports to, instead of the region's own")
    .option('--prefix <prefix>', 'a key prefix for the object, e.g. backups/2026/')
    .option(
      '--keep-for <duration>',
      'delete the export (and its object) after this long, e.g. 7d (default 30d, at most 365d)',
      option(parseDuration),
    )
    .option('--no-wait', 'return once the export is started')
    .action(async (snapshotId: string, options: ExportOptions) => {
      const { api, json } = ctx.client();
      const started = await startExport(api, snapshotId, options.format, {
        bucket: options.bucket,
        prefix: options.prefix,
        ...(options.keepFor !== undefined ? { keepForSeconds: options.keepFor } : {}),
      });
      const done = options.wait
        ? await waitForExport(api, started.exportId, progressBar('export', !json))
        : started;
      printAnswer(ctx.io.out, json, done, exportRecord);
      if (done.state === 'error') process.exitCode = 1;
    });
}

function addList(exports: Command, ctx: CliContext): void {
  exports
    .command('list')
    .description('your exports in this region, newest first')
    .action(async () => {
      const { api, json } = ctx.client();
      const { exports: rows } = await api.listExports();
      printRows(
        ctx.io.out,
        json,
        rows,
        (e) => ({
          id: e.exportId,
          snapshot: e.snapshotId,
          format: e.format,
          size: formatSize(e.size),
          state: e.state === 'pending' ? `pending ${e.progress}%` : e.state,
          created: e.createdAt,
        }),
        ['id', 'snapshot', 'format', 'size', 'state', 'created'],
      );
    });
}

function addUrl(exports: Command, ctx: CliContext): void {
  exports
    .command('url')
    .argument('<export-id>')
    .description(
      'a presigned GET URL of the export object (ranged GETs work); it stops working when the export is deleted',
    )
    .option(
      '--expires <duration>',
      'how long the URL works, e.g. 1h or 7d (at most 7 days)',
      option(parseDuration),
      3600,
    )
    .action(async (exportId: string, options: { expires: number }) => {
      const { api, json } = ctx.client();
      const result = await api.exportUrl(exportId, options.expires);
      if (json) printRecord(ctx.io.out, result, true);
      else ctx.io.out(`${result.url}\n`);
    });
}

function exportRecord(e: Export) {
  return {
    id: e.exportId,
    snapshot: e.snapshotId,
    format: e.format,
    object: `${e.bucket ?? '(region bucket)'}/${e.key}`,
    state: e.state,
    reason: e.stateReason,
    size: `${formatSize(e.size)} (${e.size} bytes)`,
    parts: e.parts,
    created: e.createdAt,
    completed: e.completedAt,
    expires: e.expiresAt,
  };
}

/**
 * Starts an export, finding out what happened when the answer is lost (a timeout, a reset, a 5xx):
 * an export takes no client token, so the exports of the snapshot listed before it was asked for
 * are compared with those after; a new one is the answer, none means it is asked for again.
 */
async function startExport(
  api: ApiClient,
  snapshotId: string,
  format: DiskFormat,
  target: Parameters<ApiClient['exportSnapshot']>[2],
): Promise<Export> {
  const ofSnapshot = async () =>
    (await api.listExports()).exports.filter((e) => e.snapshotId === snapshotId && e.format === format);
  let before: Set<string> | undefined;
  return settle(
    async () => {
      before ??= new Set((await ofSnapshot()).map((e) => e.exportId));
      return api.exportSnapshot(snapshotId, format, target);
    },
    async () => (await ofSnapshot()).find((e) => !before?.has(e.exportId)),
    { sleep: (ms) => api.wait(ms) },
  );
}
