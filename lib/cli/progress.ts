import cliProgress from 'cli-progress';

/** A progress bar on stderr when it is a terminal (and not --json); silent otherwise. */
export function progressBar(label: string, enabled: boolean) {
  if (!enabled || !process.stderr.isTTY)
    return { update: (_value: number, _total: number) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} MiB | {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update: (value: number, total: number) => {
      const mib = (n: number) => Math.round(n / 2 ** 20);
      if (!started) {
        bar.start(mib(total), 0);
        started = true;
      }
      bar.update(mib(value));
    },
    stop: () => started && bar.stop(),
  };
}
