import { decodePageToken, encodePageToken, type Page } from '../../core/shared/pagination.ts';

/** One page of `items` (already filtered and ordered), with an offset as the next token. */
export function pageOf<T>(items: T[], page: { limit: number; nextToken?: string }): Page<T> {
  const offset =
    decodePageToken(page.nextToken, (v): v is number => Number.isInteger(v) && (v as number) >= 0) ?? 0;
  const slice = items.slice(offset, offset + page.limit).map((item) => structuredClone(item));
  return offset + page.limit < items.length
    ? { items: slice, nextToken: encodePageToken(offset + page.limit) }
    : { items: slice };
}

/**
 * One page of `entries` in `order`'s order, as a sparse index keeps them: the token is the last
 * position returned, so entries leaving the listing while it is paged (maintenance moves them)
 * make none skipped.
 */
export function orderedPage<T>(
  entries: { item: T; order: string }[],
  page: { limit: number; nextToken?: string },
): Page<T> {
  const after = decodePageToken(page.nextToken, (v): v is string => typeof v === 'string') ?? '';
  const ordered = entries
    .filter(({ order }) => order > after)
    .sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
  const items = ordered.slice(0, page.limit);
  const last = items.at(-1);
  const cloned = items.map(({ item }) => structuredClone(item));
  return ordered.length > page.limit && last
    ? { items: cloned, nextToken: encodePageToken(last.order) }
    : { items: cloned };
}
