import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ApiClient, type Snapshot, type Volume } from '../client/api-client.ts';
import { type ConfigFlags, resolveConfig } from '../client/config.ts';
import { createSnapshotFromFile } from '../client/snapshot-create.ts';
import { restoreSnapshot } from '../client/snapshot-restore.ts';
import { uploadFile } from '../client/upload.ts';
import { VERSION } from '../config/runtime.ts';
import { DISK_FORMATS, type DiskFormat } from '../core/format/disk-format.ts';
import { terminalSafe } from '../core/shared/text.ts';
import { addAccountCommands } from './account-commands.ts';
import { option, positiveInteger } from './args.ts';
import { describeFailure, formatFailure } from './errors.ts';
import { addExportCommands } from './export-commands.ts';
import { addImageCommands } from './image-commands.ts';
import { addInstanceCommands } from './instance-commands.ts';
import { addMaintenanceCommands } from './maintenance-commands.ts';
import { deletedRecord, printJson, printRecord, printTable } from './output.ts';
import { addPolicyCommands } from './policy-commands.ts';
import { progressBar } from './progress.ts';
import { collectTag, formatSize, parseVolumeSize } from './units.ts';

interface GlobalOptions extends ConfigFlags {
  json?: boolean;
  verbose?: boolean;
}

/** Builds the `volsnap` program. `io` is injectable so tests can run commands in-process. */
export function buildProgram(
  rawIo: { out: (text: string) => void; err: (text: string) => void } = defaultIo(),
): Command {
  // What the CLI prints can hold other accounts' text (public snapshots, shared images): no control
  // character or bidi override reaches the terminal raw, in tables, `show` or JSON alike.
  const io = {
    out: (text: string) => rawIo.out(terminalSafe(text)),
    err: (text: string) => rawIo.err(terminalSafe(text)),
  };
  const program = new Command('volsnap')
    .description('Volume snapshots: incremental, sparse, verifiable, across regions and accounts.')
    .version(VERSION)
    .addOption(new Option('--region <region>', 'region to talk to').env('VOLSNAP_REGION'))
    .addOption(
      new Option('--endpoint <url>', 'API endpoint (default: from the config file)').env('VOLSNAP_ENDPOINT'),
    )
    .addOption(
      new Option('--account <name>', 'account from the config file to act as').env('VOLSNAP_ACCOUNT'),
    )
    .option('--config <path>', 'config file (default: .volsnap/config.json, then ~/.volsnap/config.json)')
    .option('--json', 'print JSON instead of tables (errors too)')
    .option('--verbose', 'print the stack of an error the CLI did not expect (or VOLSNAP_DEBUG=1)')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    // Usage errors are thrown (to main), not printed and exited on: every failure prints one way.
    .exitOverride();

  const client = () => {
    const options = program.opts<GlobalOptions>();
    const config = resolveConfig(options);
    return {
      api: new ApiClient({ endpoint: config.endpoint, apiKey: config.apiKey }),
      config,
      json: options.json ?? false,
    };
  };

  program
    .command('health')
    .description("show which region answers and the service's version")
    .action(async () => {
      const { api, json } = client();
      printRecord(io.out, await api.health(), json);
    });

  const volume = program.command('volume').description('register, list, show and delete volumes');
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
        const { api, json } = client();
        const created = await api.createVolume({
          name: options.name,
          sizeBytes: options.size,
          tags: options.tag,
          imageUri: options.image,
          sourceSnapshotId: options.snapshot,
        });
        printRecord(io.out, json ? created : volumeRecord(created), json);
      },
    );
  volume
    .command('list')
    .description('list your volumes in this region, newest first')
    .option('--name <prefix>', 'only volumes whose name starts with this')
    .option('--tag <key=value>', 'only volumes with this tag (repeat to require several)', option(collectTag))
    .option('--limit <n>', 'at most this many', option(positiveInteger))
    .action(async (options: { name?: string; tag?: Record<string, string>; limit?: number }) => {
      const { api, json } = client();
      const rows = [];
      for await (const v of api.allVolumes({ name: options.name, tags: options.tag })) {
        if (options.limit !== undefined && rows.length >= options.limit) break;
        rows.push(v);
      }
      printTable(
        io.out,
        json
          ? rows
          : rows.map((v) => ({
              id: v.volumeId,
              name: v.name,
              size: formatSize(v.sizeBytes),
              created: v.createdAt,
              tags: formatTags(v.tags),
            })),
        ['id', 'name', 'size', 'created', 'tags'],
        json,
      );
    });
  volume
    .command('show')
    .description("show a volume's fields")
    .argument('<volume-id>')
    .action(async (volumeId: string) => {
      const { api, json } = client();
      const found = await api.getVolume(volumeId);
      printRecord(io.out, json ? found : volumeRecord(found), json);
    });
  volume
    .command('delete')
    .description(
      'delete a volume (refused while it has snapshots outside the recycle bin; those in it stay there, recoverable)',
    )
    .argument('<volume-id>')
    .action(async (volumeId: string) => {
      const { api, json } = client();
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

  const snapshot = program
    .command('snapshot')
    .description('create, list, show, update, delete, restore and compare snapshots');
  snapshot
    .command('create')
    .description(
      'snapshot a volume from its file or block device (only changed, non-zero blocks are uploaded)',
    )
    .requiredOption('--volume <volume-id>', 'the volume')
    .option(
      '--file <path>',
      'its bytes: a disk image or a block device (sync or stop writers first: a snapshot of a busy device is crash-consistent); not for image-backed volumes, which the service reads itself',
    )
    .option('--no-wait', 'for an image-backed volume: return once the snapshot is queued')
    .option(
      '--queue',
      'for a volume on a host: queue the snapshot for `volsnap agent` running there (it must take it within an hour)',
    )
    .option('--name <name>', 'a name')
    .option('--description <text>', 'a description')
    .option('--tag <key=value>', 'a tag (repeat for more)', option(collectTag))
    .option('--client-token <token>', 'makes retries safe: the same token returns the same snapshot')
    .option(
      '--concurrency <n>',
      'segment uploads at once (memory: about (n+1) × 16 MiB)',
      option(positiveInteger),
      4,
    )
    .action(
      async (options: {
        volume: string;
        file?: string;
        wait: boolean;
        name?: string;
        description?: string;
        tag?: Record<string, string>;
        clientToken?: string;
        concurrency: number;
        queue?: boolean;
      }) => {
        const { api, json } = client();
        const request = {
          volumeId: options.volume,
          name: options.name,
          description: options.description,
          tags: options.tag,
          clientToken: options.clientToken,
        };
        if (options.queue) {
          const queued = await api.createSnapshot({ ...request, queued: true });
          if (json) printJson(io.out, queued);
          else
            io.out(
              `${queued.snapshotId} ${queued.state}${queued.state === 'queued' ? `: waiting for \`volsnap agent --volume ${queued.volumeId}=…\` until ${queued.deadline}` : ''}\n`,
            );
          return;
        }
        if (!options.file) {
          // An image-backed volume: the service reads the image; wait for its worker.
          const volume = await api.getVolume(options.volume);
          if (!volume.imageUri)
            throw new InvalidArgumentError(
              `volume ${volume.volumeId} is on a host: give --file with its bytes`,
            );
          const created = await api.createSnapshot(request);
          const done = options.wait
            ? await waitForSnapshot(api, created.snapshotId, progressBar('snapshot', !json))
            : created;
          if (json) printJson(io.out, done);
          else {
            io.out(`${done.snapshotId} ${done.state}${done.stateReason ? `: ${done.stateReason}` : ''}\n`);
            if (done.stats) {
              io.out(
                `blocks: ${done.stats.blockCount} non-zero of ${done.volumeSize / done.blockSize} (${done.stats.newBlocks} written, ${done.stats.reusedBlocks} from parent), ${formatSize(done.stats.newBytes)} stored\n`,
              );
            }
          }
          if (done.state === 'error') process.exitCode = 1;
          return;
        }
        const bar = progressBar('snapshot', !json);
        const started = Date.now();
        const result = await createSnapshotFromFile(api, {
          ...request,
          file: options.file,
          concurrency: options.concurrency,
          onProgress: (p) => bar.update(p.bytesRead, p.totalBytes),
        }).finally(() => bar.stop());
        const seconds = (Date.now() - started) / 1000;
        if (json) {
          printJson(io.out, {
            ...result.snapshot,
            report: { ...result.report, written: result.written, seconds },
          });
          return;
        }
        const r = result.report;
        io.out(
          `${result.snapshot.snapshotId} ${result.snapshot.state}${result.written ? '' : ' (already, for this client token)'}\n`,
        );
        if (result.written) {
          io.out(
            `blocks: ${r.blocks} (${r.newBlocks} uploaded${r.rewrittenBlocks ? `, ${r.rewrittenBlocks} of them unchanged but moved out of mostly-dead segments` : ''}, ${r.reusedBlocks} reused from parent, ${r.duplicateBlocks} duplicate, ${r.zeroBlocks} zero)\n` +
              `bytes uploaded: ${formatSize(r.newStoredBytes)} stored for ${formatSize(r.newPlainBytes)} of data, in ${r.segments} segment(s), ${seconds.toFixed(1)} s\n`,
          );
        }
      },
    );
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
    .action(
      async (options: {
        shared?: boolean;
        public?: boolean;
        recycleBin?: boolean;
        volume?: string;
        state?: Snapshot['state'];
        name?: string;
        tag?: Record<string, string>;
        limit?: number;
      }) => {
        const { api, json } = client();
        const rows: Snapshot[] = [];
        const scope = options.shared ? 'shared' : options.public ? 'public' : undefined;
        for await (const s of api.allSnapshots({
          scope,
          volumeId: options.volume,
          state: options.recycleBin ? 'recycled' : options.state,
          name: options.name,
          tags: options.tag,
        })) {
          if (options.limit !== undefined && rows.length >= options.limit) break;
          rows.push(s);
        }
        printTable(
          io.out,
          json
            ? rows
            : rows.map((s) => ({
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
              })),
          scope
            ? ['id', 'owner', 'name', 'size', 'state', 'created']
            : ['id', 'volume', 'name', 'size', 'stored', 'state', 'created'],
          json,
        );
      },
    );
  snapshot
    .command('show')
    .description("show a snapshot's fields")
    .argument('<snapshot-id>')
    .action(async (snapshotId: string) => {
      const { api, json } = client();
      const found = await api.getSnapshot(snapshotId);
      printRecord(io.out, json ? found : snapshotRecord(found), json);
    });
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
        const { api, json } = client();
        const updated = await api.updateSnapshot(snapshotId, {
          name: options.name,
          description: options.description,
          tags: options.tag,
        });
        printRecord(io.out, json ? updated : snapshotRecord(updated), json);
      },
    );
  snapshot
    .command('delete')
    .description(
      "delete a snapshot: a completed one waits in the recycle bin for the account's retention (7 days unless set otherwise), recoverable with `snapshot undelete`; newer snapshots of the volume keep every block they need",
    )
    .argument('<snapshot-id>')
    .action(async (snapshotId: string) => {
      const { api, json } = client();
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
  snapshot
    .command('undelete')
    .description(
      'take a snapshot out of the recycle bin, whole (list them with `snapshot list --recycle-bin`)',
    )
    .argument('<snapshot-id>')
    .action(async (snapshotId: string) => {
      const { api, json } = client();
      const restored = await api.undeleteSnapshot(snapshotId);
      if (json) printJson(io.out, restored);
      else io.out(`Recovered ${snapshotId}: ${restored.state}.\n`);
    });
  snapshot
    .command('copy')
    .description(
      'copy a snapshot (yours, shared with you, or public) from another region, or into your account, as a new snapshot of yours; run against the destination region (--region)',
    )
    .argument('<snapshot-id>', 'the source snapshot')
    .requiredOption('--source-region <region>', 'where the source snapshot is')
    .option('--name <name>', "a name (default: the source's)")
    .option('--description <text>', "a description (default: the source's)")
    .option('--tag <key=value>', "a tag (repeat for more; default: the source's tags)", option(collectTag))
    .option('--client-token <token>', 'makes retries safe: the same token returns the same copy')
    .option('--no-wait', 'return once the copy is started')
    .action(
      async (
        sourceSnapshotId: string,
        options: {
          sourceRegion: string;
          name?: string;
          description?: string;
          tag?: Record<string, string>;
          clientToken?: string;
          wait: boolean;
        },
      ) => {
        const { api, json } = client();
        const started = Date.now();
        const created = await api.copySnapshot({
          sourceRegion: options.sourceRegion,
          sourceSnapshotId,
          name: options.name,
          description: options.description,
          tags: options.tag,
          clientToken: options.clientToken,
        });
        // A new copy is always answered pending: one that is not was made before, for this token.
        const already = created.state !== 'pending';
        const done = options.wait
          ? await waitForSnapshot(api, created.snapshotId, progressBar('copy', !json))
          : created;
        const seconds = (Date.now() - started) / 1000;
        if (json) {
          printJson(io.out, { ...done, report: { written: !already, seconds } });
        } else {
          io.out(
            `${done.snapshotId} ${done.state}${done.stateReason ? `: ${done.stateReason}` : ''} (copy of ${sourceSnapshotId} from ${options.sourceRegion} into ${done.region}${already ? '; already, for this client token' : ''})
`,
          );
          if (done.stats && !already) {
            io.out(
              `blocks: ${done.stats.blockCount} non-zero of ${done.volumeSize / done.blockSize}: ${done.stats.newBlocks} moved (${formatSize(done.stats.newBytes)} stored), ${done.stats.reusedBlocks} reused from the previous copy${done.parentSnapshotId ? ` ${done.parentSnapshotId}` : ''}; ${seconds.toFixed(1)} s
`,
            );
          }
        }
        if (done.state === 'error') process.exitCode = 1;
      },
    );
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
    .action(
      async (options: {
        url?: string;
        file?: string;
        format: DiskFormat;
        size?: number;
        name?: string;
        description?: string;
        tag?: Record<string, string>;
        clientToken?: string;
        wait: boolean;
      }) => {
        const { api, json } = client();
        if ((options.url === undefined) === (options.file === undefined))
          throw new InvalidArgumentError('give --url, or --file');
        const upload = options.file
          ? await uploadFile(api, options.file, progressBar('upload', !json))
          : undefined;
        const started = await api.importSnapshot({
          url: options.url,
          upload,
          format: options.format,
          sizeBytes: options.size,
          name: options.name,
          description: options.description,
          tags: options.tag,
          clientToken: options.clientToken,
        });
        const done = options.wait
          ? await waitForSnapshot(api, started.snapshotId, progressBar('import', !json))
          : started;
        if (json) printJson(io.out, done);
        else {
          io.out(
            `${done.snapshotId} ${done.state}${done.stateReason ? `: ${done.stateReason}` : ''} (volume ${done.volumeId})\n`,
          );
          if (done.stats)
            io.out(
              `blocks: ${done.stats.blockCount} non-zero of ${done.volumeSize / done.blockSize}, ${formatSize(done.stats.newBytes)} stored\n`,
            );
        }
        if (done.state === 'error') process.exitCode = 1;
      },
    );
  snapshot
    .command('share')
    .description('let another account read a completed snapshot: list, restore, make volumes from it')
    .argument('<snapshot-id>')
    .argument('<account>', "the other account's id or name")
    .action(async (snapshotId: string, account: string) => {
      const { api, json } = client();
      const shared = await api.shareSnapshot(snapshotId, account);
      printRecord(io.out, json ? shared : snapshotRecord(shared), json);
    });
  snapshot
    .command('unshare')
    .description('take a share back: the account can no longer read the snapshot, from its next request on')
    .argument('<snapshot-id>')
    .argument('<account>', "the other account's id or name")
    .action(async (snapshotId: string, account: string) => {
      const { api, json } = client();
      const updated = await api.unshareSnapshot(snapshotId, account);
      printRecord(io.out, json ? updated : snapshotRecord(updated), json);
    });
  snapshot
    .command('publish')
    .description('make a completed snapshot readable by every account')
    .argument('<snapshot-id>')
    .action(async (snapshotId: string) => {
      const { api, json } = client();
      const updated = await api.publishSnapshot(snapshotId);
      printRecord(io.out, json ? updated : snapshotRecord(updated), json);
    });
  snapshot
    .command('unpublish')
    .description('make a public snapshot private again (its shares with named accounts stay)')
    .argument('<snapshot-id>')
    .action(async (snapshotId: string) => {
      const { api, json } = client();
      const updated = await api.unpublishSnapshot(snapshotId);
      printRecord(io.out, json ? updated : snapshotRecord(updated), json);
    });
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
    .action(
      async (
        snapshotId: string,
        options: { to: string; resume?: boolean; force?: boolean; concurrency: number },
      ) => {
        const { api, json } = client();
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
        if (json) printJson(io.out, { snapshotId, to: options.to, report: { ...report, seconds } });
        else
          io.out(
            `Restored ${snapshotId} to ${options.to}: ${report.fetchedBlocks} block(s) fetched and verified, ${report.skippedBlocks} already there, ${report.zeroBlocks} zero (left as holes); ${formatSize(report.bytesDownloaded)} in ${report.requests} request(s), ${seconds.toFixed(1)} s.\n`,
          );
      },
    );
  snapshot
    .command('diff')
    .description('blocks changed between two snapshots of the same volume')
    .argument('<from-snapshot-id>')
    .argument('<to-snapshot-id>')
    .action(async (from: string, to: string) => {
      const { api, json } = client();
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

  addAccountCommands(program, client, io);
  addExportCommands(program, snapshot, client, io);
  addPolicyCommands(program, client, io);
  addMaintenanceCommands(program, client, io);
  addInstanceCommands(program, client, io);
  addImageCommands(program, client, io);
  return program;
}

/** Polls a snapshot written server-side until it is completed or failed, showing its progress. */
async function waitForSnapshot(
  api: ApiClient,
  snapshotId: string,
  bar: ReturnType<typeof progressBar>,
): Promise<Snapshot> {
  try {
    for (let delay = 250; ; delay = Math.min(2000, delay * 1.5)) {
      const snapshot = await api.getSnapshot(snapshotId);
      bar.update((snapshot.progress * snapshot.volumeSize) / 100, snapshot.volumeSize);
      if (snapshot.state !== 'pending' && snapshot.state !== 'queued') return snapshot;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  } finally {
    bar.stop();
  }
}

function snapshotRecord(s: Snapshot) {
  return {
    id: s.snapshotId,
    name: s.name || '-',
    description: s.description || '-',
    volume: s.volumeId,
    size: `${formatSize(s.volumeSize)} (${s.volumeSize} bytes)`,
    stored: s.stats ? `${formatSize(s.stats.storedBytes)} (${s.stats.storedBytes} bytes)` : '-',
    blocks: s.stats
      ? `${s.stats.blockCount} non-zero of ${s.volumeSize / s.blockSize} (${s.stats.newBlocks} new, ${s.stats.reusedBlocks} from parent)`
      : '-',
    state: s.state,
    reason: s.stateReason,
    'purged at': s.purgeAt,
    'take by': s.state === 'queued' ? s.deadline : undefined,
    progress: `${s.progress}%`,
    parent: s.parentSnapshotId,
    'copied from': s.copiedFrom ? `${s.copiedFrom.snapshotId} (${s.copiedFrom.region})` : undefined,
    created: s.createdAt,
    completed: s.completedAt,
    tags: formatTags(s.tags),
    owner: s.accountId,
    region: s.region,
    public: s.public ? 'yes' : undefined,
    'shared with': s.sharedWith?.join(', '),
  };
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

function formatTags(tags: Record<string, string>): string {
  const text = Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return text || '-';
}

function defaultIo() {
  return {
    out: (text: string) => process.stdout.write(text),
    err: (text: string) => process.stderr.write(text),
  };
}

/**
 * Ends the process once what it wrote is flushed. fetch keeps its kept-alive connection's timers
 * running for about half a second after the last request: a CLI that waited for them would spend
 * more time exiting than most commands take.
 */
export function exitWhenFlushed(): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit()));
}

/**
 * Runs the CLI. Every failure is one `error: <code>: <message>` line on stderr (a JSON object with
 * `--json`), never a stack trace unless `--verbose` or `VOLSNAP_DEBUG=1` asks for it; the exit code
 * is 2 for a command line or configuration to fix, 1 otherwise.
 */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  // The command that failed, for a usage error to point at its help.
  let failing: Command | undefined;
  const track = (command: Command) => {
    // Commander writes errors, and the help of a group given no command, here: main prints them.
    command.configureOutput({ outputError: () => (failing = command), writeErr: () => undefined });
    const help = command.help.bind(command);
    command.help = ((context?: { error: boolean }) => {
      if (context?.error) failing = command;
      return help(context);
    }) as Command['help'];
    for (const sub of command.commands) track(sub);
  };
  track(program);
  program.hook('preAction', (_program, action) => {
    failing = action;
  });
  const report = (error: unknown) => {
    const options = program.opts<GlobalOptions>();
    const json = options.json ?? argv.slice(2).includes('--json');
    const failure = describeFailure(error, {
      command: failing && failing !== program ? commandPath(failing) : undefined,
      subcommands: failing?.commands.map((c) => c.name()).filter((name) => name !== 'help'),
      verbose: options.verbose === true || process.env.VOLSNAP_DEBUG === '1',
    });
    if (error instanceof CommanderError) process.exitCode = failure?.exitCode ?? error.exitCode;
    if (!failure) return;
    process.stderr.write(terminalSafe(formatFailure(failure, json)));
    process.exitCode = failure.exitCode;
  };
  // Work that outlives the command's promise (a stream's error) fails the same way.
  const late = (error: unknown) => {
    report(error);
    exitWhenFlushed();
  };
  process.on('uncaughtException', late);
  process.on('unhandledRejection', late);
  try {
    await program.parseAsync(argv);
  } catch (error) {
    report(error);
  }
}

/** `volume create` for that command. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
