import { type Command, Option } from 'commander';
import type { ApiClient, Export } from '../client/api-client.ts';
import { DISK_FORMATS, type DiskFormat } from '../core/format/disk-format.ts';
import { option, parseDuration } from './args.ts';
import { deletedRecord, printRecord, printTable } from './output.ts';
import { progressBar } from './progress.ts';
import { formatSize } from './units.ts';

type Io = { out: (text: string) => void; err: (text: string) => void };
type Client = () => { api: ApiClient; json: boolean };

/** `volsnap snapshot export …` and `volsnap export list|show|url|delete`. */
export function addExportCommands(program: Command, snapshot: Command, client: Client, io: Io): void {
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
    .action(
      async (
        snapshotId: string,
        options: {
          format: DiskFormat;
          bucket?: string;
          prefix?: string;
          keepFor?: number;
          wait: boolean;
        },
      ) => {
        const { api, json } = client();
        const started = await api.exportSnapshot(snapshotId, options.format, {
          bucket: options.bucket,
          prefix: options.prefix,
          ...(options.keepFor !== undefined ? { keepForSeconds: options.keepFor } : {}),
        });
        const done = options.wait ? await waitForExport(api, started, progressBar('export', !json)) : started;
        printRecord(io.out, json ? done : exportRecord(done), json);
        if (done.state === 'error') process.exitCode = 1;
      },
    );

  const exports = program
    .command('export')
    .description('exports of your snapshots: list, show, presigned URLs, delete');
  exports
    .command('list')
    .description('your exports in this region, newest first')
    .action(async () => {
      const { api, json } = client();
      const { exports: rows } = await api.listExports();
      printTable(
        io.out,
        json
          ? rows
          : rows.map((e) => ({
              id: e.exportId,
              snapshot: e.snapshotId,
              format: e.format,
              size: formatSize(e.size),
              state: e.state === 'pending' ? `pending ${e.progress}%` : e.state,
              created: e.createdAt,
            })),
        ['id', 'snapshot', 'format', 'size', 'state', 'created'],
        json,
      );
    });
  exports
    .command('show')
    .argument('<export-id>')
    .description("an export's fields")
    .action(async (exportId: string) => {
      const { api, json } = client();
      const found = await api.getExport(exportId);
      printRecord(io.out, json ? found : exportRecord(found), json);
    });
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
      const { api, json } = client();
      const result = await api.exportUrl(exportId, options.expires);
      if (json) printRecord(io.out, result, true);
      else io.out(`${result.url}\n`);
    });
  exports
    .command('delete')
    .argument('<export-id>')
    .description('delete an export and its object')
    .action(async (exportId: string) => {
      const { api, json } = client();
      await api.deleteExport(exportId);
      io.out(
        json
          ? `${JSON.stringify(deletedRecord('exportId', exportId))}\n`
          : `Deleted ${exportId}; its URLs no longer work.\n`,
      );
    });
}

async function waitForExport(
  api: ApiClient,
  started: Export,
  bar: ReturnType<typeof progressBar>,
): Promise<Export> {
  try {
    for (let delay = 250; ; delay = Math.min(2000, delay * 1.5)) {
      const current = await api.getExport(started.exportId);
      bar.update((current.progress * current.size) / 100, current.size);
      if (current.state !== 'pending') return current;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  } finally {
    bar.stop();
  }
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
