import { InvalidArgumentError } from 'commander';

/** Turns a value parser's error into commander's, so the CLI prints it as a usage error. */
export function option<T, P>(parse: (value: string, previous: P) => T) {
  return (value: string, previous: P): T => {
    try {
      return parse(value, previous);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`'${value}' is not a positive whole number.`);
  return n;
}

export function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || value.trim() === '')
    throw new Error(`'${value}' is not a whole number.`);
  return n;
}

/**
 * Every duration flag's parser (`--grace`, `--every`, `--keep-for`, `--copy-keep-for`,
 * `--agent-timeout`, `--expires`, `--interval`): `90s`, `45m`, `12h`, `30d`, or a bare number of
 * seconds (`0`, `30`) → seconds. What each flag allows beyond that (a minimum, a maximum) is its
 * own check, and the service's.
 */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!match)
    throw new Error(`'${text}' is not a duration: use e.g. 90s, 45m, 12h or 30d (a bare number is seconds).`);
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
