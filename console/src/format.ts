import { formatSize } from '../../lib/cli/units.ts';
import type { Snapshot, Volume } from '../../lib/client/api-client.ts';

export { formatSize };

/** An ISO time as the reader's local date and time, or `-`. */
export function formatTime(iso: string | undefined): string {
  if (!iso) return '-';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function formatTags(tags: Record<string, string>): string {
  const text = Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return text || '-';
}

/**
 * The fields `volsnap snapshot show` prints, in its order and with its labels (lib/cli/main.ts,
 * snapshotRecord), those without a value left out.
 */
export function snapshotFields(s: Snapshot): [label: string, value: string][] {
  const fields: [string, string | undefined][] = [
    ['id', s.snapshotId],
    ['name', s.name || '-'],
    ['description', s.description || '-'],
    ['volume', s.volumeId],
    ['size', `${formatSize(s.volumeSize)} (${s.volumeSize} bytes)`],
    ['stored', s.stats ? `${formatSize(s.stats.storedBytes)} (${s.stats.storedBytes} bytes)` : '-'],
    [
      'blocks',
      s.stats
        ? `${s.stats.blockCount} non-zero of ${s.volumeSize / s.blockSize} (${s.stats.newBlocks} new, ${s.stats.reusedBlocks} from parent)`
        : '-',
    ],
    ['state', s.state],
    ['reason', s.stateReason],
    ['purged at', s.purgeAt],
    ['take by', s.state === 'queued' ? s.deadline : undefined],
    ['progress', `${s.progress}%`],
    ['parent', s.parentSnapshotId],
    ['copied from', s.copiedFrom ? `${s.copiedFrom.snapshotId} (${s.copiedFrom.region})` : undefined],
    ['created', s.createdAt],
    ['completed', s.completedAt],
    ['tags', formatTags(s.tags)],
    ['owner', s.accountId],
    ['region', s.region],
    ['public', s.public ? 'yes' : undefined],
    ['shared with', s.sharedWith?.join(', ')],
  ];
  return fields.filter((f): f is [string, string] => f[1] !== undefined);
}

export function volumeFields(v: Volume): [label: string, value: string][] {
  const fields: [string, string | undefined][] = [
    ['id', v.volumeId],
    ['name', v.name],
    ['size', `${formatSize(v.sizeBytes)} (${v.sizeBytes} bytes)`],
    ['region', v.region],
    ['owner', v.accountId],
    ['created', v.createdAt],
    ['tags', formatTags(v.tags)],
    ['image', v.imageUri],
    ['from snapshot', v.sourceSnapshotId],
  ];
  return fields.filter((f): f is [string, string] => f[1] !== undefined);
}

/** Whether work on it is still under way (the console keeps polling while any is). */
export function inFlight(state: string): boolean {
  return state === 'pending' || state === 'queued' || state === 'deleting';
}

/**
 * `90s`, `45m`, `12h`, `30d` or bare seconds → milliseconds, as the CLI's duration flags read them
 * (lib/cli/args.ts); undefined for anything else.
 */
export function parseDurationMs(text: string): number | undefined {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit * 1000;
}

/** Milliseconds as the largest whole unit: `6h`, `30d`, `90s`. */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (seconds % size === 0 && seconds >= size) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/** `k=v` → `{k: v}` (the API matches exact pairs; a bare `k` is `k` with the empty value). */
export function parseTag(text: string): Record<string, string> | undefined {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  const at = trimmed.indexOf('=');
  return at < 0 ? { [trimmed]: '' } : { [trimmed.slice(0, at)]: trimmed.slice(at + 1) };
}
