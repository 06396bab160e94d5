import { formatSize, formatTags } from '../../lib/cli/units.ts';
import type {
  Export,
  Image,
  Instance,
  Policy,
  PolicyRetention,
  PolicySchedule,
  Snapshot,
  Volume,
} from '../../lib/client/api-client.ts';

export { formatSize, formatTags };

type FieldList = [label: string, value: string][];
const defined = (fields: [string, string | undefined][]): FieldList =>
  fields.filter((f): f is [string, string] => f[1] !== undefined);

/** An ISO time as the reader's local date and time, or `-`. */
export function formatTime(iso: string | undefined): string {
  if (!iso) return '-';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
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

/** Milliseconds as the largest unit that divides them (`6h`, `30d`, `90s`, `1500ms`), as the CLI prints them. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export const formatSchedule = (schedule: PolicySchedule): string =>
  'everyMs' in schedule ? `every ${formatDuration(schedule.everyMs)}` : `cron ${schedule.cron} (UTC)`;

export const formatRetention = (retention: PolicyRetention): string =>
  'keep' in retention ? `keep ${retention.keep}` : `keep for ${formatDuration(retention.keepForMs)}`;

/** The fields `volsnap policy show` prints (lib/cli/commands/policies.ts, policyRecord). */
export function policyFields(p: Policy): FieldList {
  const last = p.lastRun;
  return defined([
    ['id', p.policyId],
    ['name', p.name],
    ['description', p.description || '-'],
    ['enabled', p.enabled ? 'yes' : 'no'],
    ['targets', `volumes tagged ${formatTags(p.targetTags, true)}`],
    ['schedule', formatSchedule(p.schedule)],
    ['retention', formatRetention(p.retention)],
    [
      'copies',
      p.copyRules.length > 0
        ? p.copyRules.map((r) => `${r.region} (${formatRetention(r.retention)})`).join(', ')
        : 'none',
    ],
    ['agent timeout', formatDuration(p.agentTimeoutMs)],
    ['next run', p.enabled ? p.nextRunAt : 'disabled'],
    [
      'last run',
      last
        ? `${last.at}: ${last.created.length} created, ${last.deleted.length} deleted, ${last.copied.length} copied, ${last.skipped.length} skipped, ${last.errors.length} errors`
        : (p.lastRunAt ?? 'never'),
    ],
    ['errors', last && last.errors.length > 0 ? last.errors.join('; ') : undefined],
    ['region', p.region],
    ['created', p.createdAt],
  ]);
}

const propertiesText = (properties: Record<string, string>) =>
  Object.entries(properties)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ') || '-';

/** The fields `volsnap instance show` prints (lib/cli/commands/instances.ts, instanceRecord). */
export function instanceFields(i: Instance): FieldList {
  return defined([
    ['id', i.instanceId],
    ['name', i.name],
    ['state', i.state],
    [
      'volumes',
      i.volumes.length > 0
        ? i.volumes.map((v) => `${v.device}=${v.volumeId} (boot ${v.bootIndex})`).join(', ')
        : 'none',
    ],
    ['properties', propertiesText(i.properties)],
    ['region', i.region],
    ['created', i.createdAt],
    ['updated', i.updatedAt],
  ]);
}

/** The fields `volsnap image show` prints above its table of snapshots (lib/cli/commands/images.ts). */
export function imageFields(i: Image): FieldList {
  return defined([
    ['id', i.imageId],
    ['name', i.name],
    ['description', i.description || '-'],
    ['state', i.state === 'pending' ? `pending ${i.progress ?? 0}%` : i.state],
    ['reason', i.stateReason],
    [
      'instance',
      `${i.instance.name} (${i.instance.instanceId}), ${i.instance.state} when taken${i.crashConsistent ? ': crash-consistent' : ''}`,
    ],
    ['properties', propertiesText(i.instance.properties)],
    ['taken', i.takenAt],
    ['group', i.groupId],
    ['copied from', i.copiedFrom ? `${i.copiedFrom.imageId} (${i.copiedFrom.region})` : undefined],
    ['owner', i.accountId],
    ['region', i.region],
    ['shared with', i.sharedWith?.join(', ')],
  ]);
}

/** The fields `volsnap export show` prints (lib/cli/commands/exports.ts, exportRecord). */
export function exportFields(e: Export): FieldList {
  return defined([
    ['id', e.exportId],
    ['snapshot', e.snapshotId],
    ['format', e.format],
    ['object', `${e.bucket ?? '(region bucket)'}/${e.key}`],
    ['state', e.state],
    ['reason', e.stateReason],
    ['size', `${formatSize(e.size)} (${e.size} bytes)`],
    ['parts', String(e.parts)],
    ['created', e.createdAt],
    ['completed', e.completedAt],
    ['expires', e.expiresAt],
  ]);
}

/** `k=v` → `{k: v}` (the API matches exact pairs; a bare `k` is `k` with the empty value). */
export function parseTag(text: string): Record<string, string> | undefined {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  const at = trimmed.indexOf('=');
  return at < 0 ? { [trimmed]: '' } : { [trimmed.slice(0, at)]: trimmed.slice(at + 1) };
}
