import { VolsnapError } from './errors.ts';

/**
 * Characters that are not printable text: C0 controls, DEL, C1 controls (together Unicode's Cc) (a terminal takes U+009B as
 * the start of an escape sequence), and the bidirectional overrides and isolates (U+202A–U+202E,
 * U+2066–U+2069) that make text read differently from what it is. Names, descriptions, tags and
 * properties refuse them; the CLI escapes them in whatever it prints.
 */
const UNPRINTABLE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;
const UNPRINTABLE_ALL = new RegExp(UNPRINTABLE.source, 'gu');
/** The same, except newline and tab: what may reach a terminal in the CLI's own output. */
const UNPRINTABLE_IN_OUTPUT = /(?![\n\t])[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;

/** A character that is not printable text, and where it is (0-based, in code points). */
export interface Unprintable {
  /** `U+001B`. */
  codePoint: string;
  position: number;
}

/** The first unprintable character of `text`, or undefined when it is all printable. */
export function findUnprintable(text: string): Unprintable | undefined {
  const match = UNPRINTABLE.exec(text);
  if (!match) return undefined;
  return {
    codePoint: codePointName(match[0]),
    position: [...text.slice(0, match.index)].length,
  };
}

/** `contains a control character (U+001B) at position 3; use printable text`. */
export function describeUnprintable(found: Unprintable): string {
  const kind = /^U\+20[26]/.test(found.codePoint) ? 'a bidirectional control' : 'a control character';
  return `contains ${kind} (${found.codePoint}) at position ${found.position}; use printable text`;
}

/** `text`, or `request.invalid` naming `field`, the character and where it is. */
export function requirePrintable(field: string, text: string): string {
  const found = findUnprintable(text);
  if (found) throw new VolsnapError('request.invalid', `${field} ${describeUnprintable(found)}.`);
  return text;
}

/**
 * The first unprintable character in any string of a JSON-like value (keys included), with the
 * path to it (`tags.owner`, `properties.0`), or undefined. Depth-bounded like the JSON it checks.
 */
export function findUnprintableIn(
  value: unknown,
  path: readonly (string | number)[] = [],
): (Unprintable & { path: (string | number)[] }) | undefined {
  if (typeof value === 'string') {
    const found = findUnprintable(value);
    return found ? { ...found, path: [...path] } : undefined;
  }
  if (value === null || typeof value !== 'object' || path.length > 32) return undefined;
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value);
  for (const [key, v] of entries) {
    if (typeof key === 'string') {
      const inKey = findUnprintable(key);
      if (inKey) return { ...inKey, path: [...path, key] };
    }
    const found = findUnprintableIn(v, [...path, key]);
    if (found) return found;
  }
  return undefined;
}

/**
 * `text` with every unprintable character written as a visible `\uXXXX` escape, newlines and tabs
 * too (for one value in a table cell or a `key  value` line).
 */
export function escapeUnprintable(text: string): string {
  return text.replace(UNPRINTABLE_ALL, escapeOne);
}

/**
 * `text` (a whole piece of output: lines, or JSON) with every unprintable character but newline and
 * tab written as `\uXXXX`. In JSON text such characters can only be inside strings (JSON.stringify
 * escapes the C0 ones itself), where `\uXXXX` is the same character: the JSON stays valid and equal.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNPRINTABLE_IN_OUTPUT, escapeOne);
}

function escapeOne(character: string): string {
  return `\\u${(character.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;
}

function codePointName(character: string): string {
  return `U+${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}
