import { VolsnapError } from '../core/shared/errors.ts';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../core/shared/pagination.ts';
import type { Tags } from '../core/shared/tags.ts';

/** `?limit=N`: 1 to 1000, 100 when absent. */
export function pageLimit(limit: string | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  const n = Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) {
    throw new VolsnapError(
      'request.invalid',
      `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}; got '${limit}'.`,
    );
  }
  return n;
}

/** Tag filters from query parameters named `tag:KEY` (`?tag:env=prod&tag:tier=gold`). */
export function tagFilter(query: Record<string, string | undefined>): Tags | undefined {
  const entries = Object.entries(query)
    .filter(([key]) => key.startsWith('tag:'))
    .map(([key, value]) => [key.slice(4), value ?? ''] as const);
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}
