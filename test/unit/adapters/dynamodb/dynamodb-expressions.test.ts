import { describe, expect, it } from 'vitest';
import {
  absentOrAtMost,
  absentOrBelow,
  all,
  any,
  atMost,
  beginsWith,
  changesAnything,
  checkItem,
  deleteItem,
  equals,
  exists,
  filterFields,
  lessThan,
  notEquals,
  notExists,
  oneOf,
  putItem,
  updateItem,
} from '../../../../lib/adapters/dynamodb/expressions.ts';

const KEY = { pk: 'SNAPSHOT#s1', sk: 'SNAPSHOT' };

/** The expression with every placeholder replaced by what it stands for, to read as DynamoDB would. */
function resolved(
  expression: string | undefined,
  params: {
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: Record<string, unknown>;
  },
): string {
  return (expression ?? '')
    .replace(/#n\d+/g, (p) => params.ExpressionAttributeNames?.[p] ?? `<missing ${p}>`)
    .replace(/:v\d+/g, (p) => JSON.stringify(params.ExpressionAttributeValues?.[p] ?? `<missing ${p}>`));
}

describe('updateItem: one meaning of a change', () => {
  it('SETs given values, leaves absent and undefined attributes, REMOVEs null ones', () => {
    const params = updateItem('t', KEY, { set: { name: 'n', description: undefined, stateReason: null } });
    expect(params.TableName).toBe('t');
    expect(params.Key).toEqual(KEY);
    expect(resolved(params.UpdateExpression, params)).toBe('SET name = "n" REMOVE stateReason');
    expect(Object.values(params.ExpressionAttributeNames ?? {})).not.toContain('description');
  });

  it('REMOVEs an attribute set to an empty Set (DynamoDB stores no empty set) and SETs a non-empty one', () => {
    const params = updateItem('t', KEY, { set: { permissions: new Set(), roles: new Set(['a']) } });
    expect(params.UpdateExpression).toBe('SET #n1 = :v0 REMOVE #n0');
    expect(params.ExpressionAttributeNames).toEqual({ '#n0': 'permissions', '#n1': 'roles' });
    expect(params.ExpressionAttributeValues).toEqual({ ':v0': new Set(['a']) });
  });

  it('keeps falsy values that are values: 0, false and the empty string are SET', () => {
    const params = updateItem('t', KEY, { set: { progress: 0, public: false, description: '' } });
    expect(resolved(params.UpdateExpression, params)).toBe(
      'SET progress = 0, public = false, description = ""',
    );
  });

  it('writes if_not_exists for setIfAbsent, and ADD and DELETE for counters and sets', () => {
    const params = updateItem('t', KEY, {
      setIfAbsent: { revokedAt: '2026-01-01' },
      add: { snapshots: 1, storedBytes: -5, partsDone: new Set([3]), skipped: undefined },
      delete: { sharedWith: new Set(['acct-b']) },
    });
    expect(resolved(params.UpdateExpression, params)).toBe(
      'SET revokedAt = if_not_exists(revokedAt, "2026-01-01") ADD snapshots 1, storedBytes -5, partsDone {} DELETE sharedWith {}',
    );
    expect(params.ExpressionAttributeValues?.[':v3']).toEqual(new Set([3]));
    expect(params.ExpressionAttributeValues?.[':v4']).toEqual(new Set(['acct-b']));
  });

  it('addresses a map entry segment by segment: a dot or # in an entry name stays part of the name', () => {
    const params = updateItem('t', KEY, {
      setEntries: { holds: { 'copy.v1#x': '2026-02-01', gone: null, later: undefined } },
    });
    expect(params.UpdateExpression).toBe('SET #n0.#n1 = :v0 REMOVE #n0.#n2');
    expect(params.ExpressionAttributeNames).toEqual({ '#n0': 'holds', '#n1': 'copy.v1#x', '#n2': 'gone' });
  });

  it('never writes a name raw, so reserved words (state, name, type, public) need no care; a name used twice has one placeholder', () => {
    const params = updateItem(
      't',
      KEY,
      { set: { state: 'completed', name: 'x', type: 'snapshot', public: true } },
      all(equals('state', 'pending'), exists('name')),
    );
    for (const word of ['state', 'name', 'type', 'public'])
      expect(`${params.UpdateExpression} ${params.ConditionExpression}`).not.toMatch(
        new RegExp(`\\b${word}\\b`),
      );
    expect(Object.values(params.ExpressionAttributeNames ?? {}).filter((n) => n === 'state')).toHaveLength(1);
    expect(params.ConditionExpression).toBe('#n0 = :v4 AND attribute_exists(#n1)');
  });

  it('refuses an update of nothing, which changesAnything tells beforehand', () => {
    const nothing = { set: { name: undefined }, add: { snapshots: undefined }, setEntries: { holds: {} } };
    expect(changesAnything(nothing)).toBe(false);
    expect(() => updateItem('t', KEY, nothing)).toThrow(/does nothing/);
    expect(changesAnything({ set: { stateReason: null } })).toBe(true);
    expect(changesAnything({ setEntries: { etags: { '1': 'e' } } })).toBe(true);
  });

  it('leaves ExpressionAttributeValues and ConditionExpression out when there are none (DynamoDB refuses empty ones)', () => {
    const params = updateItem('t', KEY, { set: { gsi3pk: null } });
    expect(params).toEqual({
      TableName: 't',
      Key: KEY,
      UpdateExpression: 'REMOVE #n0',
      ExpressionAttributeNames: { '#n0': 'gsi3pk' },
    });
  });
});

describe('conditions', () => {
  const render = (condition: Parameters<typeof deleteItem>[2]) => {
    const params = deleteItem('t', KEY, condition);
    return resolved(params.ConditionExpression, params);
  };

  it('renders every operator', () => {
    expect(render(exists('pk'))).toBe('attribute_exists(pk)');
    expect(render(notExists('pk'))).toBe('attribute_not_exists(pk)');
    expect(render(equals('revision', 3))).toBe('revision = 3');
    expect(render(notEquals('state', 'deleting'))).toBe('state <> "deleting"');
    expect(render(lessThan('requests', 10))).toBe('requests < 10');
    expect(render(atMost('untilMs', 99))).toBe('untilMs <= 99');
    expect(render(oneOf('state', ['queued', 'pending']))).toBe('state IN ("queued", "pending")');
    expect(render(beginsWith('name', 'night'))).toBe('begins_with(name, "night")');
    expect(render(equals(['tags', 'env.stage'], 'prod'))).toBe('tags.env.stage = "prod"');
  });

  it('makes a one-value IN an equality, and refuses an empty one', () => {
    expect(render(oneOf('state', ['pending']))).toBe('state = "pending"');
    expect(() => oneOf('state', [])).toThrow(/at least one/);
  });

  it('treats an absent counter as 0 in the limit checks', () => {
    expect(render(absentOrBelow('snapshots', 5))).toBe('attribute_not_exists(snapshots) OR snapshots < 5');
    expect(render(absentOrAtMost('storedBytes', 7))).toBe(
      'attribute_not_exists(storedBytes) OR storedBytes <= 7',
    );
  });

  it('brackets nested combinations and leaves out the optional checks not asked for', () => {
    const condition = all(
      exists('pk'),
      undefined,
      absentOrBelow('pendingSnapshots', 2),
      any(notExists('lease'), equals('lease', 'L')),
    );
    expect(render(condition)).toBe(
      'attribute_exists(pk) AND (attribute_not_exists(pendingSnapshots) OR pendingSnapshots < 2) AND (attribute_not_exists(lease) OR lease = "L")',
    );
    expect(all(undefined, undefined)).toBeUndefined();
    expect(render(all(undefined, equals('a', 1)))).toBe('a = 1');
  });

  it('gives every value its own placeholder, even equal ones', () => {
    const params = deleteItem('t', KEY, all(equals('a', 1), equals('b', 1)));
    expect(params.ExpressionAttributeValues).toEqual({ ':v0': 1, ':v1': 1 });
  });
});

describe('putItem, deleteItem, checkItem', () => {
  it('stores no undefined, null or empty-set attribute in a put, and keeps falsy values', () => {
    const params = putItem(
      't',
      { ...KEY, a: undefined, b: null, c: new Set(), d: 0, e: false, f: '' },
      notExists('pk'),
    );
    expect(params.Item).toEqual({ ...KEY, d: 0, e: false, f: '' });
    expect(resolved(params.ConditionExpression, params)).toBe('attribute_not_exists(pk)');
    expect(params.ExpressionAttributeValues).toBeUndefined();
  });

  it('writes no expression fields for an unconditional put or delete', () => {
    expect(putItem('t', { ...KEY })).toEqual({ TableName: 't', Item: KEY });
    expect(deleteItem('t', KEY)).toEqual({ TableName: 't', Key: KEY });
  });

  it('builds a transaction ConditionCheck with its condition', () => {
    const params = checkItem('t', KEY, oneOf('state', ['completed', 'recycled']));
    expect(resolved(params.ConditionExpression, params)).toBe('state IN ("completed", "recycled")');
    expect(params.Key).toEqual(KEY);
  });
});

describe('filterFields', () => {
  it("renders a query's filter with placeholders that cannot collide with the key condition's #pk and :pk", () => {
    const fields = filterFields(all(equals('state', 'completed'), equals(['tags', 'constructor'], 'x')));
    expect(fields.FilterExpression).toBe('#n0 = :v0 AND #n1.#n2 = :v1');
    expect(fields.ExpressionAttributeNames).toEqual({ '#n0': 'state', '#n1': 'tags', '#n2': 'constructor' });
    expect(fields.ExpressionAttributeValues).toEqual({ ':v0': 'completed', ':v1': 'x' });
    expect(fields).not.toHaveProperty('ConditionExpression');
  });

  it('is nothing at all without a condition', () => {
    expect(filterFields(undefined)).toEqual({});
  });
});
