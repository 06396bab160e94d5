// The local S3's bad days: `npm start -- --faults error=0.02,reset=0.01,latency=50ms,stall=0.005:8s`
// makes the S3 front (./s3-emulator-process.ts) answer some of the functions' requests and presigned
// requests (everything a region's role signed) with 503 SlowDown or 500 InternalError, close some
// connections without an answer, delay every one, and hold some for a long while, as S3 does on a
// bad day. Draws come from a seeded generator (--faults-seed), so one seed gives one sequence of
// faults for one sequence of requests. Requests the operator signs (provisioning, tests) are spared.
import { writeFile } from 'node:fs/promises';

/** What to inject, per request a role signed. */
export interface FaultSpec {
  /** Probability of an error answer (half 503 SlowDown, half 500 InternalError), before S3 acts. */
  error: number;
  /** Probability that the connection is closed without an answer, before S3 acts. */
  reset: number;
  /** Added to every request, in milliseconds. */
  latencyMs: number;
  /** Probability that a request is held for `stallMs` before S3 acts on it. */
  stall: number;
  stallMs: number;
  /** Seed of the generator all draws come from. */
  seed: number;
}

/** How many of each fault were injected (the S3 front keeps a file of them). */
export interface FaultCounts {
  requests: number;
  errors: number;
  resets: number;
  stalls: number;
}

export const FAULTS_SYNTAX =
  'error=P,reset=P,latency=DURATION,stall=P:DURATION (P a probability 0–1; DURATION like 50ms or 8s), e.g. error=0.02,reset=0.01,latency=50ms,stall=0.005:8s';

/** Parses `--faults`; any part may be left out (it then injects nothing of that kind). */
export function parseFaults(text: string, seed: number): FaultSpec {
  const spec: FaultSpec = { error: 0, reset: 0, latencyMs: 0, stall: 0, stallMs: 0, seed };
  const bad = (why: string) => new Error(`--faults '${text}': ${why}. Syntax: ${FAULTS_SYNTAX}.`);
  for (const part of text.split(',').map((p) => p.trim())) {
    if (!part) continue;
    const [name, value = ''] = part.split('=', 2) as [string, string?];
    if (name === 'error' || name === 'reset') spec[name] = probability(value, name, bad);
    else if (name === 'latency') spec.latencyMs = duration(value, name, bad);
    else if (name === 'stall') {
      const [p = '', d = ''] = value.split(':', 2);
      spec.stall = probability(p, name, bad);
      spec.stallMs = duration(d, 'stall duration', bad);
    } else throw bad(`unknown fault '${name}'`);
  }
  return spec;
}

function probability(value: string, name: string, bad: (why: string) => Error): number {
  const p = Number(value);
  if (value === '' || !Number.isFinite(p) || p < 0 || p > 1)
    throw bad(`${name} needs a probability from 0 to 1, got '${value}'`);
  return p;
}

function duration(value: string, name: string, bad: (why: string) => Error): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(value);
  if (!match) throw bad(`${name} needs a duration such as 50ms or 8s, got '${value}'`);
  return Number(match[1]) * (match[2] === 's' ? 1000 : 1);
}

/** A small seeded generator (mulberry32): uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The parts of s3rver's Koa context the fault middleware uses. */
interface FaultContext {
  req: { socket: { destroy(): void } };
  respond?: boolean;
}

/**
 * A Koa middleware for the S3 front, behind the signature check: for each request `applies` accepts,
 * adds the latency, then draws (in this order) a stall, an error, a reset. The error is thrown as
 * `makeError(code, message, status)` (s3rver renders S3's XML). Counts go to `countsFile` (at most
 * once a second) when given.
 */
export function faultMiddleware(
  spec: FaultSpec,
  options: {
    applies: (ctx: FaultContext) => boolean;
    makeError: (code: string, message: string, status: number) => Error;
    countsFile?: string;
    initialCounts?: FaultCounts;
  },
) {
  const random = seededRandom(spec.seed);
  const counts: FaultCounts = options.initialCounts ?? { requests: 0, errors: 0, resets: 0, stalls: 0 };
  let saving: NodeJS.Timeout | undefined;
  const save = () => {
    if (!options.countsFile || saving) return;
    saving = setTimeout(() => {
      saving = undefined;
      void writeFile(options.countsFile as string, JSON.stringify(counts)).catch(() => {});
    }, 1000);
  };
  return async function injectFaults(ctx: FaultContext, next: () => Promise<void>): Promise<void> {
    if (!options.applies(ctx)) return next();
    counts.requests++;
    const [stall, error, reset, kind] = [random(), random(), random(), random()];
    const wait = spec.latencyMs + (stall < spec.stall ? spec.stallMs : 0);
    if (stall < spec.stall) counts.stalls++;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (error < spec.error) {
      counts.errors++;
      save();
      throw kind < 0.5
        ? options.makeError('SlowDown', 'Please reduce your request rate.', 503)
        : options.makeError('InternalError', 'We encountered an internal error. Please try again.', 500);
    }
    if (reset < spec.reset) {
      counts.resets++;
      save();
      ctx.respond = false;
      ctx.req.socket.destroy();
      return;
    }
    if (wait > 0) save();
    return next();
  };
}

/** A one-line description for the cloud's banner. */
export function describeFaults(spec: FaultSpec): string {
  const parts = [
    spec.error > 0 ? `${spec.error * 100}% errors (503 SlowDown / 500)` : '',
    spec.reset > 0 ? `${spec.reset * 100}% connection resets` : '',
    spec.latencyMs > 0 ? `+${spec.latencyMs} ms latency` : '',
    spec.stall > 0 ? `${spec.stall * 100}% stalls of ${spec.stallMs / 1000} s` : '',
  ].filter(Boolean);
  return `${parts.join(', ') || 'none'} (seed ${spec.seed})`;
}
