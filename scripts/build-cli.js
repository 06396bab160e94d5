#!/usr/bin/env node
// `npm run build:cli`: the volsnap CLI as one ES module (dist/volsnap.mjs) for `node dist/volsnap.mjs`
// or copying to a host: no TypeScript compile at start-up, a fraction of the memory of running the
// sources through tsx. zstd-napi and koffi (native modules: zstd on Node 20, libc's lseek to skip the
// holes of sparse files) stay dependencies it loads at run time.
import { copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
  external: ['zstd-napi', 'koffi'],
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
// The block pool's worker thread (lib/adapters/block-worker.mjs) is plain JavaScript loaded from
// beside the module that starts it: beside the bundle too.
copyFileSync('lib/adapters/block-worker.mjs', join(dirname(outfile), 'block-worker.mjs'));
console.log(`Built ${outfile}.`);
