import { randomBytes } from 'node:crypto';

/** The kinds of resource volsnap names, and the prefix of their ids (`snap-…` as CROC and EC2 do). */
export const ID_PREFIX = {
  account: 'acct',
  volume: 'vol',
  snapshot: 'snap',
  segment: 'seg',
  task: 'task',
  export: 'exp',
  policy: 'pol',
  key: 'key',
  request: 'req',
  instance: 'i',
  image: 'img',
  /** The snapshots of one image, taken together. */
  group: 'grp',
  /** One write-once key a snapshot's manifest is uploaded to. */
  manifestUpload: 'mup',
  /** A re-read of a stored snapshot's blocks. */
  verification: 'ver',
} as const;

export type IdKind = keyof typeof ID_PREFIX;

// Crockford's base32 in lower case: no i, l, o, u, so ids survive being read aloud or retyped.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** Random base32 text of `length` characters (5 bits each, from the OS CSPRNG). */
export function randomBase32(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += ALPHABET[byte & 31];
  return out;
}

/** A new id such as `snap-0k3v9x2m4q7r8t1w` (80 random bits: collisions are not a concern). */
export function newId(kind: IdKind): string {
  return `${ID_PREFIX[kind]}-${randomBase32(16)}`;
}

/** Whether `value` has the shape of an id of `kind`; used to answer 404 early for garbage ids. */
export function isId(kind: IdKind, value: string): boolean {
  return new RegExp(`^${ID_PREFIX[kind]}-[${ALPHABET}]{16}$`).test(value);
}
