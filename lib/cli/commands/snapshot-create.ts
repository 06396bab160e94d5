import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { createSnapshotFromFile } from '../../client/snapshot-create.ts';
import { option, positiveInteger } from '../args.ts';
import type { CliContext, Session } from '../context.ts';
import { printJson } from '../output.ts';
import { progressBar } from '../progress.ts';
import { retryNote, waitForSnapshot } from '../reading.ts';
import { stateLine } from '../records.ts';
import { collectTag, formatSize } from '../units.ts';

interface CreateOptions {
  volume: string;
  file?: string;
  wait: boolean;
  name?: string;
  description?: string;
  tag?: Record<string, string>;
  clientToken?: string;
  concurrency: number;
  threads?: number;
  queue?: boolean;
}

/** What every `snapshot create` asks for, however the snapshot is written. */
type CreateRequest = Parameters<Session['api']['createSnapshot']>[0];

/** `volsnap snapshot create`: from a file here, by the service (image-backed), or queued for an agent. */
export function addSnapshotCreate(snapshot: Command, ctx: CliContext): void {
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
    .option(
      '--threads <n>',
      'worker threads hashing and compressing blocks (default: the cores, at most 4)',
      option(positiveInteger),
    )
    .action((options: CreateOptions) => {
      const session = ctx.client();
      const request = {
        volumeId: options.volume,
        name: options.name,
        description: options.description,
        tags: options.tag,
        clientToken: options.clientToken,
      };
      if (options.queue) return queueSnapshot(ctx, session, request);
      if (!options.file) return snapshotByService(ctx, session, request, options.wait);
      return snapshotFromFile(ctx, session, request, options.file, {
        concurrency: options.concurrency,
        hashThreads: options.threads,
      });
    });
}

/** `--queue`: the snapshot waits for `volsnap agent` on the volume's host. */
async function queueSnapshot(ctx: CliContext, { api, json }: Session, request: CreateRequest): Promise<void> {
  const queued = await api.createSnapshot({ ...request, queued: true });
  if (json) printJson(ctx.io.out, queued);
  else
    ctx.io.out(
      `${queued.snapshotId} ${queued.state}${queued.state === 'queued' ? `: waiting for \`volsnap agent --volume ${queued.volumeId}=…\` until ${queued.deadline}` : ''}\n`,
    );
}

/** An image-backed volume: the service reads the image; wait for its worker (unless `--no-wait`). */
async function snapshotByService(
  ctx: CliContext,
  { api, json }: Session,
  request: CreateRequest,
  wait: boolean,
): Promise<void> {
  const volume = await api.getVolume(request.volumeId);
  if (!volume.imageUri)
    throw new InvalidArgumentError(`volume ${volume.volumeId} is on a host: give --file with its bytes`);
  const created = await api.createSnapshot(request);
  const done = wait
    ? await waitForSnapshot(api, created.snapshotId, progressBar('snapshot', !json))
    : created;
  if (json) printJson(ctx.io.out, done);
  else {
    ctx.io.out(`${stateLine(done)}\n`);
    if (done.stats) {
      ctx.io.out(
        `blocks: ${done.stats.blockCount} non-zero of ${done.volumeSize / done.blockSize} (${done.stats.newBlocks} written, ${done.stats.reusedBlocks} from parent), ${formatSize(done.stats.newBytes)} stored\n`,
      );
    }
  }
  if (done.state === 'error') process.exitCode = 1;
}

/** `--file`: this host reads the volume's bytes and uploads what changed. */
async function snapshotFromFile(
  ctx: CliContext,
  { api, json, config }: Session,
  request: CreateRequest,
  file: string,
  work: { concurrency: number; hashThreads?: number | undefined },
): Promise<void> {
  const bar = progressBar('snapshot', !json);
  const started = Date.now();
  const result = await createSnapshotFromFile(api, {
    ...request,
    file,
    ...work,
    // With a client token a rerun writes the same snapshot: it uploads only what is not stored yet.
    ...(request.clientToken ? { journalDir: journalDir(config.source) } : {}),
    onProgress: (p) => {
      bar.note(undefined);
      bar.update(p.bytesRead, p.totalBytes);
    },
    onRetry: (error, waitMs) => bar.note(retryNote(error, waitMs)),
  }).finally(() => bar.stop());
  const seconds = (Date.now() - started) / 1000;
  if (json) {
    printJson(ctx.io.out, {
      ...result.snapshot,
      report: {
        ...result.report,
        written: result.written,
        uploadedSegments: result.segments.uploaded,
        alreadyStoredSegments: result.segments.alreadyStored,
        seconds,
      },
    });
    return;
  }
  const r = result.report;
  ctx.io.out(
    `${result.snapshot.snapshotId} ${result.snapshot.state}${result.written ? '' : ' (already, for this client token)'}\n`,
  );
  if (result.written) {
    ctx.io.out(
      `blocks: ${r.blocks} (${r.newBlocks} uploaded${r.rewrittenBlocks ? `, ${r.rewrittenBlocks} of them unchanged but moved out of mostly-dead segments` : ''}, ${r.reusedBlocks} reused from parent, ${r.duplicateBlocks} duplicate, ${r.zeroBlocks} zero)\n` +
        `bytes uploaded: ${formatSize(r.newStoredBytes)} stored for ${formatSize(r.newPlainBytes)} of data, in ${r.segments} segment(s), ${seconds.toFixed(1)} s\n` +
        (result.segments.alreadyStored
          ? `segments: ${result.segments.uploaded} uploaded, ${result.segments.alreadyStored} already stored by an earlier run with this client token\n`
          : ''),
    );
  }
}

/**
 * Where a snapshot's upload journal is kept (lib/client/upload-journal.ts): beside the config file
 * in use (`uploads/`), else in ~/.volsnap/uploads.
 */
function journalDir(configSource: string): string {
  return existsSync(configSource)
    ? join(dirname(resolve(configSource)), 'uploads')
    : join(homedir(), '.volsnap', 'uploads');
}
