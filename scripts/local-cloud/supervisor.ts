// Keeps the local cloud's children alive as AWS keeps a region alive: a region process that dies is
// replaced by a new one (Lambda starts a new container), and so is an emulator (S3 and DynamoDB are
// still there on AWS, whatever one host does), on the same ports and data dir. Crash loops back off.
// Every child's pid is written to a state file, so tests and the chaos run can kill or stall them.
import { rename, rm, writeFile } from 'node:fs/promises';
import type { ExitListener, ManagedProcess } from './processes.ts';

/** Why a child ended: its exit code, or the signal that ended it. */
export interface ExitReason {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Starts one instance of a child; `onExit` is called when that instance ends, however it ends. */
export type ChildStarter = (onExit: ExitListener) => Promise<ManagedProcess>;

/** One child as the state file shows it. */
export interface SupervisedState {
  /** `region eu-west-1`, `s3 eu-west-1`, `dynamodb eu-west-1`. */
  name: string;
  kind: 'region' | 's3' | 'dynamodb';
  region: string;
  /** The running instance's pid; undefined while it is being restarted. */
  pid: number | undefined;
  /** Processes of the instance that do not show as children of the supervisor (DynamoDB Local's JVM). */
  innerPids: number[];
  restarts: number;
  startedAt: string | undefined;
}

export interface SupervisorOptions {
  /** One line per restart (and per failed restart). */
  log: (line: string) => void;
  /** Where the pids of every child are kept (JSON, see {@link CloudState}); none: nowhere. */
  stateFile?: string;
  /** What else the state file says (ports, faults). */
  describe?: () => Record<string, unknown>;
}

/** The state file: the supervisor's pid and each child's. Rewritten (atomically) on every change. */
export interface CloudState {
  pid: number;
  children: SupervisedState[];
  [key: string]: unknown;
}

/** A child that lived this long before it died was not crash-looping: its backoff starts over. */
const HEALTHY_AFTER_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;

/**
 * The supervisor of a local cloud's children. Not retried itself: a restart that fails is tried again
 * after a backoff (0 s for the first crash, then 1, 2, 4 … 30 s while it keeps crashing within a
 * minute of starting), for as long as the cloud runs. `stop()` stops every child and waits for it.
 */
export class Supervisor {
  readonly #children: Supervised[] = [];
  readonly #options: SupervisorOptions;
  #writing: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
  }

  /** Starts a child (its first start failing fails this call) and keeps it running from then on. */
  async add(
    meta: { name: string; kind: SupervisedState['kind']; region: string },
    start: ChildStarter,
  ): Promise<ManagedProcess> {
    const child = new Supervised(meta, start, {
      log: this.#options.log,
      changed: () => this.#save(),
      stopped: () => this.#stopped,
    });
    this.#children.push(child);
    return child.first();
  }

  get children(): readonly SupervisedState[] {
    return this.#children.map((c) => c.state());
  }

  /** Stops the children of `kinds` first (in parallel), then the rest: region processes before emulators. */
  async stop(order: SupervisedState['kind'][][] = [['region'], ['s3', 'dynamodb']]): Promise<void> {
    this.#stopped = true;
    for (const kinds of order)
      await Promise.all(this.#children.filter((c) => kinds.includes(c.kind)).map((c) => c.stop()));
    await this.#writing;
    if (this.#options.stateFile) await rm(this.#options.stateFile, { force: true });
  }

  #save(): void {
    const file = this.#options.stateFile;
    if (!file || this.#stopped) return;
    const state: CloudState = {
      pid: process.pid,
      ...this.#options.describe?.(),
      children: this.children as SupervisedState[],
    };
    // Written in order, each through a temporary file: a reader never sees half a state.
    this.#writing = this.#writing.then(async () => {
      if (this.#stopped) return;
      const temporary = `${file}.${process.pid}.tmp`;
      await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`);
      await rename(temporary, file);
    });
    this.#writing = this.#writing.catch(() => {});
  }
}

class Supervised {
  readonly kind: SupervisedState['kind'];
  #current: ManagedProcess | undefined;
  #starting: Promise<unknown> | undefined;
  #restarts = 0;
  /** Crashes in a row, each within HEALTHY_AFTER_MS of its start. */
  #crashes = 0;
  #startedAt = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly meta: { name: string; kind: SupervisedState['kind']; region: string },
    readonly start: ChildStarter,
    readonly hooks: { log: (line: string) => void; changed: () => void; stopped: () => boolean },
  ) {
    this.kind = meta.kind;
  }

  async first(): Promise<ManagedProcess> {
    const started = this.#launch();
    this.#starting = started;
    const child = await started;
    this.#starting = undefined;
    return child;
  }

  state(): SupervisedState {
    const message = (this.#current as { message?: { innerPids?: unknown } } | undefined)?.message;
    return {
      ...this.meta,
      pid: this.#current?.child.pid,
      innerPids: Array.isArray(message?.innerPids) ? (message.innerPids as number[]) : [],
      restarts: this.#restarts,
      startedAt: this.#current ? new Date(this.#startedAt).toISOString() : undefined,
    };
  }

  async #launch(): Promise<ManagedProcess> {
    let instance: ManagedProcess | undefined;
    const child = await this.start((code, signal) => {
      if (instance && this.#current === instance) this.#crashed(instance, { code, signal });
    });
    instance = child;
    this.#current = child;
    this.#startedAt = Date.now();
    this.hooks.changed();
    return child;
  }

  #crashed(instance: ManagedProcess, reason: ExitReason): void {
    const lived = Date.now() - this.#startedAt;
    const leftBehind = this.state().innerPids;
    this.#current = undefined;
    this.hooks.changed();
    if (this.hooks.stopped()) return;
    // A process of the dead instance that outlived it (a JVM whose guard was killed) would hold the data dir.
    for (const pid of leftBehind) killQuietly(pid);
    this.#crashes = lived < HEALTHY_AFTER_MS ? this.#crashes + 1 : 1;
    const why = reason.signal ? `killed by ${reason.signal}` : `exited with code ${reason.code}`;
    this.#schedule(
      `${why} after ${(lived / 1000).toFixed(1)} s (pid ${instance.child.pid})`,
      backoffMs(this.#crashes),
    );
  }

  #schedule(why: string, delayMs: number): void {
    this.#restarts++;
    const wait = delayMs > 0 ? ` in ${(delayMs / 1000).toFixed(0)} s (crash loop)` : '';
    this.hooks.log(
      `[supervisor] ${this.meta.name} ${why}: starting a new one${wait}, restart ${this.#restarts}`,
    );
    this.#timer = setTimeout(() => {
      if (this.hooks.stopped()) return;
      const attempt = this.#launch().catch((error: Error) => {
        if (this.hooks.stopped()) return;
        this.#crashes++;
        this.#schedule(`did not start (${error.message.split('\n')[0]})`, backoffMs(this.#crashes));
      });
      this.#starting = attempt;
    }, delayMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    // A start under way finishes first (its process would otherwise be left behind), then stops.
    await this.#starting?.catch(() => {});
    await this.#current?.stop();
  }
}

/** 0 for the first crash, then 1, 2, 4 … up to 30 s. */
function backoffMs(crashesInARow: number): number {
  return crashesInARow <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (crashesInARow - 2));
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
