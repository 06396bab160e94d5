// `npx tsx scripts/bench/profile-summary.ts FILE.cpuprofile [--from µs --to µs] [--top N]`: where a
// V8 CPU profile's time went, as text: self time by function and by package (a node_modules
// package, node's own internals, volsnap's folders), optionally within a window of the profile's
// clock (the marks scripts/profile-ebs.ts prints). What the bench's notes cite as "the profile".
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SourceMapConsumer } from 'source-map-js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

/** A V8 CPU profile as `Profiler.stop` and `--cpu-prof` write it. */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time in ms, by key. */
export type Breakdown = [key: string, ms: number][];

/** Where a frame's code lives: a node_modules package, node's internals, a volsnap folder, or V8's own states. */
export function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : `(${functionName || 'native'})`;
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) return 'node internals';
  // volsnap's own code: its folder (lib/core/snapshots, functions/http…).
  const volsnap = /(?:^|\/)((?:lib|functions|scripts)(?:\/[^/]+)*)\/[^/]+$/.exec(url);
  if (volsnap?.[1]) return volsnap[1];
  return url.replace(/^file:\/\//, '');
}

/**
 * Maps a frame of a bundle (the local cloud runs esbuild bundles with linked source maps) to the
 * source it was built from, so that time is charged to the SDK package or volsnap folder, not to
 * the bundle file. Frames of files without a map are left as they are.
 */
class SourceMaps {
  readonly #maps = new Map<string, SourceMapConsumer | undefined>();

  original(url: string, line: number, column: number): string {
    if (!url.startsWith('file://')) return url;
    const file = fileURLToPath(url.replace(/\?.*$/, ''));
    let map = this.#maps.get(file);
    if (!this.#maps.has(file)) {
      map = existsSync(`${file}.map`)
        ? new SourceMapConsumer(JSON.parse(readFileSync(`${file}.map`, 'utf8')))
        : undefined;
      this.#maps.set(file, map);
    }
    if (!map) return url;
    // V8's lines and columns are 0-based; the map's lines 1-based, columns 0-based.
    const source = map.originalPositionFor({ line: line + 1, column }).source;
    // Sources are relative to the map's folder (bundles are built under node_modules/.cache).
    return source ? resolve(dirname(file), source) : url;
  }
}

/** Self time by function and by package, of the samples taken in [from, to] (µs, the profile's clock). */
export function summarize(
  profile: CpuProfile,
  window: { from?: number; to?: number } = {},
): { totalMs: number; idleMs: number; byFunction: Breakdown; byPackage: Breakdown } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const maps = new SourceMaps();
  const sources = new Map<number, string>();
  const sourceOf = (node: ProfileNode) => {
    let source = sources.get(node.id);
    if (source === undefined) {
      const { url, lineNumber, columnNumber } = node.callFrame;
      source = url ? maps.original(url, lineNumber, columnNumber) : '';
      sources.set(node.id, source);
    }
    return source;
  };
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  let at = profile.startTime;
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if ((window.from !== undefined && at < window.from) || (window.to !== undefined && at > window.to))
      continue;
    const node = nodes.get(profile.samples[i] ?? -1);
    if (!node) continue;
    const ms = delta / 1000;
    const { functionName } = node.callFrame;
    if (functionName === '(idle)') {
      idle += ms;
      continue;
    }
    total += ms;
    const source = sourceOf(node);
    const where = source ? source.replace(/^.*\/(node_modules|lib|functions|scripts)\//, '$1/') : '';
    const fn = `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
    const pkg = packageOf(source, functionName);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + ms);
  }
  const sorted = (m: Map<string, number>): Breakdown => [...m].sort((a, b) => b[1] - a[1]);
  return { totalMs: total, idleMs: idle, byFunction: sorted(byFunction), byPackage: sorted(byPackage) };
}

/** The summary as text: the busy time, then the top `top` packages and functions by self time. */
export function formatSummary(summary: ReturnType<typeof summarize>, top = 20): string {
  const line = ([key, ms]: [string, number]) =>
    `${ms.toFixed(0).padStart(7)} ms ${((100 * ms) / summary.totalMs).toFixed(1).padStart(5)}%  ${key}`;
  return [
    `busy ${summary.totalMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms`,
    'by package (self time):',
    ...summary.byPackage.slice(0, top).map(line),
    'by function (self time):',
    ...summary.byFunction.slice(0, top).map(line),
  ].join('\n');
}

/** A step of a profiled run and its window in the profiles' clock (µs). */
export interface ProfileWindow {
  name: string;
  from: number;
  to: number;
}

/**
 * Makes the local cloud's region processes started after this (they inherit NODE_OPTIONS) write a
 * CPU profile into `dir` when they exit (scripts/cpu-profile-preload.mjs).
 */
export async function profileRegionProcesses(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const preload = fileURLToPath(new URL('../cpu-profile-preload.mjs', import.meta.url));
  process.env.NODE_OPTIONS = [
    process.env.NODE_OPTIONS,
    `--import ${pathToFileURL(preload).href}?dir=${encodeURIComponent(dir)}`,
  ]
    .filter(Boolean)
    .join(' ');
}

/** Prints, for every profile in `dir`, each window's summary; profiles in `dir/cli` whole (one per CLI command). */
export async function printProfiles(dir: string, windows: readonly ProfileWindow[], top = 12): Promise<void> {
  const read = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = await read(join(dir, file));
    for (const window of windows)
      console.log(`\n${file}, ${window.name}:\n${formatSummary(summarize(profile, window), top)}`);
  }
  const cli = join(dir, 'cli');
  for (const file of await readdir(cli).catch(() => [] as string[]))
    console.log(`\nthe CLI, ${file}:\n${formatSummary(summarize(await read(join(cli, file))), top)}`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string', default: '20' } },
  });
  for (const file of positionals) {
    const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
    const window = {
      ...(values.from ? { from: Number(values.from) } : {}),
      ...(values.to ? { to: Number(values.to) } : {}),
    };
    console.log(`${file}\n${formatSummary(summarize(profile, window), Number(values.top))}\n`);
  }
}
