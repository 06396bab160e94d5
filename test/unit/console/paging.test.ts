import { describe, expect, it } from 'vitest';
import {
  type Cursor,
  type FilterField,
  loadShown,
  matchesTag,
  type PageQuery,
  type Shown,
} from '../../../console/src/paging.ts';

/**
 * How the console's lists read the API a page at a time. The "API" here answers a fixed list
 * newest first, `limit` at a time with an opaque token, as the volsnap API pages; it counts calls.
 */
interface Row {
  name: string;
  createdAt: string;
  state: string;
}
const ROWS: Row[] = Array.from({ length: 23 }, (_, n) => ({
  name: `row-${String(n).padStart(2, '0')}`,
  createdAt: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
  state: n % 3 === 0 ? 'running' : 'stopped',
}));

function source(filters: FilterField<Row>[]) {
  const calls: PageQuery[] = [];
  const newestFirst = [...ROWS].reverse();
  return {
    calls,
    filters,
    createdAt: (r: Row) => r.createdAt,
    load: async (query: PageQuery) => {
      calls.push(query);
      const from = Number(query.nextToken ?? 0);
      const matching = newestFirst.filter((r) => !query.filter.name || r.name.startsWith(query.filter.name));
      const items = matching.slice(from, from + query.limit);
      const next = from + query.limit;
      return next < matching.length ? { items, nextToken: String(next) } : { items };
    },
  };
}
const byState: FilterField<Row> = { key: 'state', label: 'State', match: (r, v) => r.state === v };
const byName: FilterField<Row> = { key: 'name', label: 'Name' };
const names = (rows: Row[]) => rows.map((r) => r.name.slice(4));

/** Every page from the first, following `next`, as the Next button does. */
async function everyPage(
  list: ReturnType<typeof source>,
  filter: Record<string, string>,
  size: number,
  newestFirst: boolean,
) {
  const pages: string[][] = [];
  let cursor: Cursor | undefined = { offset: 0 };
  while (cursor) {
    const shown: Shown<Row> = await loadShown(list, filter, size, newestFirst, cursor);
    pages.push(names(shown.rows));
    cursor = shown.next;
  }
  return pages;
}

describe("the console's list paging", () => {
  it('newest first follows the API’s tokens, a page each, and sends the API the filters it has', async () => {
    const list = source([byName, byState]);
    expect(await everyPage(list, { name: 'row-1' }, 4, true)).toEqual([
      ['19', '18', '17', '16'],
      ['15', '14', '13', '12'],
      ['11', '10'],
    ]);
    expect(list.calls.map((c) => [c.filter, c.limit, c.nextToken])).toEqual([
      [{ name: 'row-1' }, 4, undefined],
      [{ name: 'row-1' }, 4, '4'],
      [{ name: 'row-1' }, 4, '8'],
    ]);
  });

  it('with a filter the API lacks, reads on until a page is full, and every match is on exactly one page', async () => {
    const list = source([byName, byState]);
    const pages = await everyPage(list, { state: 'running' }, 3, true);
    // Rows 22…0 newest first, three an API page; one running row in three.
    expect(pages).toEqual([
      ['21', '18', '15'],
      ['12', '09', '06'],
      ['03', '00'],
    ]);
    expect(list.calls).toHaveLength(8);
    expect(list.calls.every((c) => Object.keys(c.filter).length === 0)).toBe(true);
  });

  it('oldest first reads the whole list and pages it by offset, oldest first', async () => {
    const list = source([byName, byState]);
    const pages = await everyPage(list, { state: 'stopped' }, 6, false);
    expect(pages.flat()).toEqual(names(ROWS.filter((r) => r.state === 'stopped')));
    expect(pages.map((p) => p.length)).toEqual([6, 6, 3]);
  });

  it('matches a tag filter as the API does: key=value exactly, a bare key by its presence', () => {
    expect(matchesTag({ env: 'prod' }, 'env=prod')).toBe(true);
    expect(matchesTag({ env: 'prod' }, 'env=pro')).toBe(false);
    expect(matchesTag({ env: '' }, 'env')).toBe(true);
    expect(matchesTag({ team: 'a' }, 'env')).toBe(false);
  });
});
