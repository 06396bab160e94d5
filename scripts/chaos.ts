// `npm run chaos -- --minutes N [--seed S] [--faults SPEC] [--keep]`: starts a local cloud of its own
// with S3 faults on, runs the chaos workload for N minutes while region processes and emulators are
// killed and stalled, lets the reaper and GC run, checks what must hold, and prints a summary.
// Exits 1 when it found something wrong.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { failures, runChaos, summary } from './chaos/chaos.ts';
import { CHAOS_FAULTS } from './chaos/workload.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    seed: { type: 'string' },
    faults: { type: 'string', default: CHAOS_FAULTS },
    'settle-minutes': { type: 'string', default: '8' },
    keep: { type: 'boolean', default: false },
  },
});
const minutes = Number(values.minutes);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!(minutes > 0) || !Number.isInteger(seed)) {
  console.error(
    'Usage: npm run chaos -- --minutes N [--seed S] [--faults SPEC] [--settle-minutes M] [--keep]',
  );
  process.exit(2);
}
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-chaos-'));
console.log(`Chaos run: ${minutes} min, seed ${seed}, S3 faults ${values.faults}; data in ${dataDir}`);
// Inside the repository, so it finds zstd-napi (as the e2e setup's), one per checkout.
const bundle = join(
  ROOT,
  'node_modules',
  '.cache',
  `volsnap-chaos-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`,
  'volsnap.mjs',
);
execFileSync(process.execPath, ['scripts/build-cli.js', bundle], { cwd: ROOT, stdio: 'ignore' });

const cloudLog = createWriteStream(join(dataDir, 'cloud.log'));
const cloud = spawn(
  process.execPath,
  [
    join(ROOT, 'bin/local-cloud.js'),
    '--port-base',
    'auto',
    '--data-dir',
    join(dataDir, 'cloud'),
    '--faults',
    values.faults,
    '--faults-seed',
    String(seed),
  ],
  { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
);
const ready = new Promise<void>((resolve, reject) => {
  let output = '';
  const seen = (chunk: Buffer) => {
    cloudLog.write(chunk);
    output += chunk;
    if (output.includes('is ready')) resolve();
    // The supervisor's lines, as they come.
    for (const line of chunk.toString().split('\n')) if (line.startsWith('[supervisor]')) console.log(line);
  };
  cloud.stdout.on('data', seen);
  cloud.stderr.on('data', seen);
  cloud.once('exit', (code) =>
    reject(new Error(`the local cloud exited (${code}) before it was ready:\n${output}`)),
  );
});
// Ctrl-C: the cloud stops too (it resumes whatever the monkey left stalled, and stops its children).
for (const name of ['SIGINT', 'SIGTERM'] as const)
  process.once(name, () => {
    cloud.kill('SIGINT');
    cloud.once('exit', () => process.exit(130));
  });
let code = 1;
try {
  await ready;
  const report = await runChaos({
    configPath: join(dataDir, 'cloud', 'config.json'),
    dataDir: join(dataDir, 'cloud'),
    stateFile: join(dataDir, 'cloud', 'cloud-state.json'),
    cli: [process.execPath, bundle],
    workDir: dataDir,
    seed,
    workMs: minutes * 60_000,
    settleMs: Number(values['settle-minutes']) * 60_000,
    log: (line) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`),
  });
  console.log(`\n${summary(report)}`);
  code = failures(report).length === 0 ? 0 : 1;
} catch (error) {
  console.error(`The chaos run could not finish: ${(error as Error).message}`);
} finally {
  cloud.kill('SIGINT');
  await new Promise((resolve) => cloud.once('exit', resolve));
  if (!values.keep && code === 0) rmSync(dataDir, { recursive: true, force: true });
  else console.log(`Kept ${dataDir} (cloud.log has the cloud's output).`);
}
process.exit(code);
