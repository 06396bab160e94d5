#!/usr/bin/env node
// `npm run build:cli`: the volsnap CLI as one ES module (dist/volsnap.mjs) for `node dist/volsnap.mjs`
// or copying to a host: no TypeScript compile at start-up, a fraction of the memory of running the
// sources through tsx. zstd-napi (a native module) stays a dependency it loads at run time.
import { build } from 'esbuild';

const outfile = process.argv[2] ?? 'dist/volsnap.mjs';
await build({
  entryPoints: ['lib/cli/entry.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: true,
  sourcemap: 'linked',
  external: ['zstd-napi'],
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
console.log(`Built ${outfile}.`);
