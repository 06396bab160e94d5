import { randomUUID } from 'node:crypto';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { settle } from '../../client/poll.ts';
import { uploadFile } from '../../client/upload.ts';
import { DISK_FORMATS, type DiskFormat } from '../../core/format/disk-format.ts';
import { option } from '../args.ts';
import type { CliContext } from '../context.ts';
import { printJson } from '../output.ts';
import { progressBar } from '../progress.ts';
import { waitForSnapshot } from '../reading.ts';
import { stateLine } from '../records.ts';
import { collectTag, formatSize, parseVolumeSize } from '../units.ts';

interface ImportOptions {
  url?: string;
  file?: string;
  format: DiskFormat;
  size?: number;
  name?: string;
  description?: string;
  tag?: Record<string, string>;
  clientToken?: string;
  wait: boolean;
}

/** `volsnap snapshot import`: from a URL, or a local file uploaded first. */
export function addImportCommand(snapshot: Command, ctx: CliContext): void {
  snapshot
    .command('import')
    .description(
      'import a snapshot from a URL that serves ranged GETs (a presigned export URL of any volsnap deployment, an S3 object, plain HTTPS), as a new snapshot of yours on a new volume',
    )
    .option('--url <url>', 'where the object is')
    .option('--file <path>', 'a local file: uploaded through presigned URLs, then imported')
    .addOption(
      new Option('--format <format>', 'vsnap, raw (a plain disk image) or qcow2')
        .choices(DISK_FORMATS)
        .makeOptionMandatory(),
    )
    .option(
      '--size <size>',
      'the volume size (64MiB, 10GiB…): needed for raw, at least the image length; optional for qcow2',
      option(parseVolumeSize),
    )
    .option('--name <name>', 'a name')
    .option('--description <text>', 'a description')
    .option('--tag <key=value>', 'a tag (repeat for more)', option(collectTag))
    .option('--client-token <token>', 'makes retries safe: the same token returns the same import')
    .option('--no-wait', 'return once the import is started')
    .action((options: ImportOptions) => importSnapshot(ctx, options));
}

async function importSnapshot(ctx: CliContext, options: ImportOptions): Promise<void> {
  const { api, json } = ctx.client();
  const { io } = ctx;
  if ((options.url === undefined) === (options.file === undefined))
    throw new InvalidArgumentError('give --url, or --file');
  const upload = options.file ? await uploadFile(api, options.file, progressBar('upload', !json)) : undefined;
  const request = {
    url: options.url,
    upload,
    format: options.format,
    sizeBytes: options.size,
    name: options.name,
    description: options.description,
    tags: options.tag,
    // As for a copy: a token of its own makes an import whose answer is lost safe to ask again.
    clientToken: options.clientToken ?? randomUUID(),
  };
  const started = await settle(
    () => api.importSnapshot(request),
    async () => undefined,
    { sleep: (ms) => api.wait(ms) },
  );
  const done = options.wait
    ? await waitForSnapshot(api, started.snapshotId, progressBar('import', !json))
    : started;
  if (json) printJson(io.out, done);
  else {
    io.out(`${stateLine(done)} (volume ${done.volumeId})\n`);
    if (done.stats)
      io.out(
        `blocks: ${done.stats.blockCount} non-zero of ${done.volumeSize / done.blockSize}, ${formatSize(done.stats.newBytes)} stored\n`,
      );
  }
  if (done.state === 'error') process.exitCode = 1;
}
