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
