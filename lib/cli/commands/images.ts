import { type Command, InvalidArgumentError, Option } from 'commander';
import type { ApiClient, Export, Image, ImageDeletion } from '../../client/api-client.ts';
import { type ImageWrite, restoreLaunch, waitForImage, writeImageSnapshots } from '../../client/images.ts';
import { pollUntil } from '../../client/poll.ts';
import { DISK_FORMATS, type DiskFormat } from '../../core/format/disk-format.ts';
import { option, positiveInteger } from '../args.ts';
import type { CliContext, Io } from '../context.ts';
import { deletedRecord, printJson, printRecord, printRows, printTable } from '../output.ts';
import { firstOf } from '../reading.ts';
import { accountArgument, addRecordCommand } from '../record-commands.ts';
import { formatSize, splitPair } from '../units.ts';

/** Repeated `--file vol-…=/path`: where this host has each volume's bytes. */
export function collectFile(text: string, files: Map<string, string> = new Map()): Map<string, string> {
  const pair = splitPair(text, true);
  if (!pair)
    throw new InvalidArgumentError(`'${text}' is not a volume's file: write vol-…=/path/to/disk.img.`);
  return new Map([...files, pair]);
}

/** What the CLI tells about an image of a running instance, as every provider does. */
export function crashConsistentNote(image: Image): string {
  return `Instance ${image.instance.instanceId} is marked running: this image is crash-consistent only (as after a power cut). Stop the instance, or at least sync its file systems and pause writers, before taking an image; --require-stopped refuses running instances.`;
}

/** `volsnap image create|list|show|delete|launch|share|unshare|copy|export`. */
export function addImageCommands(program: Command, ctx: CliContext): void {
  const image = program
    .command('image')
    .description(
      'images: snapshots of whole instances (one per volume, one moment), to launch new instances from',
    );
  addCreate(image, ctx);
  addList(image, ctx);
  addRecordCommand(image, ctx, {
    name: 'show',
    description: "an image's instance metadata, snapshots and state",
    args: ['<image-id>'],
    call: (api, imageId) => api.getImage(imageId),
    print: printImage,
  });
  addDelete(image, ctx);
  addLaunch(image, ctx);
  addRecordCommand(image, ctx, {
    name: 'share',
    description: 'let another account read a completed image and its snapshots: show, launch, copy, export',
    args: ['<image-id>', accountArgument()],
    call: (api, imageId, account) => api.shareImage(imageId, account),
    print: printImage,
  });
  addRecordCommand(image, ctx, {
    name: 'unshare',
    description: 'take a share back, from the image and its snapshots',
    args: ['<image-id>', accountArgument()],
    call: (api, imageId, account) => api.unshareImage(imageId, account),
    print: printImage,
  });
  addCopy(image, ctx);
  addExport(image, ctx);
}

interface CreateOptions {
  instance: string;
  name: string;
  description?: string;
  file?: Map<string, string>;
  requireStopped?: boolean;
  wait: boolean;
  concurrency: number;
}

function addCreate(image: Command, ctx: CliContext): void {
  image
    .command('create')
    .description(
      'snapshot every volume of an instance at one moment, with its metadata; volumes on this host are read from --file, image-backed ones by the service, others by `volsnap agent` on their host',
    )
    .requiredOption('--instance <instance-id>', 'the instance')
    .requiredOption('--name <name>', 'a name for the image')
    .option('--description <text>', 'a description')
    .option(
      '--file <volume-id=path>',
      "a volume's bytes on this host: a disk image or block device (repeat for each volume)",
      collectFile,
    )
    .option('--require-stopped', 'refuse if the instance is marked running')
    .option('--no-wait', 'return once the snapshots are started')
    .option(
      '--concurrency <n>',
      'segment uploads at once per volume (memory: about (n+1) × 16 MiB)',
      option(positiveInteger),
      4,
    )
    .action((options: CreateOptions) => createImage(ctx, options));
}

async function createImage(ctx: CliContext, options: CreateOptions): Promise<void> {
  const { api, json } = ctx.client();
  const { io } = ctx;
  const files = options.file ?? new Map<string, string>();
  await checkFiles(api, options.instance, files);
  const created = await api.createImage({
    instanceId: options.instance,
    name: options.name,
    description: options.description,
    requireStopped: options.requireStopped,
  });
  const notes = created.crashConsistent ? [crashConsistentNote(created)] : [];
  if (!json) for (const note of notes) io.out(`Note: ${note}\n`);
  const written = await writeImageSnapshots(api, created, files, {
    concurrency: options.concurrency,
    onWrite: json ? undefined : (w) => io.out(`${describeWrite(w)}\n`),
  });
  const current = await api.getImage(created.imageId);
  const waiting = current.snapshots.filter((s) => s.state === 'queued');
  if (waiting.length > 0) {
    notes.push(
      `Waiting for the agent: run \`volsnap agent ${waiting.map((s) => `--volume ${s.volumeId}=<its device>`).join(' ')}\` on the host of ${waiting.map((s) => `${s.device} (${s.volumeId})`).join(', ')}, or create the image again with --file for them.`,
    );
  }
  const done = options.wait && waiting.length === 0 ? await waitForImage(api, created.imageId) : current;
  if (json) printJson(io.out, { ...done, report: { written, notes } });
  else {
    printImageSummary(io, done);
    if (waiting.length > 0) io.out(`Note: ${notes.at(-1)}\n`);
  }
  if (done.state === 'error') process.exitCode = 1;
}

/** Checked before anything is made: every --file names a volume of the instance on a host. */
async function checkFiles(api: ApiClient, instanceId: string, files: Map<string, string>): Promise<void> {
  if (files.size === 0) return;
  const instance = await api.getInstance(instanceId);
  for (const volumeId of files.keys()) {
    if (!instance.volumes.some((v) => v.volumeId === volumeId))
      throw new InvalidArgumentError(`volume ${volumeId} is not attached to ${instance.instanceId}`);
    const volume = await api.getVolume(volumeId);
    if (volume.imageUri)
      throw new InvalidArgumentError(
        `volume ${volumeId} is image-backed: the service reads it; give no --file for it`,
      );
  }
}

function addList(image: Command, ctx: CliContext): void {
  image
    .command('list')
    .description('your images in this region (or those shared with you), newest first')
    .option('--shared', "other accounts' images shared with yours")
    .action(async (options: { shared?: boolean }) => {
      const { api, json } = ctx.client();
      const rows = await firstOf(api.allImages(options.shared ? 'shared' : 'own'));
      printRows(
        ctx.io.out,
        json,
        rows,
        (i) => ({
          id: i.imageId,
          name: i.name,
          instance: `${i.instance.name} (${i.instance.instanceId})`,
          volumes: i.snapshots.length,
          size: formatSize(i.snapshots.reduce((sum, s) => sum + s.sizeBytes, 0)),
          state: i.state === 'pending' ? `pending ${i.progress ?? 0}%` : i.state,
          taken: i.takenAt,
          owner: i.accountId,
        }),
        options.shared
          ? ['id', 'owner', 'name', 'instance', 'volumes', 'size', 'state', 'taken']
          : ['id', 'name', 'instance', 'volumes', 'size', 'state', 'taken'],
      );
    });
}

function addDelete(image: Command, ctx: CliContext): void {
  image
    .command('delete')
    .argument('<image-id>')
    .description(
      'delete an image and its snapshots (as `snapshot delete` does), except those another image holds, that are shared or public, or that a copy or export reads: those are kept, and it says why',
    )
    .action(async (imageId: string) => {
      const { api, json } = ctx.client();
      const report = await api.deleteImage(imageId);
      if (json) {
        // Nothing remains of the image: {imageId, deleted: true}, and what became of its snapshots.
        const { imageId: _imageId, ...snapshots } = report;
        printJson(ctx.io.out, deletedRecord('imageId', imageId, { report: snapshots }));
      } else ctx.io.out(describeDeletion(report));
    });
}

function addLaunch(image: Command, ctx: CliContext): void {
  image
    .command('launch')
    .argument('<image-id>')
    .description(
      'register a new instance from a completed image: one new volume per snapshot, same devices, boot order and properties; network identity is not copied',
    )
    .requiredOption('--name <name>', 'a name for the new instance')
    .option(
      '--to <dir>',
      'restore each volume to <dir>/<device name>.img (e.g. vda.img), verifying every block',
    )
    .option('--force', 'replace files that exist in --to')
    .action((imageId: string, options: LaunchOptions) => launchImage(ctx, imageId, options));
}

interface LaunchOptions {
  name: string;
  to?: string;
  force?: boolean;
}

async function launchImage(ctx: CliContext, imageId: string, options: LaunchOptions): Promise<void> {
  const { api, json } = ctx.client();
  const { io } = ctx;
  const launch = await api.launchImage(imageId, { name: options.name });
  const restored = options.to ? await restoreLaunch(api, launch, options.to, { force: options.force }) : [];
  if (json) {
    // It makes an instance: its record, with what else the launch did under report.
    const { instance, ...made } = launch;
    printJson(io.out, { ...instance, report: { ...made, restored } });
    return;
  }
  io.out(
    `Launched ${launch.instance.instanceId} (${launch.instance.name}) from ${imageId}, marked stopped:\n`,
  );
  for (const v of launch.volumes) {
    const file = restored.find((r) => r.volumeId === v.volumeId);
    io.out(
      `  ${v.device}  ${v.volumeId}  ${formatSize(v.sizeBytes)}  from ${v.sourceSnapshotId}${file ? `  restored to ${file.file} (${file.fetchedBlocks} block(s) verified, ${file.zeroBlocks} zero)` : ''}\n`,
    );
  }
  for (const note of launch.notes) io.out(`Note: ${note}\n`);
  if (!options.to)
    io.out(
      `Its volumes' bytes are their snapshots': \`volsnap image launch … --to DIR\` or \`volsnap snapshot restore snap-… --to …\` writes them.\n`,
    );
}

function addCopy(image: Command, ctx: CliContext): void {
  image
    .command('copy')
    .argument('<image-id>', 'the source image')
    .description(
      'copy an image (yours or shared with you) from another region, or into your account, with all its snapshots; run against the destination region (--region)',
    )
    .requiredOption('--source-region <region>', 'where the source image is')
    .option('--name <name>', "a name (default: the source's)")
    .option('--description <text>', "a description (default: the source's)")
    .option('--no-wait', 'return once the copy is started')
    .action(
      async (
        sourceImageId: string,
        options: { sourceRegion: string; name?: string; description?: string; wait: boolean },
      ) => {
        const { api, json } = ctx.client();
        const started = await api.copyImage({
          sourceRegion: options.sourceRegion,
          sourceImageId,
          name: options.name,
          description: options.description,
        });
        const done = options.wait ? await waitForImage(api, started.imageId) : started;
        if (json) printJson(ctx.io.out, done);
        else {
          ctx.io.out(`Copy of ${sourceImageId} from ${options.sourceRegion} into ${done.region}:\n`);
          printImageSummary(ctx.io, done);
        }
        if (done.state === 'error') process.exitCode = 1;
      },
    );
}

function addExport(image: Command, ctx: CliContext): void {
  image
    .command('export')
    .argument('<image-id>')
    .description(
      'export every snapshot of a completed image (yours or shared with you), as `snapshot export` does',
    )
    .addOption(new Option('--format <format>', 'vsnap, raw or qcow2').choices(DISK_FORMATS).default('vsnap'))
    .option('--no-wait', 'return once the exports are started')
    .action(async (imageId: string, options: { format: DiskFormat; wait: boolean }) => {
      const { api, json } = ctx.client();
      const { io } = ctx;
      const started = await api.exportImage(imageId, options.format);
      const exports: ((typeof started.exports)[number] & { state: Export['state']; stateReason?: string })[] =
        [];
      for (const e of started.exports) {
        const read = () => api.getExport(e.exportId);
        const current = options.wait ? await pollUntil(read, (x) => x.state !== 'pending') : await read();
        exports.push({
          ...e,
          state: current.state,
          ...(current.stateReason ? { stateReason: current.stateReason } : {}),
        });
      }
      if (json) io.out(`${JSON.stringify({ imageId, exports }, null, 2)}\n`);
      else {
        io.out(`Exports of ${imageId} (${options.format}), one per volume:\n`);
        for (const e of exports)
          io.out(
            `  ${e.device}  ${e.volumeId}  ${e.snapshotId}  ${e.exportId}  ${e.state}${e.stateReason ? `: ${e.stateReason}` : ''}\n`,
          );
        io.out('Download them with `volsnap export url exp-…`.\n');
      }
      if (exports.some((e) => e.state === 'error')) process.exitCode = 1;
    });
}

/** An image as `image show` prints it, or its record with `--json`. */
function printImage(io: Io, json: boolean, image: Image): void {
  if (json) printRecord(io.out, image, true);
  else printImageSummary(io, image, true);
}

function describeWrite(w: ImageWrite): string {
  if (w.outcome === 'completed') return `${w.device} (${w.volumeId}): ${w.snapshotId} written from ${w.file}`;
  if (w.outcome === 'failed') return `${w.device} (${w.volumeId}): ${w.snapshotId} failed: ${w.reason}`;
  return `${w.device} (${w.volumeId}): ${w.snapshotId} was taken by an agent meanwhile`;
}

function printImageSummary(io: Io, i: Image, full = false): void {
  const record = {
    id: i.imageId,
    name: i.name,
    description: full ? i.description || '-' : undefined,
    state: i.state === 'pending' ? `pending ${i.progress ?? 0}%` : i.state,
    reason: i.stateReason,
    instance: `${i.instance.name} (${i.instance.instanceId}), ${i.instance.state} when taken${i.crashConsistent ? ': crash-consistent' : ''}`,
    properties: full
      ? Object.entries(i.instance.properties)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ') || '-'
      : undefined,
    taken: i.takenAt,
    group: i.groupId,
    'copied from': i.copiedFrom ? `${i.copiedFrom.imageId} (${i.copiedFrom.region})` : undefined,
    owner: full ? i.accountId : undefined,
    region: i.region,
    'shared with': i.sharedWith?.join(', '),
  };
  printRecord(io.out, Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)), false);
  printTable(
    io.out,
    i.snapshots.map((s) => ({
      device: s.device,
      boot: s.bootIndex,
      volume: s.volumeId,
      snapshot: s.snapshotId,
      size: formatSize(s.sizeBytes),
      state: `${s.state ?? '-'}${s.state === 'pending' ? ` ${s.progress ?? 0}%` : ''}${s.stateReason ? `: ${s.stateReason}` : ''}`,
    })),
    ['device', 'boot', 'volume', 'snapshot', 'size', 'state'],
    false,
  );
}

function describeDeletion(r: ImageDeletion): string {
  const lines = [`Deleted ${r.imageId}.`];
  for (const s of r.recycled)
    lines.push(
      `  ${s.device} ${s.snapshotId}: in the recycle bin${s.purgeAt ? ` until ${s.purgeAt}` : ''} (volsnap snapshot undelete ${s.snapshotId})`,
    );
  for (const s of r.deleted) lines.push(`  ${s.device} ${s.snapshotId}: deleted`);
  for (const s of r.kept) lines.push(`  ${s.device} ${s.snapshotId}: kept, because ${s.reasons.join('; ')}`);
  for (const s of r.gone) lines.push(`  ${s.device} ${s.snapshotId}: already gone`);
  return `${lines.join('\n')}\n`;
}
