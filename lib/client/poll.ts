/**
 * Reads `read()` until `settled` says the value is final, and answers it: the first read at once
 * (or `options.current`, a value already in hand), then again after 250 ms, each wait 1.5 times
 * the last, at most 2 s. `onRead` sees every value (a progress bar). It never gives up by itself
 * (Ctrl-C stops a CLI that waits).
 */
export async function pollUntil<T>(
  read: () => Promise<T>,
  settled: (value: T) => boolean,
  options: { current?: T; onRead?: (value: T) => void } = {},
): Promise<T> {
  let value = 'current' in options ? (options.current as T) : await read();
  for (let delay = 250; ; delay = Math.min(2000, delay * 1.5)) {
    options.onRead?.(value);
    if (settled(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, delay));
    value = await read();
  }
}
