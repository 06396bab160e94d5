import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import {
  type Cursor,
  type FilterField,
  loadShown,
  type Page,
  type PageQuery,
  type Shown,
  SORT_LIMIT,
} from './paging.ts';
import { ErrorText, useLoaded } from './ui.tsx';

export type { FilterField } from './paging.ts';
export { matchesName, matchesTag, pageOf, tokenOf } from './paging.ts';

export const PAGE_SIZES = [10, 25, 50, 100] as const;

/** One column of a list: its header and what a row shows in it (as text or elements, never markup). */
export interface Column<T> {
  header: string;
  cell: (row: T) => ComponentChildren;
  /** A class of its cells (`name`, `id`). */
  class?: string;
  /** The creation time: its header is the sort button. */
  sort?: true;
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
          <option value="">{field.anyLabel ?? 'any'}</option>
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
