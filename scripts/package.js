#!/usr/bin/env node
// `npm run package`: bundles every function of serverless.yml with esbuild (one minified bundle per
// function, through serverless-esbuild) and packages the stack offline with the open-source
// Serverless Framework v3 (osls). Prints each function's zip and its size.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const stage = process.argv[2] ?? 'dev';
const region = process.argv[3] ?? 'eu-west-1';
// serverless-esbuild zips each function in a folder of the temp dir and means to remove it, but the
// file system it removes through is a no-op layer (`FSyncLayer`, only `exists` implemented): every
// run left one folder per function. Its temp dir is one of ours, removed when packaging ends.
const packagingTmp = mkdtempSync(join(tmpdir(), 'volsnap-package-'));
const env = {
  ...process.env,
  TMPDIR: packagingTmp,
  SLS_TELEMETRY_DISABLED: '1',
  SLS_NOTIFICATIONS_MODE: 'off',
  SLS_DEPRECATION_DISABLE: '*',
};
const result = spawnSync('npx', ['--no-install', 'osls', 'package', '--stage', stage, '--region', region], {
  stdio: 'inherit',
  env,
});
rmSync(packagingTmp, { recursive: true, force: true });
if (result.status !== 0) process.exit(result.status ?? 1);

const dir = '.serverless';
const zips = readdirSync(dir).filter((f) => f.endsWith('.zip'));
if (zips.length === 0) {
  console.error('No function zips were written.');
  process.exit(1);
}
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
console.log(`\n${zips.length} function package(s) in ${dir}/ (stage ${stage}, region ${region}):`);
for (const zip of zips.sort())
  console.log(`  ${zip.padEnd(32)} ${kib(statSync(join(dir, zip)).size).padStart(12)}`);
console.log(`CloudFormation template: ${dir}/cloudformation-template-update-stack.json`);
