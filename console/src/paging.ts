/** How a list is read a page at a time: pure, apart from the `load` it is given. */

/** A filter of a list: a text field, or a choice when `options` are given ("any" first). */
export interface FilterField<T> {
  /** What the load is given it as (`name`, `state`, `tag`, `volume`). */
  key: string;
  label: string;
  options?: readonly string[];
  /** What the empty choice of `options` is called (default: any). */
  anyLabel?: string;
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

/** Oldest first needs the whole list (the API pages newest first): at most this many are read. */
export const SORT_LIMIT = 1000;
/** Newest first with a filter the console applies: at most this many API pages fill one page. */
const MAX_FILL_ROUNDS = 20;

/** Where a page starts: an API page token (newest first), or an offset in the whole list (oldest first). */
export interface Cursor {
  token?: string;
  offset: number;
}
export interface Shown<T> {
  rows: T[];
  next?: Cursor;
  /** Oldest first over a list longer than {@link SORT_LIMIT}: only its newest were sorted. */
  capped?: boolean;
}

/** What {@link loadShown} needs of a list. */
export interface ListSource<T> {
  filters: FilterField<T>[];
  load: (query: PageQuery) => Promise<Page<T>>;
  createdAt: (row: T) => string;
}

const byCreation =
  <T>(createdAt: (row: T) => string, newestFirst: boolean) =>
  (a: T, b: T) =>
    newestFirst ? createdAt(b).localeCompare(createdAt(a)) : createdAt(a).localeCompare(createdAt(b));

/**
 * One page as the table shows it, from as many API pages as it takes: newest first follows the
 * API's tokens until the page is full of matches (or the list ends); oldest first reads up to
 * {@link SORT_LIMIT} matches and pages by offset. Each row is on exactly one page.
 */
export async function loadShown<T>(
  props: ListSource<T>,
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
export const pageOf = <T>(items: T[], nextToken: string | undefined): Page<T> =>
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
