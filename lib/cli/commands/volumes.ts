import { type Command, InvalidArgumentError } from 'commander';
import type { Volume } from '../../client/api-client.ts';
import { option, positiveInteger } from '../args.ts';
import type { CliContext } from '../context.ts';
import { deletedRecord, printAnswer, printJson, printRows } from '../output.ts';
import { firstOf } from '../reading.ts';
import { addRecordCommand } from '../record-commands.ts';
import { collectTag, formatSize, formatTags, parseVolumeSize } from '../units.ts';

/** `volsnap volume create|list|show|delete`. */
export function addVolumeCommands(program: Command, ctx: CliContext): void {
  const volume = program.command('volume').description('register, list, show and delete volumes');
  addCreate(volume, ctx);
  addList(volume, ctx);
  addRecordCommand(volume, ctx, {
    name: 'show',
    description: "show a volume's fields",
    args: ['<volume-id>'],
    call: (api, volumeId) => api.getVolume(volumeId),
    view: volumeRecord,
  });
  addDelete(volume, ctx);
}

function addCreate(volume: Command, ctx: CliContext): void {
  volume
    .command('create')
    .description('register a volume (its bytes stay on your host, or in the image object given)')
    .requiredOption('--name <name>', 'a name for the volume')
    .option(
      '--size <size>',
      'its size: bytes or 64MiB, 10GiB… (a multiple of 512 KiB; from a snapshot: at least its size)',
      option(parseVolumeSize),
    )
    .option('--snapshot <snapshot-id>', 'make the volume from this snapshot (its first parent)')
    .option('--tag <key=value>', 'a tag (repeat for more)', option(collectTag))
    .option('--image <s3://bucket/key>', 'the object holding the bytes of an image-backed volume')
    .action(
      async (options: {
        name: string;
        size?: number;
        snapshot?: string;
        tag?: Record<string, string>;
        image?: string;
      }) => {
        if (options.size === undefined && !options.snapshot)
          throw new InvalidArgumentError('give --size, or --snapshot to make the volume from a snapshot');
        const { api, json } = ctx.client();
        const created = await api.createVolume({
          name: options.name,
          sizeBytes: options.size,
          tags: options.tag,
          imageUri: options.image,
          sourceSnapshotId: options.snapshot,
        });
        printAnswer(ctx.io.out, json, created, volumeRecord);
      },
    );
}

function addList(volume: Command, ctx: CliContext): void {
  volume
    .command('list')
    .description('list your volumes in this region, newest first')
    .option('--name <prefix>', 'only volumes whose name starts with this')
    .option('--tag <key=value>', 'only volumes with this tag (repeat to require several)', option(collectTag))
    .option('--limit <n>', 'at most this many', option(positiveInteger))
    .action(async (options: { name?: string; tag?: Record<string, string>; limit?: number }) => {
      const { api, json } = ctx.client();
      const rows = await firstOf(api.allVolumes({ name: options.name, tags: options.tag }), options.limit);
      printRows(
        ctx.io.out,
        json,
        rows,
        (v) => ({
          id: v.volumeId,
          name: v.name,
          size: formatSize(v.sizeBytes),
          created: v.createdAt,
          tags: formatTags(v.tags),
        }),
        ['id', 'name', 'size', 'created', 'tags'],
      );
    });
}

function addDelete(volume: Command, ctx: CliContext): void {
  volume
    .command('delete')
    .description(
      'delete a volume (refused while it has snapshots outside the recycle bin; those in it stay there, recoverable)',
    )
    .argument('<volume-id>')
    .action(async (volumeId: string) => {
      const { api, json } = ctx.client();
      const { io } = ctx;
      const { recycledSnapshots } = await api.deleteVolume(volumeId);
      if (json) printJson(io.out, deletedRecord('volumeId', volumeId, { recycledSnapshots }));
      else {
        io.out(`Deleted ${volumeId}.\n`);
        if (recycledSnapshots.length > 0)
          io.out(
            `Its ${recycledSnapshots.length} snapshot(s) in the recycle bin stay there, recoverable until purged: ${recycledSnapshots.map((s) => `${s.snapshotId} (until ${s.purgeAt ?? '?'})`).join(', ')}. \`volsnap snapshot undelete <id>\` recovers one; it restores, and makes volumes, without this volume.\n`,
          );
      }
    });
}

function volumeRecord(v: Volume) {
  return {
    id: v.volumeId,
    name: v.name,
    size: `${formatSize(v.sizeBytes)} (${v.sizeBytes} bytes)`,
    region: v.region,
    owner: v.accountId,
    created: v.createdAt,
    tags: formatTags(v.tags),
    image: v.imageUri,
    'from snapshot': v.sourceSnapshotId,
  };
}
