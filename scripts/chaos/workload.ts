// The chaos workload: creates (full and incremental), copies, exports, imports, restores and GC, run
// through the CLI by a few workers at once against a local cloud, each operation chosen by a seeded
// generator. It records what every command answered, and what it expects each snapshot to hold.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '../local-cloud/faults.ts';
import { weighted } from './monkey.ts';
import { type CliRun, hasStackTrace, lastLine, runCli } from './run-cli.ts';

export const BLOCK = 512 * 1024;
export const VOLUME_BYTES = 16 * 1024 * 1024;

/** The S3 faults the chaos runs start the local cloud with (`npm start -- --faults …`). */
export const CHAOS_FAULTS = 'error=0.02,reset=0.01,latency=20ms,stall=0.005:8s';

export type OperationKind = 'create' | 'copy' | 'export' | 'import' | 'restore' | 'gc';

/** One command as it ended (the last attempt, for commands retried with their client token). */
export interface Operation {
  kind: OperationKind;
  /** The snapshot's name (create, copy, import) or the export's key prefix; '' for restore and gc. */
  name: string;
  region: string;
  attempts: number;
  code: number | null;
  error: string;
  /** The id the command answered with, when it did. */
  id?: string;
  ms: number;
}

/** A snapshot the workload knows the bytes of. */
export interface Expected {
  name: string;
  region: string;
  /** SHA-256 of the whole volume as it should restore. */
  digest: string;
}

export interface WorkloadOptions {
  configPath: string;
  /** The CLI as a command line prefix: `[node, path/to/volsnap.mjs]`. */
  cli: readonly string[];
  /** Where images and restores are written. */
  workDir: string;
  /** [source, destination]: snapshots are made in the first, copied and imported into the second. */
  regions: readonly [string, string];
  seed: number;
  workers: number;
  /** A command still running after this is killed and reported (the CLI hung). */
  opTimeoutMs: number;
  log: (line: string) => void;
}

const WEIGHTS: [OperationKind, number][] = [
  ['create', 0.32],
  ['copy', 0.18],
  ['export', 0.18],
  ['restore', 0.2],
  ['gc', 0.12],
];
/**
 * Commands that fail are sent again with the same client token, as a user would, this many times in
 * all, 2, 4, 8… s apart: long enough to outlast an emulator's restart (up to a minute on a busy machine).
 */
const ATTEMPTS = 6;

const digestOf = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A volume's bytes, made from the generator: a third of the blocks zero, the rest random or repeated text. */
function fillBlock(random: () => number, into: Buffer, index: number): void {
  const kind = Math.floor(random() * 3);
  const block = into.subarray(index * BLOCK, (index + 1) * BLOCK);
  if (kind === 0) block.fill(0);
  else if (kind === 1) block.fill(`block ${index} ${random()}\n`);
  else for (let i = 0; i < BLOCK; i += 4) block.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
}

export class Workload {
  readonly operations: Operation[] = [];
  readonly expected = new Map<string, Expected>();
  /** Misbehaviour seen while it ran (a stack trace, a wrong restore). */
  readonly findings: string[] = [];
  readonly #o: WorkloadOptions;
  readonly #random: () => number;
  readonly #volumes: { id: string; image: Buffer; busy: boolean }[] = [];
  /** Completed snapshots to copy, export and restore: id → what they hold. */
  readonly #completed = new Map<string, Expected>();
  #next = 0;

  constructor(options: WorkloadOptions) {
    this.#o = options;
    this.#random = seededRandom(options.seed);
  }

  async cli(
    account: string,
    region: string,
    args: string[],
    timeoutMs = this.#o.opTimeoutMs,
  ): Promise<CliRun> {
    const run = await runCli(
      this.#o.cli,
      ['--config', this.#o.configPath, '--account', account, '--region', region, '--json', ...args],
      timeoutMs,
    );
    if (hasStackTrace(run.stderr))
      this.findings.push(`stack trace from volsnap ${args.join(' ')}: ${run.stderr.slice(0, 800)}`);
    return run;
  }

  /** Creates the volumes (as demo, in the source region), each with its first image. */
  async setUp(volumes = 3): Promise<void> {
    for (let v = 0; v < volumes; v++) {
      const created = await this.cli('demo', this.#o.regions[0], [
        'volume',
        'create',
        '--name',
        `chaos-vol-${v}`,
        '--size',
        '16MiB',
      ]);
      if (created.code !== 0) throw new Error(`volume create failed: ${created.stderr}`);
      const image = Buffer.alloc(VOLUME_BYTES);
      for (let b = 0; b < VOLUME_BYTES / BLOCK; b++) fillBlock(this.#random, image, b);
      this.#volumes.push({ id: JSON.parse(created.stdout).volumeId, image, busy: false });
    }
  }

  /** Runs `workers` loops of random operations until `until()` says stop; resolves once all have ended. */
  async run(until: () => boolean): Promise<void> {
    await Promise.all(
      Array.from({ length: this.#o.workers }, async () => {
        while (!until()) await this.#one();
      }),
    );
  }

  async #one(): Promise<void> {
    const kind = weighted(WEIGHTS, this.#random()) ?? 'create';
    const n = this.#next++;
    const sources = [...this.#completed.entries()];
    const source = sources[Math.floor(this.#random() * sources.length)];
    if (kind === 'create' || !source) return this.#create(n);
    if (kind === 'copy') return this.#copy(n, source[0], source[1]);
    if (kind === 'export') return this.#exportAndImport(n, source[0], source[1]);
    if (kind === 'restore') return this.#restore(source[0], source[1]);
    return this.#gc();
  }

  /** Sends a command up to ATTEMPTS times (same client token) until it exits 0; records the last. */
  async #retried(kind: OperationKind, name: string, region: string, account: string, args: string[]) {
    let run: CliRun | undefined;
    let attempts = 0;
    while (attempts < ATTEMPTS) {
      attempts++;
      run = await this.cli(account, region, args);
      if (run.code === 0 || run.code === null) break;
      await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** attempts));
    }
    const last = run as CliRun;
    const answer = last.code === 0 ? (JSON.parse(last.stdout) as Record<string, unknown>) : undefined;
    const op: Operation = {
      kind,
      name,
      region,
      attempts,
      code: last.code,
      error:
        last.code === 0 ? '' : last.code === null ? 'killed: it ran past the timeout' : lastLine(last.stderr),
      ms: last.ms,
      ...(typeof answer?.snapshotId === 'string' && kind !== 'export' ? { id: answer.snapshotId } : {}),
      ...(typeof answer?.exportId === 'string' ? { id: answer.exportId } : {}),
    };
    this.operations.push(op);
    if (op.code !== 0) this.#o.log(`chaos: ${kind} ${name} failed after ${attempts} attempt(s): ${op.error}`);
    return { op, answer };
  }

  async #create(n: number): Promise<void> {
    const volume = this.#volumes.find((v) => !v.busy);
    if (!volume) return this.#gc();
    volume.busy = true;
    try {
      // An incremental: a few blocks rewritten since the volume's last snapshot.
      const changes = 1 + Math.floor(this.#random() * 6);
      for (let i = 0; i < changes; i++)
        fillBlock(this.#random, volume.image, Math.floor(this.#random() * (VOLUME_BYTES / BLOCK)));
      const file = join(this.#o.workDir, `create-${n}.img`);
      writeFileSync(file, volume.image);
      const name = `chaos-create-${n}`;
      const expected = { name, region: this.#o.regions[0], digest: digestOf(volume.image) };
      this.expected.set(`${expected.region}/${name}`, expected);
      const args = ['snapshot', 'create', '--volume', volume.id, '--file', file, '--name', name];
      const { answer } = await this.#retried('create', name, expected.region, 'demo', [
        ...args,
        '--client-token',
        `chaos-${this.#o.seed}-${n}`,
      ]);
      rmSync(file, { force: true });
      if (answer?.state === 'completed') this.#completed.set(answer.snapshotId as string, expected);
    } finally {
      volume.busy = false;
    }
  }

  async #copy(n: number, sourceId: string, source: Expected): Promise<void> {
    const [first, second] = this.#o.regions;
    const to = source.region === first ? second : first;
    const name = `chaos-copy-${n}`;
    const expected = { name, region: to, digest: source.digest };
    this.expected.set(`${to}/${name}`, expected);
    const args = ['snapshot', 'copy', sourceId, '--source-region', source.region, '--name', name];
    const { answer } = await this.#retried('copy', name, to, 'demo', [
      ...args,
      '--client-token',
      `chaos-${this.#o.seed}-${n}`,
    ]);
    if (answer?.state === 'completed') this.#completed.set(answer.snapshotId as string, expected);
  }

  async #exportAndImport(n: number, sourceId: string, source: Expected): Promise<void> {
    const format = (['vsnap', 'raw', 'qcow2'] as const)[Math.floor(this.#random() * 3)] as string;
    const prefix = `chaos-export-${n}/`;
    const exported = await this.#retried('export', prefix, source.region, 'demo', [
      'snapshot',
      'export',
      sourceId,
      '--format',
      format,
      '--prefix',
      prefix,
    ]);
    if (exported.answer?.state !== 'completed') return;
    const url = await this.cli('demo', source.region, ['export', 'url', exported.answer.exportId as string]);
    if (url.code !== 0) {
      this.#o.log(`chaos: export url failed: ${lastLine(url.stderr)}`);
      return;
    }
    const [first, second] = this.#o.regions;
    const to = source.region === first ? second : first;
    const name = `chaos-import-${n}`;
    const expected = { name, region: to, digest: source.digest };
    this.expected.set(`${to}/${name}`, expected);
    const { answer } = await this.#retried('import', name, to, 'demo', [
      'snapshot',
      'import',
      '--url',
      JSON.parse(url.stdout).url,
      '--format',
      format,
      '--name',
      name,
      ...(format === 'raw' ? ['--size', '16MiB'] : []),
      '--client-token',
      `chaos-${this.#o.seed}-${n}`,
    ]);
    if (answer?.state === 'completed') this.#completed.set(answer.snapshotId as string, expected);
  }

  async #restore(id: string, expected: Expected): Promise<void> {
    const to = join(this.#o.workDir, `restore-${this.#next++}.img`);
    const run = await this.cli('demo', expected.region, ['snapshot', 'restore', id, '--to', to]);
    this.operations.push({
      kind: 'restore',
      name: expected.name,
      region: expected.region,
      attempts: 1,
      code: run.code,
      error: run.code === 0 ? '' : lastLine(run.stderr),
      id,
      ms: run.ms,
    });
    if (run.code === 0) {
      const digest = digestOf(readFileSync(to));
      if (digest !== expected.digest)
        this.findings.push(`restore of ${id} (${expected.name}) exited 0 with the wrong bytes`);
    }
    rmSync(to, { force: true });
  }

  async #gc(): Promise<void> {
    const region = this.#o.regions[Math.floor(this.#random() * 2)] as string;
    const run = await this.cli('operator', region, ['admin', 'run', 'gc', '--grace', '0s']);
    this.operations.push({
      kind: 'gc',
      name: '',
      region,
      attempts: 1,
      code: run.code,
      error: run.code === 0 ? '' : lastLine(run.stderr),
      ms: run.ms,
    });
  }
}
