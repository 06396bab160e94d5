// The Lambda bundles of serverless.yml, built as `npm run package` builds them (the same esbuild
// options, read from `custom.esbuild`), for the local cloud to run. Built once per content: a cache
// under node_modules/.cache keyed by the options, the lockfile and every source file a bundle is made of.
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build, version as esbuildVersion, type Metafile } from 'esbuild';
import { parse } from 'yaml';
import { handlerLocation } from './serverless-spec.ts';

/** The repository: its lockfile and tsconfig are inputs of every bundle, its node_modules holds the cache. */
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Bumped when the way bundles are built here changes, so older cache entries are not reused. */
const BUILDER_VERSION = 4;
/** Cache entries (an index and the build it names) kept, newest first; older ones are removed. */
const KEEP_ENTRIES = 6;
/** A bundle folder younger than this is never removed: another process may be about to index it. */
const PRUNE_GRACE_MS = 10 * 60_000;

/** What serverless-esbuild reads from `custom.esbuild` that esbuild's own API does not take. */
const PLUGIN_ONLY_KEYS = new Set([
  'exclude',
  'outputFileExtension',
  'packager',
  'packagerOptions',
  'nativeZip',
  'keepOutputDirectory',
  'installExtraArgs',
  'concurrency',
  'zipConcurrency',
  'watch',
  'skipBuild',
  'skipRebuild',
  'stripEntryResolveExtensions',
  'disposeContext',
  'config',
  'plugins',
  'external',
]);

/** serverless.yml's `custom.esbuild`, as esbuild's API takes it, and the bundles' file extension. */
export interface BundleSettings {
  esbuild: BuildOptions;
  extension: string;
}

/**
 * Reads `custom.esbuild` of a serverless.yml: its esbuild options pass through, `exclude` becomes
 * esbuild's `external` (what serverless-esbuild does with it), `outputFileExtension` the bundles'
 * extension. Fails on the plugin's packaging options (`external`, `packager`…), which would make the
 * deployed packages differ from these bundles.
 */
export function bundleSettings(serverlessYml: string): BundleSettings {
  const custom = (parse(serverlessYml) as { custom?: { esbuild?: Record<string, unknown> } }).custom;
  const declared = custom?.esbuild;
  if (!declared) throw new Error('serverless.yml declares no custom.esbuild: the bundles have no options.');
  const { exclude = [], outputFileExtension = '.js', ...rest } = declared;
  const unsupported = Object.keys(rest).filter((key) => PLUGIN_ONLY_KEYS.has(key));
  if (unsupported.length > 0)
    throw new Error(
      `custom.esbuild.${unsupported.join(', ')}: the local cloud builds bundles with esbuild alone and cannot follow these serverless-esbuild options.`,
    );
  return {
    esbuild: { ...(rest as BuildOptions), external: exclude as string[] },
    extension: String(outputFileExtension),
  };
}

/** A set of built bundles: one file per handler module, `dir/<module><extension>`. */
export interface Bundles {
  dir: string;
  extension: string;
  /** The handler modules built, as serverless.yml names them (`functions/http/health`). */
  modules: string[];
  /** What the bundles import that is not inside them, besides Node's own modules. */
  externals: string[];
  /**
   * What each bundle is made of, by module (`functions/http/health`): its source files (relative to
   * the project, `lib/core/tasks/exports.ts`) and packages (`@aws-sdk/client-s3`), from esbuild's
   * metafile, sorted. What tells a bundle that carries a service its routes never use.
   */
  contents: Record<string, string[]>;
  /** Whether they came from the cache. */
  cached: boolean;
  /** How long finding or building them took. */
  ms: number;
}

export interface BuildBundlesOptions {
  /** The serverless.yml whose functions to bundle, with its `custom.esbuild`. */
  specPath: string;
  /** The folder its handler paths are relative to (default: the serverless.yml's). */
  specRoot?: string;
  /** Where built bundles are kept (default: node_modules/.cache/volsnap-bundles). */
  cacheDir?: string;
  /** Replaces `custom.esbuild.exclude` (the cold-start script's comparison with the SDK left out). */
  exclude?: string[];
}

interface CacheIndex {
  /** The bundle folder (in the cache) these inputs built. */
  out: string;
  /** Source files (relative to the project) and their SHA-256; node_modules is the lockfile's. */
  inputs: Record<string, string>;
  /** The build's imports of packages left outside it. */
  externals: string[];
  /** Each output's sources and packages ({@link Bundles.contents}). */
  contents: Record<string, string[]>;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

async function fileHash(path: string): Promise<string | undefined> {
  try {
    return sha256(await readFile(path));
  } catch {
    return undefined;
  }
}

/** The handler modules of a serverless.yml: its functions' handler paths, without extension, once each. */
function handlerModules(serverlessYml: string): string[] {
  const { functions = {} } = parse(serverlessYml) as { functions?: Record<string, { handler?: string }> };
  const modules = Object.values(functions).map((fn) => {
    if (typeof fn.handler !== 'string') throw new Error('serverless.yml: a function has no handler.');
    return handlerLocation(fn.handler).module.replace(/\.ts$/, '');
  });
  return [...new Set(modules)].sort();
}

/**
 * Builds (or finds in the cache) the bundle of every handler module of a serverless.yml, with its
 * `custom.esbuild` options. Safe to run from several processes at once (see {@link cachedBuild}).
 */
export async function buildBundles(options: BuildBundlesOptions): Promise<Bundles> {
  const started = Date.now();
  const specPath = resolve(options.specPath);
  const specText = await readFile(specPath, 'utf8');
  const specRoot = resolve(options.specRoot ?? join(specPath, '..'));
  const settings = bundleSettings(specText);
  if (options.exclude) settings.esbuild.external = options.exclude;
  const modules = handlerModules(specText);
  const { dir, cached, externals, contents } = await cachedBuild(options.cacheDir ?? DEFAULT_CACHE_DIR, {
    ...settings.esbuild,
    entryPoints: Object.fromEntries(modules.map((m) => [m, join(specRoot, `${m}.ts`)])),
    outExtension: { '.js': settings.extension },
  });
  return {
    dir,
    extension: settings.extension,
    modules,
    externals,
    contents,
    cached,
    ms: Date.now() - started,
  };
}

/**
 * The local cloud's region process (scripts/local-cloud/region-process.ts) as one module for Node 22
 * to run without tsx: a loader hook in that process would also transform every function bundle it
 * imports, and triple its cold start. Its packages stay in node_modules (the cache is inside it).
 */
export async function buildRegionProcess(): Promise<{ file: string; cached: boolean }> {
  const { dir, cached } = await cachedBuild(DEFAULT_CACHE_DIR, {
    bundle: true,
    packages: 'external',
    format: 'esm',
    platform: 'node',
    target: 'node22',
    sourcemap: 'linked',
    entryPoints: { 'region-process': join(PROJECT_ROOT, 'scripts/local-cloud/region-process.ts') },
    outExtension: { '.js': '.mjs' },
  });
  return { file: join(dir, 'region-process.mjs'), cached };
}

const DEFAULT_CACHE_DIR = join(PROJECT_ROOT, 'node_modules/.cache/volsnap-bundles');

/**
 * Runs an esbuild build into `cacheDir`, unless a build of the same options, lockfile and source
 * contents is there already. Safe from several processes at once: each builds into its own
 * temporary folder and renames it into place, and the index naming it is replaced by a rename too,
 * so a reader only ever sees complete builds.
 */
async function cachedBuild(
  cacheDir: string,
  options: BuildOptions,
): Promise<{ dir: string; cached: boolean; externals: string[]; contents: Record<string, string[]> }> {
  const key = sha256(
    JSON.stringify({
      builder: BUILDER_VERSION,
      esbuild: esbuildVersion,
      options,
      lockfile: await fileHash(join(PROJECT_ROOT, 'package-lock.json')),
      tsconfig: await fileHash(join(PROJECT_ROOT, 'tsconfig.json')),
    }),
  ).slice(0, 24);
  const indexPath = join(cacheDir, `index-${key}.json`);
  const found = await cachedBundles(cacheDir, indexPath);
  if (found) return { ...found, cached: true };

  await mkdir(cacheDir, { recursive: true });
  const temporary = join(cacheDir, `tmp-${randomUUID()}`);
  const built = await build({
    ...options,
    outdir: temporary,
    absWorkingDir: PROJECT_ROOT,
    metafile: true,
    write: true,
    logLevel: 'silent',
  });
  const inputs: Record<string, string> = {};
  for (const input of Object.keys(built.metafile.inputs).sort()) {
    if (input.startsWith('node_modules/') || input.includes(':')) continue;
    const hash = await fileHash(join(PROJECT_ROOT, input));
    if (hash) inputs[input] = hash;
  }
  const out = `b-${sha256(key + JSON.stringify(inputs)).slice(0, 24)}`;
  const dir = join(cacheDir, out);
  try {
    await rename(temporary, dir);
  } catch {
    // Another process built the same content first: its folder is as good as ours.
    await rm(temporary, { recursive: true, force: true });
  }
  const externals = Object.values(built.metafile.outputs)
    .flatMap((output) => output.imports.filter((i) => i.external && !isBuiltin(i.path)))
    .map((i) => i.path);
  const index: CacheIndex = {
    out,
    inputs,
    externals: [...new Set(externals)].sort(),
    contents: contentsOf(built.metafile, temporary),
  };
  const indexTemporary = `${indexPath}.${randomUUID()}.tmp`;
  await writeFile(indexTemporary, JSON.stringify(index));
  await rename(indexTemporary, indexPath);
  await pruneCache(cacheDir).catch(() => {});
  return { dir, cached: false, externals: index.externals, contents: index.contents };
}

/** Each output of a build (by its path in `outdir`, without extension): its sources and packages. */
function contentsOf(metafile: Metafile, outdir: string): Record<string, string[]> {
  const prefix = `${relative(PROJECT_ROOT, outdir)}/`;
  const contents: Record<string, string[]> = {};
  for (const [output, { inputs }] of Object.entries(metafile.outputs)) {
    if (output.endsWith('.map')) continue;
    const module = output.slice(prefix.length).replace(/\.[cm]?js$/, '');
    const parts = Object.keys(inputs).map((input) => {
      // `node_modules/@aws-sdk/client-s3/dist-es/…` is `@aws-sdk/client-s3`; a source stays a path.
      const inPackage = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      return inPackage?.[1] ?? input;
    });
    contents[module] = [...new Set(parts)].sort();
  }
  return contents;
}

/** The build an index names, if every source it was built from is unchanged. */
async function cachedBundles(
  cacheDir: string,
  indexPath: string,
): Promise<{ dir: string; externals: string[]; contents: Record<string, string[]> } | undefined> {
  let index: CacheIndex;
  try {
    index = JSON.parse(await readFile(indexPath, 'utf8')) as CacheIndex;
  } catch {
    return undefined;
  }
  const dir = join(cacheDir, index.out);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) return undefined;
  for (const [input, hash] of Object.entries(index.inputs)) {
    if ((await fileHash(join(PROJECT_ROOT, input))) !== hash) return undefined;
  }
  const now = new Date();
  await utimes(indexPath, now, now).catch(() => {}); // recently used: kept by the pruning
  return { dir, externals: index.externals ?? [], contents: index.contents ?? {} };
}

/** Keeps the newest indexes and the bundles they name; removes the rest once past the grace period. */
async function pruneCache(cacheDir: string): Promise<void> {
  const entries = await readdir(cacheDir);
  const withTimes = await Promise.all(
    entries.map(async (name) => ({ name, mtime: (await stat(join(cacheDir, name))).mtimeMs })),
  );
  const indexes = withTimes.filter((e) => /^index-\w+\.json$/.test(e.name)).sort((a, b) => b.mtime - a.mtime);
  const kept = new Set<string>();
  for (const [i, entry] of indexes.entries()) {
    if (i >= KEEP_ENTRIES) {
      await rm(join(cacheDir, entry.name), { force: true });
      continue;
    }
    const index = JSON.parse(await readFile(join(cacheDir, entry.name), 'utf8')) as CacheIndex;
    kept.add(index.out);
  }
  const old = Date.now() - PRUNE_GRACE_MS;
  for (const entry of withTimes) {
    const removable =
      (/^(b|tmp)-/.test(entry.name) || entry.name.endsWith('.tmp')) &&
      !kept.has(entry.name) &&
      entry.mtime < old;
    if (removable) await rm(join(cacheDir, entry.name), { recursive: true, force: true });
  }
}

/**
 * Keeps bundle folders a running cloud uses from being pruned by another checkout's build (they
 * share node_modules/.cache): touches them every minute, well inside the prune grace period. A
 * region process imports each function's module on its first call, and a restarted one loads them
 * all again. Answers the function that stops it.
 */
export function holdBundles(dirs: readonly string[]): () => void {
  const touch = () => {
    const now = new Date();
    for (const dir of dirs) void utimes(dir, now, now).catch(() => {});
  };
  touch();
  const timer = setInterval(touch, 60_000);
  timer.unref();
  return () => clearInterval(timer);
}
