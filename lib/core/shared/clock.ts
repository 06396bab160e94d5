/**
 * Time, as a port: lib/core never reads the system clock, so every deadline, lease and expiry is
 * testable with a manual clock.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** ISO-8601 text of a clock reading, the form timestamps take in the API. */
export function isoTime(epochMs: number): string {
  // biome-ignore lint/style/noRestrictedGlobals: formatting a given instant reads no clock.
  return new Date(epochMs).toISOString();
}

/** Milliseconds since the epoch of an ISO-8601 time (NaN if it is not one). */
export function parseIsoTime(text: string): number {
  // biome-ignore lint/style/noRestrictedGlobals: parsing a given time reads no clock.
  return Date.parse(text);
}
