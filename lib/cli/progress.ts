import cliProgress from 'cli-progress';
import type { StallNotice } from '../client/transfer.ts';

/** What a command shows its progress on; `note` adds (or, undefined, clears) a word about trouble. */
export interface Progress {
  update: (value: number, total: number) => void;
  /** A stall, a service that does not answer: on the progress line, or once on stderr without one. */
  note: (text: string | undefined) => void;
  stop: () => void;
}

/** The progress shown now, which a stalled transfer's notice goes to. */
let active: Progress | undefined;
/** Whether stderr may carry notices (not with --json: stderr is then one JSON error at most). */
let notices = true;

/**
 * A progress bar on stderr when it is a terminal (and not --json); silent otherwise, but for its
 * notes: each trouble is written once as a `warning:` line, so that a log shows why it waited.
 */
export function progressBar(label: string, enabled: boolean): Progress {
  notices = enabled;
  const progress = enabled && process.stderr.isTTY ? terminalBar(label) : plainNotes(label, enabled);
  active = progress;
  return {
    ...progress,
    stop: () => {
      if (active === progress) active = undefined;
      progress.stop();
    },
  };
}

/** What a stalled transfer (or one that moves again: undefined) shows, wherever progress is shown. */
export function noteStall(notice: StallNotice | undefined): void {
  const text = notice
    ? `stalled: no byte moved for ${notice.idleSeconds} s (giving up after ${notice.giveUpSeconds} s, --stall-timeout)`
    : undefined;
  (active ?? plainNotes('transfer', notices)).note(text);
}

/**
 * A request the service failed for now, sent again after `waitMs`: on the progress line, or once
 * as a `warning:` line, so that a command that waits out an outage says why it waits.
 */
export function noteRetry(error: { code: string; status: number }, waitMs: number): void {
  const said = error.status ? `${error.code} (${error.status})` : error.code;
  const text = `failed for now (${said}); trying again in ${Math.max(1, Math.round(waitMs / 1000))} s`;
  (active ?? plainNotes('request', notices)).note(text);
}

function terminalBar(label: string): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} MiB | {eta_formatted}{note}`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let note = '';
  const mib = (n: number) => Math.round(n / 2 ** 20);
  return {
    update: (value: number, total: number) => {
      if (!started) {
        bar.start(mib(total), 0, { note });
        started = true;
      }
      bar.update(mib(value), { note });
    },
    note: (text) => {
      note = text ? ` | ${text}` : '';
      if (!started) {
        bar.start(0, 0, { note });
        started = true;
      }
      bar.update({ note });
    },
    stop: () => started && bar.stop(),
  };
}

/** No bar: a note is one `warning:` line when its trouble starts (not each second it lasts). */
let lastPlainNote: string | undefined;
function plainNotes(label: string, enabled: boolean): Progress {
  return {
    update: () => {},
    note: (text) => {
      const kind = text?.replace(/\d+/g, '#');
      if (enabled && text && kind !== lastPlainNote) process.stderr.write(`warning: ${label} ${text}\n`);
      lastPlainNote = kind;
    },
    stop: () => {},
  };
}
