#!/usr/bin/env node
// `npm run package`: bundles every function of serverless.yml with esbuild (one minified bundle per
// function, through serverless-esbuild) and packages the stack offline with the open-source
// Serverless Framework v3 (osls). Prints each function's zip and its size, and how many resources the
// CloudFormation template has (CloudFormation refuses a stack of more than 500).
//
//   node scripts/package.js [stage] [region] [--out DIR]    (DIR: where to write, default .serverless)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: 'string' } } });
const stage = positionals[0] ?? 'dev';
const region = positionals[1] ?? 'eu-west-1';
const dir = values.out ?? '.serverless';
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
const result = spawnSync(
  'npx',
  ['--no-install', 'osls', 'package', '--stage', stage, '--region', region, '--package', dir],
  { stdio: 'inherit', env },
);
rmSync(packagingTmp, { recursive: true, force: true });
if (result.status !== 0) process.exit(result.status ?? 1);

const zips = readdirSync(dir).filter((f) => f.endsWith('.zip'));
if (zips.length === 0) {
  console.error('No function zips were written.');
  process.exit(1);
}
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
console.log(`\n${zips.length} function package(s) in ${dir}/ (stage ${stage}, region ${region}):`);
for (const zip of zips.sort())
  console.log(`  ${zip.padEnd(32)} ${kib(statSync(join(dir, zip)).size).padStart(12)}`);
const templatePath = join(dir, 'cloudformation-template-update-stack.json');
const resources = Object.values(JSON.parse(readFileSync(templatePath, 'utf8')).Resources ?? {});
const byType = new Map();
for (const { Type } of resources) byType.set(Type, (byType.get(Type) ?? 0) + 1);
console.log(`CloudFormation template: ${templatePath}`);
console.log(`  ${resources.length} resources (CloudFormation allows 500 in one stack):`);
for (const [type, count] of [...byType].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])))
  console.log(`  ${String(count).padStart(5)} ${type}`);
