const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 2 ** 10,
  kib: 2 ** 10,
  m: 2 ** 20,
  mib: 2 ** 20,
  g: 2 ** 30,
  gib: 2 ** 30,
  t: 2 ** 40,
  tib: 2 ** 40,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
};

/** Parses `64MiB`, `1G`, `10GB`, `1048576` into bytes (K/M/G/T and KiB… are binary; KB… decimal). */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const factor = match ? UNITS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    throw new Error(
      `'${text}' is not a size: write bytes, or a number with KiB, MiB, GiB or TiB (e.g. 64MiB).`,
    );
  }
  const bytes = Number(match[1]) * factor;
  if (!Number.isSafeInteger(bytes)) throw new Error(`'${text}' is not a whole number of bytes.`);
  return bytes;
}

const BLOCK = 512 * 1024;
const BINARY = { kb: 'KiB', mb: 'MiB', gb: 'GiB', tb: 'TiB' } as Record<string, string>;

/**
 * A volume's size (`volume create --size`, `snapshot import --size`): as `parseSize`, and a whole
 * number of 512 KiB blocks. `10GB` is 10 × 10^9 bytes, which no block count makes: the error says
 * so and suggests `10GiB`, instead of the service's "round it up to 10000269312".
 */
export function parseVolumeSize(text: string): number {
  const bytes = parseSize(text);
  if (bytes % BLOCK === 0) return bytes;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = (match?.[2] ?? '').toLowerCase();
  const binary = BINARY[unit];
  if (binary)
    throw new Error(
      `'${text}' is ${bytes} bytes: ${match?.[2]} means 10^${{ kb: 3, mb: 6, gb: 9, tb: 12 }[unit]} bytes, and a volume is a whole number of 512 KiB blocks. Write ${match?.[1]}${binary} (binary units) instead.`,
    );
  throw new Error(
    `'${text}' is ${bytes} bytes, not a whole number of 512 KiB blocks: write e.g. ${Math.ceil(bytes / BLOCK) * BLOCK}, or use MiB or GiB.`,
  );
}

/** `67108864` → `64 MiB`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

/** Parses repeated `--tag key=value` options into tags. */
export function collectTag(text: string, tags: Record<string, string> = {}): Record<string, string> {
  const pair = splitPair(text);
  if (!pair) throw new Error(`'${text}' is not a tag: write key=value.`);
  return { ...tags, [pair[0]]: pair[1] };
}

/**
 * `key=value` split at the first `=` (the value may hold more), or undefined when there is no key,
 * or no value where `valueRequired`: what every repeated `--flag key=value` parses.
 */
export function splitPair(text: string, valueRequired = false): [key: string, value: string] | undefined {
  const at = text.indexOf('=');
  if (at <= 0 || (valueRequired && at === text.length - 1)) return undefined;
  return [text.slice(0, at), text.slice(at + 1)];
}

/** Tags as `key=value, …`, or `-` when there are none; `sorted` orders them by key. */
export function formatTags(tags: Record<string, string>, sorted = false): string {
  const entries = Object.entries(tags);
  if (sorted) entries.sort(([a], [b]) => a.localeCompare(b));
  return entries.map(([k, v]) => `${k}=${v}`).join(', ') || '-';
}
