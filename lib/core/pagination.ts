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
