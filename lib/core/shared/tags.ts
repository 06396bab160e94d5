import { VolsnapError } from './errors.ts';
import { requirePrintable } from './text.ts';

/** Free-form labels on a resource, as EC2 and OUTSCALE have them. */
export type Tags = Record<string, string>;

export const MAX_TAGS = 50;
const KEY = /^[\p{L}\p{N} _.:/=+\-@]{1,128}$/u;
const VALUE = /^[\p{L}\p{N} _.:/=+\-@]{0,256}$/u;

/** Validates tags: at most 50, keys 1–128 and values 0–256 letters, digits, spaces and `_.:/=+-@`. */
export function validateTags(tags: Tags): Tags {
  const entries = Object.entries(tags);
  if (entries.length > MAX_TAGS) {
    throw new VolsnapError(
      'request.invalid',
      `A resource has at most ${MAX_TAGS} tags; ${entries.length} were given.`,
    );
  }
  for (const [key, value] of entries) {
    requirePrintable('A tag key', key);
    requirePrintable(`The value of tag '${key}'`, value);
    if (!KEY.test(key) || isReservedTag(key)) {
      throw new VolsnapError(
        'request.invalid',
        `Tag key '${key}' is not allowed: use 1–128 letters, digits, spaces and _.:/=+-@, not starting with 'volsnap:' (reserved).`,
      );
    }
    if (!VALUE.test(value)) {
      throw new VolsnapError(
        'request.invalid',
        `Tag value for '${key}' is not allowed: use up to 256 letters, digits, spaces and _.:/=+-@.`,
      );
    }
  }
  return tags;
}

/** Whether `tags` carries every `key=value` of `filter`. */
export function matchesTags(tags: Tags, filter: Tags | undefined): boolean {
  // Own keys only: a filter on `constructor` must not find Object.prototype's.
  return Object.entries(filter ?? {}).every(
    ([key, value]) => Object.hasOwn(tags, key) && tags[key] === value,
  );
}

/** Whether a tag key is the service's own (`volsnap:…`), which users may read and filter by, not set. */
export function isReservedTag(key: string): boolean {
  return key.toLowerCase().startsWith('volsnap:');
}

/** Tags without the service's own. */
export function withoutReserved(tags: Tags): Tags {
  return Object.fromEntries(Object.entries(tags).filter(([key]) => !isReservedTag(key)));
}
