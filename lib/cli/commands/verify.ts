import type { Command } from 'commander';
import type { Verification } from '../../client/api-client.ts';
import type { CliContext } from '../context.ts';
import { EXIT_CODES } from '../errors.ts';
import { printAnswer } from '../output.ts';
import { progressBar } from '../progress.ts';
import { waitForVerification } from '../reading.ts';
import { formatSize } from '../units.ts';

/** `volsnap snapshot verify <id>`: the server re-reads every block; damage exits with the data code. */
export function addVerifyCommand(snapshot: Command, ctx: CliContext): void {
  snapshot
    .command('verify')
    .description(
      'have the service re-read every block of a completed snapshot of yours and check it against its SHA-256 (exit 6 when a block is bad)',
    )
    .argument('<snapshot-id>')
    .option('--no-wait', 'return the verification id once it is started')
    .action(async (snapshotId: string, options: { wait: boolean }) => {
      const { api, json } = ctx.client();
      const started = await api.verifySnapshot(snapshotId);
      if (!options.wait) {
        printAnswer(ctx.io.out, json, started, (v) => ({ verification: v.verificationId, state: v.state }));
        return;
      }
      const done = await waitForVerification(api, started.verificationId, progressBar('verify', !json));
      printAnswer(ctx.io.out, json, done, verificationRecord);
      if (!json) for (const line of badBlockLines(done)) ctx.io.out(`${line}\n`);
      if (done.state === 'error') process.exitCode = 1;
      else if ((done.result?.badBlockCount ?? 0) > 0) process.exitCode = EXIT_CODES.data;
    });
}

/** A verification's fields, as `snapshot verify` prints them. */
export function verificationRecord(v: Verification) {
  const result = v.result;
  return {
    verification: v.verificationId,
    snapshot: v.snapshotId,
    state: v.state,
    reason: v.stateReason,
    progress: `${v.progress}%`,
    read: result
      ? `${result.blocks} blocks in ${result.segments} segments (${formatSize(result.bytes)})`
      : undefined,
    integrity: result
      ? result.badBlockCount > 0
        ? `damaged: ${result.badBlockCount} bad block(s)`
        : 'ok'
      : undefined,
    started: v.createdAt,
    completed: v.completedAt,
  };
}

/** One line per bad block named: where it is, and what is wrong with it. */
export function badBlockLines(v: Verification): string[] {
  const result = v.result;
  if (!result) return [];
  const lines = result.badBlocks.map(
    (b) =>
      `bad block ${b.blockIndex} (volume offset ${b.volumeOffset}): ${b.segmentKey} at offset ${b.offset}: ${
        b.problem === 'digest'
          ? `SHA-256 expected ${b.expected}, found ${b.found}`
          : b.problem === 'missing'
            ? 'segment missing'
            : `unreadable (${b.reason})`
      }`,
  );
  const more = result.badBlockCount - result.badBlocks.length;
  return more > 0 ? [...lines, `… and ${more} more bad block(s)`] : lines;
}
