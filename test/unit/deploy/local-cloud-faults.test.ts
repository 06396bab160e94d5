import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type FaultSpec, faultMiddleware, parseFaults } from '../../../scripts/local-cloud/faults.ts';

/** What one request met: `error:<code>`, `reset`, or `ok`, after waiting `waitedMs`. */
async function send(middleware: ReturnType<typeof faultMiddleware>, signed = true): Promise<string> {
  let destroyed = false;
  const ctx = { req: { socket: { destroy: () => (destroyed = true) } }, signed, respond: true };
  try {
    let passed = false;
    await middleware(ctx, async () => {
      passed = true;
    });
    if (destroyed) return ctx.respond ? 'reset (answered?)' : 'reset';
    return passed ? 'ok' : 'dropped';
  } catch (error) {
    return `error:${(error as Error).message}`;
  }
}

function middlewareFor(spec: FaultSpec, countsFile?: string) {
  return faultMiddleware(spec, {
    applies: (ctx) => (ctx as unknown as { signed: boolean }).signed,
    makeError: (code, _message, status) => new Error(`${status} ${code}`),
    ...(countsFile ? { countsFile } : {}),
  });
}

describe('--faults: the local S3 on a bad day', () => {
  it('parses error, reset, latency and stall, and explains a bad spec with the syntax', () => {
    expect(parseFaults('error=0.02,reset=0.01,latency=50ms,stall=0.005:8s', 7)).toEqual({
      error: 0.02,
      reset: 0.01,
      latencyMs: 50,
      stall: 0.005,
      stallMs: 8000,
      seed: 7,
    });
    expect(parseFaults('reset=0.5', 1)).toMatchObject({ error: 0, reset: 0.5, latencyMs: 0, stall: 0 });
    expect(() => parseFaults('error=2', 1)).toThrow(
      /error needs a probability from 0 to 1, got '2'.*Syntax: error=P/,
    );
    expect(() => parseFaults('stall=0.1', 1)).toThrow(/stall duration needs a duration such as 50ms or 8s/);
    expect(() => parseFaults('drop=0.1', 1)).toThrow(/unknown fault 'drop'/);
  });

  it('injects 503 SlowDown, 500 InternalError and resets in the proportions asked, the same sequence for the same seed', async () => {
    const spec = parseFaults('error=0.2,reset=0.1', 42);
    const outcomes = async (s: FaultSpec) => {
      const m = middlewareFor(s);
      const seen: string[] = [];
      for (let i = 0; i < 2000; i++) seen.push(await send(m));
      return seen;
    };
    const first = await outcomes(spec);
    expect(await outcomes(spec)).toEqual(first);
    expect(await outcomes({ ...spec, seed: 43 })).not.toEqual(first);
    const count = (what: string) => first.filter((o) => o === what).length;
    // 20% errors, half of each kind; 10% of the rest reset (binomial: these bounds hold for any seed but a freak).
    expect(count('error:503 SlowDown')).toBeGreaterThan(120);
    expect(count('error:500 InternalError')).toBeGreaterThan(120);
    expect(count('error:503 SlowDown') + count('error:500 InternalError')).toBeLessThan(500);
    expect(count('reset')).toBeGreaterThan(100);
    expect(count('reset')).toBeLessThan(230);
    expect(
      count('ok') + count('reset') + count('error:503 SlowDown') + count('error:500 InternalError'),
    ).toBe(2000);
  });

  it('spares what no role signed (provisioning, the operator, tests)', async () => {
    const m = middlewareFor(parseFaults('error=1', 1));
    expect(await send(m, false)).toBe('ok');
    expect(await send(m, true)).toMatch(/^error:/);
  });

  it('holds a stalled request before S3 acts on it, and counts every fault in its file', async () => {
    const countsFile = join(mkdtempSync(join(tmpdir(), 'volsnap-faults-')), 's3-faults.json');
    writeFileSync(countsFile, '');
    const m = middlewareFor(parseFaults('stall=1:200ms', 1), countsFile);
    let acted = false;
    const ctx = { req: { socket: { destroy: () => {} } }, signed: true };
    const done = m(ctx, async () => {
      acted = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(acted).toBe(false);
    await done;
    expect(acted).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(JSON.parse(readFileSync(countsFile, 'utf8'))).toEqual({
      requests: 1,
      errors: 0,
      resets: 0,
      stalls: 1,
    });
  });
});
