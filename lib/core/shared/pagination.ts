import { VolsnapError } from './errors.ts';

/** A page of results and, when there are more, the token that fetches the next page. */
export interface Page<T> {
  items: T[];
  nextToken?: string;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** Wraps a store's position (a DynamoDB LastEvaluatedKey, an offset) into an opaque token. */
export function encodePageToken(position: unknown): string {
  return Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
}

/** Unwraps a token from {@link encodePageToken}; a token that is not one is `request.invalid`. */
export function decodePageToken<T>(
  token: string | undefined,
  isPosition: (value: unknown) => value is T,
): T | undefined {
  if (token === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (isPosition(value)) return value;
  } catch {
    // fall through
  }
  throw new VolsnapError(
    'request.invalid',
    'The nextToken is not one this API issued: pass the nextToken of the previous page unchanged.',
  );
}

/** The key attributes a listing's positions have, and the values some of them must hold. */
export interface Listing {
  /** Exactly the attributes a position of this listing has (a DynamoDB key: the table's and the index's). */
  attributes: readonly string[];
  /** Attributes whose value is the listing's own (its partition): a position elsewhere is not from it. */
  fixed: Readonly<Record<string, string>>;
}

/**
 * Unwraps a token into a position of `listing`, or `request.invalid`: a token that decodes to
 * another listing's position (another account's partition, another index, `{}`, extra or missing
 * attributes) never reaches the store, so a forged token can neither fail the query nor move it
 * into anyone else's items.
 */
export function decodeListingPosition(
  token: string | undefined,
  listing: Listing,
): Record<string, string> | undefined {
  const position = decodePageToken(
    token,
    (v): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v),
  );
  if (position === undefined) return undefined;
  const keys = Object.keys(position);
  const fits =
    keys.length === listing.attributes.length &&
    listing.attributes.every((a) => Object.hasOwn(position, a) && typeof position[a] === 'string') &&
    Object.entries(listing.fixed).every(([a, value]) => position[a] === value);
  if (!fits) {
    throw new VolsnapError(
      'request.invalid',
      'This nextToken is not from this listing; start again without it.',
    );
  }
  return position as Record<string, string>;
}
