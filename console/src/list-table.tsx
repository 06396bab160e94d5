import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ErrorText, useLoaded } from './ui.tsx';

/** One column of a list: its header and what a row shows in it (as text or elements, never markup). */
export interface Column<T> {
  header: string;
  cell: (row: T) => ComponentChildren;
  /** A class of its cells (`name`, `id`). */
  class?: string;
  /** The creation time: its header is the sort button. */
  sort?: true;
}

/** A filter of a list: a text field, or a choice when `options` are given ("any" first). */
export interface FilterField<T> {
  /** What the load is given it as (`name`, `state`, `tag`, `volume`). */
  key: string;
  label: string;
  options?: readonly string[];
  placeholder?: string;
  /**
   * How the console matches a row, for a filter the API does not have; absent: the API filters
   * (the load gets it), so every page holds matches only.
   */
  match?: (row: T, value: string) => boolean;
}

/** One page of a list as the API answers it. */
export interface Page<T> {
  items: T[];
  nextToken?: string;
}

/** What a list asks its API for: the API's own filters (non-empty values only) and a page. */
export interface PageQuery {
  filter: Record<string, string>;
  limit: number;
  nextToken?: string;
}

export interface ListTableProps<T> {
  /** The list's name (plural): the table's accessible name, "Filter …", "No … here." */
  label: string;
  columns: Column<T>[];
  rowKey: (row: T) => string;
  /** The row's `data-*` attributes (its id, for styles and tests). */
  rowData?: (row: T) => Record<string, string>;
  load: (query: PageQuery) => Promise<Page<T>>;
  /** What else the list depends on (region, tab): a change starts it over. */
  scope: string;
  filters: FilterField<T>[];
  initialFilter?: Record<string, string>;
  createdAt: (row: T) => string;
  /** Work under way: while a row shown is, the list asks again every poll. */
  pending?: (row: T) => boolean;
  /** Bumped by the owner after an action changed the list: it loads again. */
  version?: number;
}

export const PAGE_SIZES = [10, 25, 50, 100] as const;
/** Oldest first needs the whole list (the API pages newest first): at most this many are read. */
export const SORT_LIMIT = 1000;
/** Newest first with a filter the console applies: at most this many API pages fill one page. */
const MAX_FILL_ROUNDS = 20;

/** Where a page starts: an API page token (newest first), or an offset in the whole list (oldest first). */
interface Cursor {
  token?: string;
  offset: number;
}
interface Shown<T> {
  rows: T[];
  next?: Cursor;
  /** Oldest first over a list longer than {@link SORT_LIMIT}: only its newest were sorted. */
  capped?: boolean;
}

/**
 * A list of one kind of resource: filters, paging by the API's page tokens, sort by creation in
 * both directions, and live updates while any row shown has work under way. Filters the API has
 * are sent to it; the others are applied here, reading on until a page is full.
 */
export function ListTable<T>(props: ListTableProps<T>) {
  const initial = { ...blankFilter(props.filters), ...props.initialFilter };
  const [draft, setDraft] = useState<Record<string, string>>(initial);
  const [filter, setFilter] = useState<Record<string, string>>(initial);
  const [pageSize, setPageSize] = useState<number>(25);
  const [newestFirst, setNewestFirst] = useState(true);
  // The cursors of the pages before this one and this one's (Previous pops it).
  const [cursors, setCursors] = useState<Cursor[]>([{ offset: 0 }]);
  const cursor = cursors.at(-1) ?? { offset: 0 };
  const list = useLoaded<Shown<T>>(
    () => loadShown(props, filter, pageSize, newestFirst, cursor),
    JSON.stringify([props.scope, filter, pageSize, newestFirst, cursor, props.version ?? 0]),
    (shown) => props.pending !== undefined && shown.rows.some(props.pending),
  );
  const startOver = () => setCursors([{ offset: 0 }]);
  const lower = props.label.toLowerCase();
  return (
    <div class="list-table">
      <form
        class="filters"
        aria-label={`Filter ${lower}`}
        onSubmit={(event) => {
          event.preventDefault();
          setFilter(trimmed(draft));
          startOver();
        }}
      >
        {props.filters.map((f) => (
          <FilterInput
            key={f.key}
            field={f}
            value={draft[f.key] ?? ''}
            onChange={(v) => setDraft({ ...draft, [f.key]: v })}
          />
        ))}
        {props.filters.length > 0 ? <button type="submit">Filter</button> : null}
        <button type="button" onClick={() => list.reload()}>
          Refresh
        </button>
      </form>
      <ErrorText error={list.error} />
      {list.data === undefined && !list.error ? <p class="loading">Loading…</p> : null}
      {list.data !== undefined && list.data.rows.length === 0 ? <p class="empty">No {lower} here.</p> : null}
      {list.data !== undefined && list.data.rows.length > 0 ? (
        <Rows
          {...props}
          rows={list.data.rows}
          newestFirst={newestFirst}
          onSort={() => {
            setNewestFirst(!newestFirst);
            startOver();
          }}
        />
      ) : null}
      {list.data?.capped ? (
        <p class="hint">Oldest first sorts the newest {SORT_LIMIT}; filter to see older ones.</p>
      ) : null}
      <nav class="paging" aria-label={`Pages of ${lower}`}>
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <span class="page-number">Page {cursors.length}</span>
        <button
          type="button"
          disabled={!list.data?.next}
          onClick={() => list.data?.next && setCursors([...cursors, list.data.next])}
        >
          Next page
        </button>
        <label>
          Per page
          <select
            value={pageSize}
            onChange={(e) => {
              setPageSize(Number((e.target as HTMLSelectElement).value));
              startOver();
            }}
          >
            {PAGE_SIZES.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
      </nav>
    </div>
  );
}

function Rows<T>(props: ListTableProps<T> & { rows: T[]; newestFirst: boolean; onSort: () => void }) {
  const order = props.newestFirst ? 'descending' : 'ascending';
  return (
    <div class="table-scroll">
      <table class="list" aria-label={props.label}>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th key={c.header} scope="col" aria-sort={c.sort ? order : undefined}>
                {c.sort ? (
                  <button
                    type="button"
                    class="sort"
                    onClick={props.onSort}
                    aria-label={`${c.header}, ${props.newestFirst ? 'newest' : 'oldest'} first: sort ${props.newestFirst ? 'oldest' : 'newest'} first`}
                  >
                    {c.header} {props.newestFirst ? '↓' : '↑'}
                  </button>
                ) : (
                  c.header
                )}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => (
            <tr key={props.rowKey(row)} {...dataAttributes(props.rowData?.(row) ?? {})}>
              {props.columns.map((c) => (
                <td key={c.header} class={c.class}>
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function FilterInput<T>(props: { field: FilterField<T>; value: string; onChange: (value: string) => void }) {
  const { field } = props;
  if (field.options)
    return (
      <label>
        {field.label}
        <select value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}>
          <option value="">any</option>
          {field.options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      </label>
    );
  return (
    <label>
      {field.label}
      <input
        name={`filter-${field.key}`}
        value={props.value}
        placeholder={field.placeholder}
        onInput={(e) => props.onChange((e.target as HTMLInputElement).value)}
      />
    </label>
  );
}

const blankFilter = <T,>(filters: FilterField<T>[]) => Object.fromEntries(filters.map((f) => [f.key, '']));

const trimmed = (filter: Record<string, string>) =>
  Object.fromEntries(Object.entries(filter).map(([k, v]) => [k, v.trim()]));

function dataAttributes(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [`data-${k}`, v]));
}

const byCreation =
  <T,>(createdAt: (row: T) => string, newestFirst: boolean) =>
  (a: T, b: T) =>
    newestFirst ? createdAt(b).localeCompare(createdAt(a)) : createdAt(a).localeCompare(createdAt(b));

/** One page as the table shows it, from as many API pages as it takes. */
async function loadShown<T>(
  props: ListTableProps<T>,
  filter: Record<string, string>,
  pageSize: number,
  newestFirst: boolean,
  cursor: Cursor,
): Promise<Shown<T>> {
  const apiFilter: Record<string, string> = {};
  const local: [FilterField<T>, string][] = [];
  for (const f of props.filters) {
    const value = filter[f.key] ?? '';
    if (!value) continue;
    if (f.match) local.push([f, value]);
    else apiFilter[f.key] = value;
  }
  const matches = (row: T) => local.every(([f, value]) => f.match?.(row, value));
  const sort = byCreation(props.createdAt, newestFirst);
  if (newestFirst) {
    const rows: T[] = [];
    let token = cursor.token;
    for (let round = 0; round < MAX_FILL_ROUNDS; round++) {
      const page = await props.load({
        filter: apiFilter,
        limit: pageSize,
        ...(token ? { nextToken: token } : {}),
      });
      rows.push(...page.items.filter(matches));
      token = page.nextToken;
      if (!token || rows.length >= pageSize) break;
    }
    return { rows: rows.sort(sort), ...(token ? { next: { token, offset: 0 } } : {}) };
  }
  const all: T[] = [];
  let token: string | undefined;
  do {
    const page = await props.load({ filter: apiFilter, limit: 100, ...(token ? { nextToken: token } : {}) });
    all.push(...page.items.filter(matches));
    token = page.nextToken;
  } while (token && all.length < SORT_LIMIT);
  const sorted = all.sort(sort);
  const end = cursor.offset + pageSize;
  return {
    rows: sorted.slice(cursor.offset, end),
    ...(end < sorted.length ? { next: { offset: end } } : {}),
    ...(token ? { capped: true } : {}),
  };
}

/** An API page (`{volumes, nextToken}`) as the table reads it. */
export const pageOf = <T,>(items: T[], nextToken: string | undefined): Page<T> =>
  nextToken ? { items, nextToken } : { items };

/** A page request's token, when there is one (the client sends no empty `nextToken`). */
export const tokenOf = (nextToken: string | undefined) => (nextToken ? { nextToken } : {});

/** `k=v` filter against a row's tags: the key with that value (a bare `k`: the key at all). */
export function matchesTag(tags: Record<string, string>, text: string): boolean {
  const at = text.indexOf('=');
  if (at < 0) return text in tags;
  return tags[text.slice(0, at)] === text.slice(at + 1);
}

/** A name filter as the API applies it: the name starts with the text. */
export const matchesName = (name: string, text: string) => name.startsWith(text);
