import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { settle } from '../../client/poll.ts';
import { option } from '../args.ts';
import type { CliContext } from '../context.ts';
import { printJson } from '../output.ts';
import { progressBar } from '../progress.ts';
import { waitForSnapshot } from '../reading.ts';
import { stateLine } from '../records.ts';
import { collectTag, formatSize } from '../units.ts';

interface CopyOptions {
  sourceRegion: string;
  name?: string;
  description?: string;
  tag?: Record<string, string>;
  clientToken?: string;
  wait: boolean;
}

/** `volsnap snapshot copy`: across regions, or into the caller's account. */
export function addCopyCommand(snapshot: Command, ctx: CliContext): void {
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
    .action((sourceSnapshotId: string, options: CopyOptions) => copySnapshot(ctx, sourceSnapshotId, options));
}

async function copySnapshot(ctx: CliContext, sourceSnapshotId: string, options: CopyOptions): Promise<void> {
  const { api, json } = ctx.client();
  const { io } = ctx;
  const started = Date.now();
  const request = {
    sourceRegion: options.sourceRegion,
    sourceSnapshotId,
    name: options.name,
    description: options.description,
    tags: options.tag,
    // A token of its own when none is given: a copy whose answer is lost is asked for again with
    // it, and the service answers the copy the first request started (not a second copy).
    clientToken: options.clientToken ?? randomUUID(),
  };
  const created = await settle(
    () => api.copySnapshot(request),
    async () => undefined,
    { sleep: (ms) => api.wait(ms) },
  );
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
      `${stateLine(done)} (copy of ${sourceSnapshotId} from ${options.sourceRegion} into ${done.region}${already ? '; already, for this client token' : ''})
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
}
