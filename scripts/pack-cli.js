#!/usr/bin/env node
// `npm run pack:cli`: the volsnap CLI as an npm package a host installs with one command, offline:
// `npm install -g ./dist/volsnap-cli-<version>.tgz`. The package is the bundled CLI
// (scripts/build-cli.js) and, bundled inside it, the one native module it loads at run time
// (zstd-napi: its JavaScript and the addon built for this platform, without its build-time
// dependencies or install script), so installing it asks no registry and compiles nothing. Node.js
// 22.15 and newer compress with node:zlib and never load the addon; on Node 20 it is what
// `snapshot create` compresses with, so the tarball is for hosts of the platform it was packed on
// (its description says which).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const out = resolve(process.argv[2] ?? join(root, 'dist'));
const staging = join(out, 'cli-package');
const project = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
execFileSync(process.execPath, [join(root, 'scripts/build-cli.js'), join(staging, 'volsnap.mjs')], {
  cwd: root,
  stdio: 'inherit',
});

const zstdDir = dirname(createRequire(join(root, 'package.json')).resolve('zstd-napi/package.json'));
const zstd = JSON.parse(readFileSync(join(zstdDir, 'package.json'), 'utf8'));
const bundled = join(staging, 'node_modules', 'zstd-napi');
for (const path of ['dist', 'binding.js', 'LICENSE', 'NOTICE', 'build/Release/binding.node'])
  cpSync(join(zstdDir, path), join(bundled, path), { recursive: true });
writeFileSync(
  join(bundled, 'package.json'),
  `${JSON.stringify({ name: zstd.name, version: zstd.version, license: zstd.license, main: zstd.main }, null, 2)}\n`,
);

// koffi (FFI to libc's lseek, to skip the holes of sparse files): its JavaScript and this platform's
// prebuilt addon package. A host of another platform reads every byte instead (slower, not wrong).
// (koffi's exports hide its package.json from resolution: it is found where npm installs it.)
const koffiDir = join(root, 'node_modules', 'koffi');
const koffi = JSON.parse(readFileSync(join(koffiDir, 'package.json'), 'utf8'));
for (const path of ['index.js', 'index.cjs', 'indirect.js', 'indirect.cjs', 'lib', 'src', 'LICENSE.txt'])
  cpSync(join(koffiDir, path), join(staging, 'node_modules', 'koffi', path), { recursive: true });
// Without its install script (it would build the addon) and its other platforms' packages.
const { name, version, license, type, main, exports } = koffi;
writeFileSync(
  join(staging, 'node_modules', 'koffi', 'package.json'),
  `${JSON.stringify({ name, version, license, type, main, exports }, null, 2)}\n`,
);
const koffiAddon = `@koromix/koffi-${process.platform}-${process.arch}`;
cpSync(join(root, 'node_modules', koffiAddon), join(staging, 'node_modules', koffiAddon), {
  recursive: true,
});

writeFileSync(
  join(staging, 'package.json'),
  `${JSON.stringify(
    {
      name: 'volsnap-cli',
      version: project.version,
      description: `${project.description} The CLI, bundled (built for ${process.platform}-${process.arch}).`,
      license: project.license,
      type: 'module',
      engines: project.engines,
      bin: { volsnap: 'volsnap.mjs' },
      files: ['volsnap.mjs', 'volsnap.mjs.map', 'block-worker.mjs'],
      dependencies: { 'zstd-napi': zstd.version, koffi: koffi.version, [koffiAddon]: koffi.version },
      bundleDependencies: ['zstd-napi', 'koffi', koffiAddon],
    },
    null,
    2,
  )}\n`,
);
const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', out], {
  cwd: staging,
  encoding: 'utf8',
})
  .trim()
  .split('\n')
  .at(-1);
rmSync(staging, { recursive: true, force: true });
console.log(`Packed ${join(out, tarball ?? '')}: npm install -g ${join(out, tarball ?? '')}`);
