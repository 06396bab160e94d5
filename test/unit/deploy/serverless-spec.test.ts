import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileRoute, matchRoute } from '../../../scripts/local-cloud/apigw.ts';
import {
  handlerLocation,
  loadServerlessSpec,
  parseRate,
} from '../../../scripts/local-cloud/serverless-spec.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));

describe('serverless.yml', () => {
  it('names a handler module that exists and exports the handler, for every function', async () => {
    const spec = await loadServerlessSpec(`${root}serverless.yml`);
    expect(spec.functions.length).toBeGreaterThan(0);
    for (const fn of spec.functions) {
      const { module, exportName } = handlerLocation(fn.handler);
      expect(existsSync(`${root}${module}`), `${fn.name}: ${module}`).toBe(true);
      const loaded = await import(pathToFileURL(`${root}${module}`).href);
      expect(typeof loaded[exportName], `${fn.name}: ${fn.handler}`).toBe('function');
    }
  });

  it("has each function's router serve exactly the routes declared under that function, and routes every route", async () => {
    const spec = await loadServerlessSpec(`${root}serverless.yml`);
    for (const fn of spec.functions.filter((f) => f.routes.length > 0)) {
      const { module, exportName } = handlerLocation(fn.handler);
      const handler = (await import(pathToFileURL(`${root}${module}`).href))[exportName] as {
        routeKeys?: string[];
      };
      const declared = fn.routes.map((r) => `${r.method} ${r.path}`).sort();
      // A function of one route may be that route's own handler; one of several must route them.
      if (handler.routeKeys === undefined) expect(declared, fn.name).toHaveLength(1);
      else expect([...handler.routeKeys].sort(), fn.name).toEqual(declared);
    }
  });

  it('declares GET /v1/health', async () => {
    const spec = await loadServerlessSpec(`${root}serverless.yml`);
    expect(spec.functions.flatMap((f) => f.routes)).toContainEqual({ method: 'GET', path: '/v1/health' });
  });

  it('declares each route once', async () => {
    const spec = await loadServerlessSpec(`${root}serverless.yml`);
    const keys = spec.functions.flatMap((f) => f.routes.map((r) => `${r.method} ${r.path}`));
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('schedule rates', () => {
  it('turns rate expressions into milliseconds', () => {
    expect(parseRate('rate(1 minute)')).toBe(60_000);
    expect(parseRate('rate(5 minutes)')).toBe(300_000);
    expect(parseRate('rate(2 hours)')).toBe(7_200_000);
    expect(parseRate('rate(1 day)')).toBe(86_400_000);
  });
  it('refuses what it cannot run, saying what it accepts', () => {
    expect(() => parseRate('cron(0 * * * ? *)')).toThrow(/rate\(N minutes\|hours\|days\)/);
  });
});

describe('route matching', () => {
  const routes = [
    compileRoute({ method: 'GET', path: '/v1/snapshots/{id}' }, 'show'),
    compileRoute({ method: 'GET', path: '/v1/snapshots/shared' }, 'shared'),
    compileRoute({ method: 'DELETE', path: '/v1/snapshots/{id}' }, 'delete'),
    compileRoute({ method: 'ANY', path: '/v1/any/{rest+}' }, 'any'),
  ];
  it('prefers literal segments to parameters, as API Gateway does', () => {
    const match = matchRoute(routes, 'GET', '/v1/snapshots/shared');
    expect(match.kind === 'match' && match.route.target).toBe('shared');
  });
  it('extracts and decodes path parameters', () => {
    const match = matchRoute(routes, 'GET', '/v1/snapshots/snap%2Dx');
    expect(match.kind === 'match' && match.pathParameters).toEqual({ id: 'snap-x' });
  });
  it('tells a wrong method from a missing route', () => {
    expect(matchRoute(routes, 'PUT', '/v1/snapshots/x')).toEqual({
      kind: 'methodNotAllowed',
      allowed: ['GET', 'DELETE'],
    });
    expect(matchRoute(routes, 'GET', '/v1/volumes')).toEqual({ kind: 'notFound' });
  });
  it('lets ANY and greedy parameters match the rest of the path', () => {
    const match = matchRoute(routes, 'PATCH', '/v1/any/a/b');
    expect(match.kind === 'match' && match.pathParameters).toEqual({ rest: 'a/b' });
  });
});
