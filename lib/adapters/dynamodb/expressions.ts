/**
 * The one builder of DynamoDB write parameters. Pure: it turns a key, a change and a condition into
 * the fields of an UpdateItem / PutItem / DeleteItem / ConditionCheck (the same fields serve as a
 * TransactWriteItems item); the repositories send them.
 *
 * One meaning of a change, everywhere:
 * - an attribute that is absent from `set`, or given as `undefined`, is left as it is;
 * - `null` REMOVEs it (DynamoDB's NULL type is never stored);
 * - an empty Set REMOVEs it too (DynamoDB cannot store an empty set).
 * The same goes for {@link putItem}: `undefined`, `null` and empty sets are not stored. This is the
 * document client's own `removeUndefinedValues`, so a put and an update read a change alike.
 *
 * Every attribute name goes through `ExpressionAttributeNames` (`#n0`, …) and every value through
 * `ExpressionAttributeValues` (`:v0`, …): reserved words (`state`, `name`, `type`, …) and names
 * with dots or `#` in them (a holder id, a part number) are safe without care at the call site.
 */

/** A key of the single table. */
export type Key = Record<string, unknown>;

/** An attribute name, or a path into nested maps given segment by segment (never split on dots). */
export type Path = string | readonly string[];

/** A condition, built with the functions below and rendered by the builders. */
export type Condition =
  | { readonly kind: 'exists' | 'notExists'; readonly path: Path }
  | {
      readonly kind: 'compare';
      readonly path: Path;
      readonly op: '=' | '<>' | '<' | '<=';
      readonly value: unknown;
    }
  | { readonly kind: 'in'; readonly path: Path; readonly values: readonly unknown[] }
  | { readonly kind: 'beginsWith'; readonly path: Path; readonly prefix: string }
  | { readonly kind: 'and' | 'or'; readonly parts: readonly Condition[] };

/** `attribute_exists(path)`. */
export const exists = (path: Path): Condition => ({ kind: 'exists', path });
/** `attribute_not_exists(path)`. */
export const notExists = (path: Path): Condition => ({ kind: 'notExists', path });
/** `path = value`. */
export const equals = (path: Path, value: unknown): Condition => ({ kind: 'compare', path, op: '=', value });
/** `path <> value` (true where the attribute is absent). */
export const notEquals = (path: Path, value: unknown): Condition => ({
  kind: 'compare',
  path,
  op: '<>',
  value,
});
/** `path < value`. */
export const lessThan = (path: Path, value: unknown): Condition => ({
  kind: 'compare',
  path,
  op: '<',
  value,
});
/** `path <= value`. */
export const atMost = (path: Path, value: unknown): Condition => ({ kind: 'compare', path, op: '<=', value });
/** `begins_with(path, prefix)`. */
export const beginsWith = (path: Path, prefix: string): Condition => ({ kind: 'beginsWith', path, prefix });
/** `path IN (values…)`; an empty list is refused (DynamoDB has no empty IN). */
export function oneOf(path: Path, values: readonly unknown[]): Condition {
  if (values.length === 0) throw new Error('oneOf: an IN list needs at least one value');
  return values.length === 1 ? equals(path, values[0]) : { kind: 'in', path, values };
}
/** Every condition given (the `undefined` ones, optional checks not asked for, are left out). */
export function all(...parts: [Condition, ...Condition[]]): Condition;
export function all(...parts: (Condition | undefined)[]): Condition | undefined;
export function all(...parts: (Condition | undefined)[]): Condition | undefined {
  return combine('and', parts);
}
/** Any of the conditions given (the `undefined` ones are left out). */
export function any(...parts: [Condition, ...Condition[]]): Condition;
export function any(...parts: (Condition | undefined)[]): Condition | undefined;
export function any(...parts: (Condition | undefined)[]): Condition | undefined {
  return combine('or', parts);
}
/** A counter below `max`, an absent counter counting as 0: `attribute_not_exists(c) OR c < max`. */
export const absentOrBelow = (path: Path, max: number): Condition =>
  any(notExists(path), lessThan(path, max));
/** A counter at most `max`, absent counting as 0. */
export const absentOrAtMost = (path: Path, max: number): Condition => any(notExists(path), atMost(path, max));

function combine(kind: 'and' | 'or', parts: (Condition | undefined)[]): Condition | undefined {
  const given = parts.filter((part): part is Condition => part !== undefined);
  if (given.length <= 1) return given[0];
  return { kind, parts: given };
}

/**
 * What an update does. Every section is optional; within each, an `undefined` entry is no action.
 * Attribute names are top-level names (a dot in one is part of the name).
 */
export interface Change {
  /** `SET name = value`; `null` or an empty Set: `REMOVE name`; `undefined`: left as it is. */
  readonly set?: Readonly<Record<string, unknown>>;
  /** `SET name = if_not_exists(name, value)`: written only where there is none yet. */
  readonly setIfAbsent?: Readonly<Record<string, unknown>>;
  /** Entries of map attributes: `SET map.entry = value`; `null`: `REMOVE map.entry`. The map must exist. */
  readonly setEntries?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** `ADD name value`: a number added to a counter (absent counts as 0), or members added to a set. */
  readonly add?: Readonly<Record<string, number | ReadonlySet<string | number> | undefined>>;
  /** `DELETE name members`: members taken out of a set attribute. */
  readonly delete?: Readonly<Record<string, ReadonlySet<string | number> | undefined>>;
}

/** The expression fields shared by every kind of write. */
export interface ExpressionFields {
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}

export interface UpdateParams extends ExpressionFields {
  TableName: string;
  Key: Key;
  UpdateExpression: string;
}
export interface PutParams extends ExpressionFields {
  TableName: string;
  Item: Record<string, unknown>;
}
export interface KeyParams extends ExpressionFields {
  TableName: string;
  Key: Key;
}

/** Whether `change` does anything at all (an update of nothing is not an expression). */
export function changesAnything(change: Change): boolean {
  const sections = [change.set, change.setIfAbsent, change.add, change.delete];
  if (sections.some((section) => Object.values(section ?? {}).some((v) => v !== undefined))) return true;
  return Object.values(change.setEntries ?? {}).some((entries) =>
    Object.values(entries).some((v) => v !== undefined),
  );
}

/** The parameters of an UpdateItem (or a transaction's Update) applying `change` under `condition`. */
export function updateItem(table: string, key: Key, change: Change, condition?: Condition): UpdateParams {
  const e = new Expressions();
  const sets: string[] = [];
  const removes: string[] = [];
  for (const [name, value] of Object.entries(change.set ?? {})) {
    if (value === undefined) continue;
    if (removesAttribute(value)) removes.push(e.name(name));
    else sets.push(`${e.name(name)} = ${e.value(value)}`);
  }
  for (const [name, value] of Object.entries(change.setIfAbsent ?? {})) {
    if (value === undefined) continue;
    const n = e.name(name);
    sets.push(`${n} = if_not_exists(${n}, ${e.value(value)})`);
  }
  for (const [map, entries] of Object.entries(change.setEntries ?? {})) {
    for (const [entry, value] of Object.entries(entries)) {
      if (value === undefined) continue;
      const path = e.path([map, entry]);
      if (removesAttribute(value)) removes.push(path);
      else sets.push(`${path} = ${e.value(value)}`);
    }
  }
  const adds = actions(e, change.add);
  const deletes = actions(e, change.delete);
  const clauses = [
    sets.length > 0 ? `SET ${sets.join(', ')}` : '',
    removes.length > 0 ? `REMOVE ${removes.join(', ')}` : '',
    adds.length > 0 ? `ADD ${adds.join(', ')}` : '',
    deletes.length > 0 ? `DELETE ${deletes.join(', ')}` : '',
  ].filter((clause) => clause !== '');
  if (clauses.length === 0) throw new Error('updateItem: the change does nothing (see changesAnything)');
  const ConditionExpression = condition ? e.condition(condition) : undefined;
  return {
    TableName: table,
    Key: key,
    UpdateExpression: clauses.join(' '),
    ...e.fields(ConditionExpression),
  };
}

/**
 * The parameters of a PutItem (or a transaction's Put) of `item` under `condition`. Attributes
 * that are `undefined`, `null` or an empty Set are not stored (see the module's comment).
 */
export function putItem(table: string, item: Record<string, unknown>, condition?: Condition): PutParams {
  const e = new Expressions();
  const stored = Object.fromEntries(
    Object.entries(item).filter(([, value]) => value !== undefined && !removesAttribute(value)),
  );
  const ConditionExpression = condition ? e.condition(condition) : undefined;
  return { TableName: table, Item: stored, ...e.fields(ConditionExpression) };
}

/** The parameters of a DeleteItem (or a transaction's Delete) of `key` under `condition`. */
export function deleteItem(table: string, key: Key, condition?: Condition): KeyParams {
  const e = new Expressions();
  const ConditionExpression = condition ? e.condition(condition) : undefined;
  return { TableName: table, Key: key, ...e.fields(ConditionExpression) };
}

/** The parameters of a transaction's ConditionCheck: `condition` must hold on `key`'s item. */
export function checkItem(
  table: string,
  key: Key,
  condition: Condition,
): KeyParams & { ConditionExpression: string } {
  const e = new Expressions();
  const ConditionExpression = e.condition(condition);
  return { TableName: table, Key: key, ...e.fields(ConditionExpression), ConditionExpression };
}

/**
 * The FilterExpression of a query or scan, with its names and values (placeholders `#n…`/`:v…`, so
 * a key condition's own `#pk`/`:pk` never collide); none at all without a condition.
 */
export function filterFields(condition: Condition | undefined): {
  FilterExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
} {
  if (!condition) return {};
  const e = new Expressions();
  const FilterExpression = e.condition(condition);
  const { ConditionExpression: _, ...fields } = e.fields(FilterExpression);
  return { FilterExpression, ...fields };
}

function removesAttribute(value: unknown): boolean {
  return value === null || (value instanceof Set && value.size === 0);
}

function actions(
  e: Expressions,
  section: Readonly<Record<string, number | ReadonlySet<string | number> | undefined>> | undefined,
): string[] {
  return Object.entries(section ?? {})
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${e.name(name)} ${e.value(value)}`);
}

/** The placeholders of one expression: each distinct name once, each value its own. */
class Expressions {
  readonly #names = new Map<string, string>();
  readonly #values: Record<string, unknown> = {};
  #valueCount = 0;

  name(name: string): string {
    let placeholder = this.#names.get(name);
    if (!placeholder) {
      placeholder = `#n${this.#names.size}`;
      this.#names.set(name, placeholder);
    }
    return placeholder;
  }

  path(path: Path): string {
    return (typeof path === 'string' ? [path] : path).map((segment) => this.name(segment)).join('.');
  }

  value(value: unknown): string {
    const placeholder = `:v${this.#valueCount++}`;
    this.#values[placeholder] = value;
    return placeholder;
  }

  condition(condition: Condition, nested = false): string {
    switch (condition.kind) {
      case 'exists':
        return `attribute_exists(${this.path(condition.path)})`;
      case 'notExists':
        return `attribute_not_exists(${this.path(condition.path)})`;
      case 'compare':
        return `${this.path(condition.path)} ${condition.op} ${this.value(condition.value)}`;
      case 'in':
        return `${this.path(condition.path)} IN (${condition.values.map((v) => this.value(v)).join(', ')})`;
      case 'beginsWith':
        return `begins_with(${this.path(condition.path)}, ${this.value(condition.prefix)})`;
      case 'and':
      case 'or': {
        const joined = condition.parts
          .map((part) => this.condition(part, true))
          .join(condition.kind === 'and' ? ' AND ' : ' OR ');
        return nested ? `(${joined})` : joined;
      }
    }
  }

  fields(conditionExpression: string | undefined): ExpressionFields {
    return {
      ...(conditionExpression !== undefined ? { ConditionExpression: conditionExpression } : {}),
      ...(this.#names.size > 0
        ? { ExpressionAttributeNames: Object.fromEntries([...this.#names].map(([n, p]) => [p, n])) }
        : {}),
      ...(this.#valueCount > 0 ? { ExpressionAttributeValues: { ...this.#values } } : {}),
    };
  }
}

/** A workers' lease as the reaper renews it. */
export interface LeaseRenewal {
  leaseUntil: string;
  leaseParts: number;
  dispatches: number;
}

/**
 * The reaper's renewal of a pending item's lease: only while it is `pending` and its lease is still
 * the one the reaper read (`expected`; absent: none yet), so one renewal wins a race.
 */
export function renewLeaseUpdate(
  table: string,
  key: Key,
  expected: string | undefined,
  lease: LeaseRenewal,
): UpdateParams {
  return updateItem(
    table,
    key,
    { set: { ...lease } },
    all(
      equals('state', 'pending'),
      expected === undefined ? notExists('leaseUntil') : equals('leaseUntil', expected),
    ),
  );
}

/** A worker's extension of a pending item's lease, as its parts progress. */
export function extendLeaseUpdate(table: string, key: Key, leaseUntil: string): UpdateParams {
  return updateItem(table, key, { set: { leaseUntil } }, equals('state', 'pending'));
}
