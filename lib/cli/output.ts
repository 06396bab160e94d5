import { escapeUnprintable, terminalSafe } from '../core/shared/text.ts';

/** Prints one record: `key  value` lines, or JSON with `--json`. */
export function printRecord(out: (text: string) => void, record: object, json: boolean): void {
  if (json) {
    out(`${terminalSafe(JSON.stringify(record, null, 2))}\n`);
    return;
  }
  const entries = Object.entries(record);
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  out(`${entries.map(([k, v]) => `${k.padEnd(width)}  ${formatValue(v)}`).join('\n')}\n`);
}

/** Prints rows as an aligned table with a header, or a JSON array with `--json`. */
export function printTable(
  out: (text: string) => void,
  rows: object[],
  columns: string[],
  json: boolean,
): void {
  if (json) {
    out(`${terminalSafe(JSON.stringify(rows, null, 2))}\n`);
    return;
  }
  const cells = rows.map((row) => columns.map((c) => formatValue((row as Record<string, unknown>)[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  out(`${[line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n')}\n`);
}

/** One cell or value: control characters, newlines and bidi overrides in it shown as `\uXXXX`. */
function formatValue(value: unknown): string {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'object')
    return Array.isArray(value)
      ? value.map(formatValue).join(', ')
      : escapeUnprintable(JSON.stringify(value));
  return escapeUnprintable(String(value));
}
