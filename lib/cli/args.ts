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

/** `90s`, `45m`, `12h`, `30d` → seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (!match) throw new Error(`'${text}' is not a duration: use e.g. 90s, 45m, 12h or 30d.`);
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
