// The bench's EBS direct API rows (npm run bench): an upload of the image and a download of volsnap's
// own full snapshot through the unmodified @aws-sdk/client-ebs at 64 concurrent requests, as coldsnap
// does it, beside the CLI's full snapshot and restore of the same run; and the S3 requests each path
// makes per GiB of image, counted where they arrive (the local cloud's S3 emulators count every
// request in memory, by operation: the functions' own and the presigned URLs the CLI uses).
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Agent } from 'node:http';
import {
  CompleteSnapshotCommand,
  EBSClient,
  GetSnapshotBlockCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import pLimit from 'p-limit';
import type { LocalCloud } from '../local-cloud/cloud.ts';
import { REQUEST_COUNTS_PATH } from '../local-cloud/s3-emulator.ts';
import { type CpuSeconds, cloudProcesses, cpuDuring } from './cpu.ts';

const BLOCK = 512 * 1024;
const GiB = 2 ** 30;
/** coldsnap's workers, and the issue's. */
export const EBS_CONCURRENCY = 64;
export const EBS_UPLOAD = 'EBS API upload (client-ebs ×64)';
export const EBS_DOWNLOAD = 'EBS API download (client-ebs ×64)';

/** What the bench's rows are to this module (scripts/bench.ts `Measure`). */
interface Row {
  seconds: number[];
  requests?: number;
  note?: string;
  /** CPU seconds by process of the last run (the SDK client runs in the bench process: `local cloud`). */
  cpu?: CpuSeconds;
}

/** S3 requests by operation (`GetObject`), as the local cloud's emulators count them. */
export type S3Counts = Record<string, number>;

export interface EbsBenchOptions {
  cloud: LocalCloud;
  /** The volsnap CLI with `--json`, as the bench runs it. */
  volsnap: (...args: string[]) => Promise<{ stdout: string }>;
}

/** The EBS API's bench rows of one local cloud: a SigV4 key of the demo account's owner, its clients, its counts. */
export class EbsBench {
  readonly #ebs: EBSClient;
  readonly #ec2: EC2Client;
  readonly #cloud: LocalCloud;
  /** Attempts the SDK made past the first (throttled or failed requests it retried), so far. */
  #retries = 0;
  /** Seconds of the last upload's phases: the PUTs, then CompleteSnapshot until `completed` (for profiles). */
  lastUpload = { puts: 0, completion: 0 };
  /** When each phase of the last run began (process.hrtime, ns: the clock of V8's CPU profiles, in µs). */
  readonly marks: Record<string, bigint> = {};

  private constructor(ebs: EBSClient, ec2: EC2Client, cloud: LocalCloud) {
    this.#ebs = ebs;
    this.#ec2 = ec2;
    this.#cloud = cloud;
  }

  /** Issues a SigV4 key to the demo account's owner and builds the SDK clients for the cloud's first region. */
  static async start(options: EbsBenchOptions): Promise<EbsBench> {
    const region = options.cloud.regions[0];
    if (!region) throw new Error('the local cloud has no region');
    // The demo account's owner (the CLI's default account), as the bench's CLI runs act.
    const key = JSON.parse((await options.volsnap('admin', 'key', 'create', '--sigv4')).stdout) as {
      accessKeyId: string;
      secretAccessKey: string;
    };
    const credentials = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
    const requestHandler = { httpAgent: new Agent({ keepAlive: true, maxSockets: EBS_CONCURRENCY }) };
    return new EbsBench(
      new EBSClient({ region: region.name, endpoint: `${region.api}/ebs`, credentials, requestHandler }),
      new EC2Client({ region: region.name, endpoint: `${region.api}/ec2/`, credentials }),
      options.cloud,
    );
  }

  /** S3 requests the cloud's emulators (every region) answered so far, by operation: a mark for {@link since}. */
  s3Counts(): Promise<S3Counts> {
    return this.#counts('s3');
  }

  /** DynamoDB requests (every region's proxy), by operation, as {@link s3Counts} (for profiles). */
  dynamodbCounts(): Promise<S3Counts> {
    return this.#counts('dynamodb');
  }

  async #counts(service: 's3' | 'dynamodb'): Promise<S3Counts> {
    const all: S3Counts = {};
    for (const region of this.#cloud.regions) {
      const counts = (await (await fetch(`${region[service]}${REQUEST_COUNTS_PATH}`)).json()) as S3Counts;
      for (const [operation, n] of Object.entries(counts)) all[operation] = (all[operation] ?? 0) + n;
    }
    return all;
  }

  /** S3 requests since `mark` (from {@link s3Counts}), by operation and in all. */
  async since(mark: S3Counts, now?: S3Counts): Promise<{ total: number; byOperation: S3Counts }> {
    now ??= await this.s3Counts();
    const byOperation: S3Counts = {};
    for (const [operation, n] of Object.entries(now))
      if (n > (mark[operation] ?? 0)) byOperation[operation] = n - (mark[operation] ?? 0);
    return { total: Object.values(byOperation).reduce((a, b) => a + b, 0), byOperation };
  }

  /** S3 requests since `mark` per GiB of an image of `bytes`, with the operations that make them up. */
  async perGiB(mark: S3Counts, bytes: number): Promise<{ perGiB: number; note: string }> {
    const { total, byOperation } = await this.since(mark);
    const perGiB = Math.round(total / (bytes / GiB));
    const parts = Object.entries(byOperation)
      .sort(([, a], [, b]) => b - a)
      .map(([operation, n]) => `${operation} ${Math.round(n / (bytes / GiB))}`);
    return { perGiB, note: `${perGiB} S3 requests per GiB (${parts.join(', ')})` };
  }

  /**
   * One run's rows: uploads `image` (zero blocks skipped, the LINEAR checksum at completion) and
   * waits for `completed` as coldsnap's `--wait` does (EC2 DescribeSnapshots); then lists and
   * downloads every block of `fullSnapshotId` into `target`, whose SHA-256 must be the image's.
   */
  async run(
    rows: { upload: Row; download: Row },
    input: {
      image: Buffer;
      fullSnapshotId: string;
      target: string;
      imageSha256: string;
      /** The cloud's state file, to count the CPU of its processes (scripts/bench/cpu.ts). */
      stateFile?: string;
    },
  ): Promise<void> {
    const { stateFile } = input;
    const measured = async (row: Row, step: () => Promise<unknown>) => {
      const mark = await this.s3Counts();
      const retries = this.#retries;
      const { cpu } = await cpuDuring(
        async () => (stateFile ? cloudProcesses(stateFile) : {}),
        async () => {
          const started = process.hrtime.bigint();
          this.marks[`${row === rows.upload ? 'upload' : 'download'} start`] = started;
          await step();
          this.marks[`${row === rows.upload ? 'upload' : 'download'} end`] = process.hrtime.bigint();
          row.seconds.push(Number(process.hrtime.bigint() - started) / 1e9);
          // What the workers do after the answer (deleting the staged blocks) is the path's too.
          await this.#quiet();
        },
      );
      if (stateFile) row.cpu = cpu;
      const counted = await this.perGiB(mark, input.image.length);
      row.requests = counted.perGiB;
      row.note = `${counted.note}; ${this.#retries - retries} SDK retries`;
    };
    await measured(rows.upload, () => this.#upload(input.image));
    await measured(rows.download, () =>
      this.#download(input.fullSnapshotId, input.target, input.image.length),
    );
    const hash = createHash('sha256');
    const file = await open(input.target, 'r');
    for await (const chunk of file.createReadStream({ highWaterMark: 4 * 1024 * 1024 }))
      hash.update(chunk as Buffer);
    if (hash.digest('hex') !== input.imageSha256)
      throw new Error(`the EBS API download of ${input.fullSnapshotId} differs from the image`);
  }

  async #upload(image: Buffer): Promise<string> {
    const started = process.hrtime.bigint();
    const start = await this.#ebs.send(
      new StartSnapshotCommand({
        VolumeSize: Math.ceil(image.length / GiB),
        Description: 'bench',
        Timeout: 60,
      }),
    );
    const snapshotId = start.SnapshotId ?? '';
    const digests: Buffer[] = [];
    const limit = pLimit(EBS_CONCURRENCY);
    const puts: Promise<void>[] = [];
    for (let index = 0; index * BLOCK < image.length; index++) {
      const block = image.subarray(index * BLOCK, (index + 1) * BLOCK);
      if (block.every((byte) => byte === 0)) continue;
      const digest = createHash('sha256').update(block).digest();
      digests.push(digest);
      puts.push(
        limit(async () => {
          const answer = await this.#ebs.send(
            new PutSnapshotBlockCommand({
              SnapshotId: snapshotId,
              BlockIndex: index,
              BlockData: block,
              DataLength: BLOCK,
              Checksum: digest.toString('base64'),
              ChecksumAlgorithm: 'SHA256',
            }),
          );
          this.#retries += (answer.$metadata.attempts ?? 1) - 1;
        }),
      );
    }
    await Promise.all(puts);
    const completing = process.hrtime.bigint();
    this.marks['upload completing'] = completing;
    this.lastUpload.puts = Number(completing - started) / 1e9;
    await this.#ebs.send(
      new CompleteSnapshotCommand({
        SnapshotId: snapshotId,
        ChangedBlocksCount: digests.length,
        Checksum: createHash('sha256').update(Buffer.concat(digests)).digest('base64'),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
    await this.#completed(snapshotId);
    this.lastUpload.completion = Number(process.hrtime.bigint() - completing) / 1e9;
    return snapshotId;
  }

  /** Until the cloud's S3 served no request for a second: the work an operation left behind is done. */
  async #quiet(): Promise<void> {
    let last = JSON.stringify(await this.s3Counts());
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const now = JSON.stringify(await this.s3Counts());
      if (now === last) return;
      last = now;
    }
  }

  /** Polls DescribeSnapshots every 100 ms until the snapshot is completed (`error` throws). */
  async #completed(snapshotId: string): Promise<void> {
    for (;;) {
      const answer = await this.#ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
      const state = answer.Snapshots?.[0]?.State;
      if (state === 'completed') return;
      if (state === 'error') throw new Error(`the EBS API upload ${snapshotId} ended in error`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async #download(snapshotId: string, target: string, size: number): Promise<void> {
    const blocks: { index: number; token: string }[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.#ebs.send(
        new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 10_000, NextToken }),
      );
      for (const b of page.Blocks ?? []) blocks.push({ index: b.BlockIndex ?? 0, token: b.BlockToken ?? '' });
      NextToken = page.NextToken;
    } while (NextToken);
    const file = await open(target, 'w');
    try {
      await file.truncate(size);
      const limit = pLimit(EBS_CONCURRENCY);
      await Promise.all(
        blocks.map((b) =>
          limit(async () => {
            const answer = await this.#ebs.send(
              new GetSnapshotBlockCommand({
                SnapshotId: snapshotId,
                BlockIndex: b.index,
                BlockToken: b.token,
              }),
            );
            this.#retries += (answer.$metadata.attempts ?? 1) - 1;
            const bytes = await answer.BlockData?.transformToByteArray();
            if (!bytes || createHash('sha256').update(bytes).digest('base64') !== answer.Checksum)
              throw new Error(`block ${b.index} of ${snapshotId} does not match its checksum`);
            await file.write(bytes, 0, bytes.length, b.index * BLOCK);
          }),
        ),
      );
    } finally {
      await file.close();
    }
  }

  /** The targets: each EBS path at most 3× the CLI's time for the same work. */
  static targets(ratio: (ours: string, theirs: string) => number | undefined) {
    return [
      {
        what: 'EBS API upload vs volsnap full snapshot (time ratio; target ≤ 3)',
        value: ratio(EBS_UPLOAD, 'volsnap full snapshot'),
        target: 3,
      },
      {
        what: 'EBS API download of the full snapshot vs volsnap restore (time ratio; target ≤ 3)',
        value: ratio(EBS_DOWNLOAD, 'volsnap restore'),
        target: 3,
      },
    ];
  }
}
