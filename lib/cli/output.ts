import { escapeUnprintable, terminalSafe } from '../core/shared/text.ts';

/**
 * The CLI's JSON rule, in one place: a command that makes, changes or shows a thing prints that
 * thing's record (the shape `show --json` prints), with what the command did under `report`; a
 * delete prints the record in its new state, or `{<id field>: id, deleted: true}` when nothing
 * remains (as the API's DELETE answers). A size in bytes is `sizeBytes` in every record: the API
 * calls a snapshot's `volumeSize` and an export's `size`, and this is where they are renamed (the
 * top level only: tags and nested reports are left as they are).
 */
export function jsonRecord<T extends object>(record: T): Record<string, unknown> {
  const renamed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    const name = SIZE_FIELDS.has(key) && !('sizeBytes' in record) ? 'sizeBytes' : key;
    renamed[name] = value;
  }
  return renamed;
}

const SIZE_FIELDS = new Set(['volumeSize', 'size']);

/** Prints a record, an array of records, or a record with `report`, as the JSON rule above says. */
export function printJson(out: (text: string) => void, value: object): void {
  const shaped = Array.isArray(value) ? value.map((v) => jsonRecord(v as object)) : jsonRecord(value);
  out(`${terminalSafe(JSON.stringify(shaped, null, 2))}\n`);
}

/** What a delete prints under `--json` when nothing remains of the thing. */
export function deletedRecord(
  idField: string,
  id: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { [idField]: id, deleted: true, ...extra };
}

/** Prints one record: `key  value` lines, or JSON with `--json`. */
export function printRecord(out: (text: string) => void, record: object, json: boolean): void {
  if (json) {
    printJson(out, record);
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
    printJson(out, rows);
    return;
  }
  const cells = rows.map((row) => columns.map((c) => formatValue((row as Record<string, unknown>)[c])));
  out(
    `${alignedLines(
      columns.map((c) => c.toUpperCase()),
      cells,
    ).join('\n')}\n`,
  );
}

/** Prints a listing: the API's items with `--json`, else a table of `row`'s fields of each. */
export function printRows<T extends object>(
  out: (text: string) => void,
  json: boolean,
  items: T[],
  row: (item: T) => object,
  columns: string[],
): void {
  printTable(out, json ? items : items.map(row), columns, json);
}

/** A header and rows of cells as lines of columns, each as wide as its widest cell, two spaces apart. */
export function alignedLines(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
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

/** Prints what a command answered: the API's record with `--json`, else `view`'s fields of it. */
export function printAnswer<T extends object>(
  out: (text: string) => void,
  json: boolean,
  answer: T,
  view: (value: T) => object,
): void {
  printRecord(out, json ? answer : view(answer), json);
}
