// The EBS direct API driven by the AWS CLI (`aws ebs …`, `aws ec2 describe-snapshots`), unmodified,
// against the local cloud: with the AWS config and credentials files the cloud writes, and with
// `--endpoint-url`. Works with the AWS CLI v1 (pip/pyenv) and v2 (Debian's awscli, which .ci/run
// installs when `aws` is missing).
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliFor } from '../support/e2e-cli.ts';
import { type StartedCloud, startCloudProcess } from '../support/processes.ts';
import { createSigV4Key, wrongSecret } from '../support/sigv4-keys.ts';

const BLOCK = 524_288;
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-awscli-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-awscli-work-'));
const configPath = join(dataDir, 'config.json');
const awsConfig = join(dataDir, 'aws-config');
const awsCredentials = join(dataDir, 'aws-credentials');
const volsnap = cliFor(configPath);
let cloud: StartedCloud;
let api: Record<string, string>;
let regions: string[];
let version: string;

interface AwsResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `aws ARGS` with only the cloud's files for configuration (no credentials of this machine). */
function aws(args: string[], extraEnv: Record<string, string> = {}): Promise<AwsResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AWS_')) env[name] = value;
  Object.assign(env, {
    AWS_CONFIG_FILE: awsConfig,
    AWS_SHARED_CREDENTIALS_FILE: awsCredentials,
    AWS_PAGER: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extraEnv,
  });
  return new Promise((resolve) => {
    execFile(
      'aws',
      [...args, '--output', 'json'],
      { cwd: work, env, maxBuffer: 16 * 2 ** 20 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** `aws ARGS`, parsed; fails the test with its stderr. */
async function awsJson(args: string[], extraEnv?: Record<string, string>) {
  const result = await aws(args, extraEnv);
  if (result.code !== 0) throw new Error(`aws ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout.trim() ? JSON.parse(result.stdout) : {};
}

const ebsIn = (region: string) => ['--region', region, '--endpoint-url', `${api[region]}/ebs`];
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest();

/** `ms` passes; then `check` once more. For what replicates or is packed in the background. */
async function eventually<T>(
  check: () => Promise<T>,
  accept: (value: T) => boolean,
  ms = 120_000,
): Promise<T> {
  const until = Date.now() + ms;
  let value = await check();
  while (!accept(value) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 500));
    value = await check();
  }
  return value;
}

beforeAll(async () => {
  cloud = await startCloudProcess([
    '--fresh',
    '--port-base',
    'auto',
    '--data-dir',
    dataDir,
    '--no-schedules',
  ]);
  // A failed start resolves to the error (its message holds the cloud's output).
  if (cloud instanceof Error) throw cloud;
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as {
    regions: Record<string, { endpoint: string }>;
  };
  api = Object.fromEntries(Object.entries(config.regions).map(([name, r]) => [name, r.endpoint]));
  regions = Object.keys(api);
  const printed = await aws(['--version']);
  version = `${printed.stdout}${printed.stderr}`.trim();
  expect(version, 'the AWS CLI is on PATH (.ci/run installs Debian’s awscli)').toMatch(/^aws-cli\/[12]\./);
});

afterAll(() => {
  if (cloud?.process?.exitCode === null) cloud.process.kill('SIGKILL');
});

describe('the EBS direct API through the AWS CLI', () => {
  let snapshotId = '';
  const blocks = new Map<number, Buffer>([
    [0, randomBytes(BLOCK)],
    [5, randomBytes(BLOCK)],
  ]);

  it('the local cloud prints a demo SigV4 profile and writes AWS config and credentials files with the endpoints', () => {
    const output = cloud.output();
    const accessKeyId = /access key id (AKIA[0-9A-Z]{16})/.exec(output)?.[1];
    expect(accessKeyId).toBeDefined();
    expect(output).toContain(
      `AWS_CONFIG_FILE=${awsConfig} AWS_SHARED_CREDENTIALS_FILE=${awsCredentials} aws --profile volsnap-demo`,
    );
    const config = readFileSync(awsConfig, 'utf8');
    const [first] = regions;
    expect(config).toContain(`[profile volsnap-demo]\nregion = ${first}\n`);
    for (const region of regions) {
      expect(config).toContain(`[profile volsnap-demo-${region}]\nregion = ${region}\n`);
      expect(config).toContain(`endpoint_url = ${api[region]}/ebs\n`);
      expect(config).toContain(`endpoint_url = ${api[region]}/ec2/\n`);
    }
    expect(readFileSync(awsCredentials, 'utf8')).toContain(
      `[volsnap-demo]\naws_access_key_id = ${accessKeyId}\n`,
    );
  });

  it('start-snapshot, put-snapshot-block, complete-snapshot, then list-snapshot-blocks and get-snapshot-block give the bytes back', async () => {
    const [region = ''] = regions;
    const started = await awsJson([
      'ebs',
      'start-snapshot',
      '--profile',
      'volsnap-demo',
      ...ebsIn(region),
      '--volume-size',
      '1',
      '--description',
      'from the aws cli',
      '--tags',
      'Key=made-by,Value=awscli',
      '--timeout',
      '60',
    ]);
    expect(started).toMatchObject({
      Status: 'pending',
      VolumeSize: 1,
      BlockSize: BLOCK,
      Description: 'from the aws cli',
    });
    snapshotId = started.SnapshotId;
    // (The AWS CLI checks no id pattern client-side: volsnap's ids are ebs-write's to shape.)
    expect(snapshotId).toMatch(/^snap-/);
    for (const [index, bytes] of blocks) {
      const file = join(work, `block-${index}.bin`);
      writeFileSync(file, bytes);
      const put = await awsJson([
        'ebs',
        'put-snapshot-block',
        '--profile',
        'volsnap-demo',
        ...ebsIn(region),
        '--snapshot-id',
        snapshotId,
        '--block-index',
        String(index),
        // A streaming blob: the CLI reads the file at this path (v1 refuses fileb:// here).
        '--block-data',
        file,
        '--data-length',
        String(BLOCK),
        '--checksum',
        sha256(bytes).toString('base64'),
        '--checksum-algorithm',
        'SHA256',
      ]);
      expect(put).toEqual({ Checksum: sha256(bytes).toString('base64'), ChecksumAlgorithm: 'SHA256' });
    }
    const linear = sha256(
      Buffer.concat([...blocks.keys()].sort((a, b) => a - b).map((i) => sha256(blocks.get(i) as Buffer))),
    );
    const completed = await awsJson([
      'ebs',
      'complete-snapshot',
      '--profile',
      'volsnap-demo',
      ...ebsIn(region),
      '--snapshot-id',
      snapshotId,
      '--changed-blocks-count',
      String(blocks.size),
      '--checksum',
      linear.toString('base64'),
      '--checksum-algorithm',
      'SHA256',
      '--checksum-aggregation-method',
      'LINEAR',
    ]);
    expect(['pending', 'completed']).toContain(completed.Status);
    // As coldsnap waits: EC2 DescribeSnapshots, signed for ec2, at <API>/ec2/.
    const described = await eventually(
      () =>
        awsJson([
          'ec2',
          'describe-snapshots',
          '--profile',
          'volsnap-demo',
          '--region',
          region,
          '--endpoint-url',
          `${api[region]}/ec2/`,
          '--snapshot-ids',
          snapshotId,
        ]),
      (d) => d.Snapshots?.[0]?.State !== 'pending',
    );
    expect(described.Snapshots).toMatchObject([
      { SnapshotId: snapshotId, State: 'completed', VolumeSize: 1 },
    ]);
    const listed = await awsJson([
      'ebs',
      'list-snapshot-blocks',
      '--profile',
      'volsnap-demo',
      ...ebsIn(region),
      '--snapshot-id',
      snapshotId,
    ]);
    expect(listed).toMatchObject({ VolumeSize: 1, BlockSize: BLOCK });
    expect(listed.Blocks.map((b: { BlockIndex: number }) => b.BlockIndex)).toEqual([0, 5]);
    for (const { BlockIndex, BlockToken } of listed.Blocks as { BlockIndex: number; BlockToken: string }[]) {
      const out = join(work, `got-${BlockIndex}.bin`);
      const got = await awsJson([
        'ebs',
        'get-snapshot-block',
        '--profile',
        'volsnap-demo',
        ...ebsIn(region),
        '--snapshot-id',
        snapshotId,
        '--block-index',
        String(BlockIndex),
        '--block-token',
        BlockToken,
        out,
      ]);
      expect(got).toMatchObject({ DataLength: BLOCK, ChecksumAlgorithm: 'SHA256' });
      expect(readFileSync(out).equals(blocks.get(BlockIndex) as Buffer), `block ${BlockIndex}`).toBe(true);
    }
    // An ordinary volsnap snapshot of the demo account.
    const shown = await volsnap.json('demo', region, 'snapshot', 'show', snapshotId);
    expect(shown).toMatchObject({ snapshotId, state: 'completed' });
  });

  it('finds the endpoints in the profile’s services section where the AWS CLI reads one (v1 ≥ 1.29, v2 ≥ 2.13)', async () => {
    const [, major = 0, minor = 0] = (/^aws-cli\/(\d+)\.(\d+)/.exec(version) ?? []).map(Number);
    const readsServices = major === 1 ? minor >= 29 : minor >= 13;
    const [region = ''] = regions;
    if (readsServices) {
      const listed = await awsJson([
        'ebs',
        'list-snapshot-blocks',
        '--profile',
        'volsnap-demo',
        '--snapshot-id',
        snapshotId,
      ]);
      expect(listed.Blocks).toHaveLength(2);
    } else {
      // Older CLIs (Debian's 2.9) ignore the section: they need --endpoint-url, the profile still names it.
      const services = await aws(['configure', 'get', 'services', '--profile', 'volsnap-demo']);
      expect(services.stdout.trim()).toBe('volsnap-demo-services');
      expect(
        (
          await awsJson([
            'ebs',
            'list-snapshot-blocks',
            '--profile',
            'volsnap-demo',
            ...ebsIn(region),
            '--snapshot-id',
            snapshotId,
          ])
        ).Blocks,
      ).toHaveLength(2);
    }
  });

  it('a key issued in one region works in the other, is refused with a wrong secret, and stops in both once revoked', async () => {
    const [home = '', other = ''] = regions;
    const key = await createSigV4Key(volsnap, { account: 'demo', region: home });
    const as = (secret: string) => ({ AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: secret });
    const list = (region: string, secret = key.secretAccessKey) =>
      aws(['ebs', 'list-snapshot-blocks', ...ebsIn(region), '--snapshot-id', snapshotId], as(secret));
    expect((await list(home)).code).toBe(0);
    // Authenticated in the other region too: the snapshot lives in the first one, so it is not found there.
    const there = await eventually(
      () => list(other),
      (r) => !/UnrecognizedClient/.test(r.stderr),
      10_000,
    );
    expect(there.stderr).toMatch(/ResourceNotFoundException/);
    expect((await list(home, wrongSecret(key.secretAccessKey))).stderr).toMatch(/InvalidSignatureException/);
    await volsnap.json('demo', home, 'admin', 'key', 'revoke', key.accessKeyId);
    expect((await list(home)).stderr).toMatch(/UnrecognizedClientException/);
    const revokedThere = await eventually(
      () => list(other),
      (r) => /UnrecognizedClient/.test(r.stderr),
      10_000,
    );
    expect(revokedThere.stderr).toMatch(/UnrecognizedClientException/);
  });

  it("another account's key finds no snapshot of the demo account: ResourceNotFoundException, for reads and writes", async () => {
    const [region = ''] = regions;
    const key = await createSigV4Key(volsnap, { account: 'demo-b', region });
    const env = { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey };
    const file = join(work, 'other-account.bin');
    writeFileSync(file, randomBytes(BLOCK));
    const attempts = [
      ['ebs', 'list-snapshot-blocks', ...ebsIn(region), '--snapshot-id', snapshotId],
      [
        'ebs',
        'put-snapshot-block',
        ...ebsIn(region),
        '--snapshot-id',
        snapshotId,
        '--block-index',
        '1',
        '--block-data',
        file,
        '--data-length',
        String(BLOCK),
        '--checksum',
        sha256(readFileSync(file)).toString('base64'),
        '--checksum-algorithm',
        'SHA256',
      ],
      [
        'ebs',
        'complete-snapshot',
        ...ebsIn(region),
        '--snapshot-id',
        snapshotId,
        '--changed-blocks-count',
        '0',
      ],
    ];
    for (const args of attempts) {
      const result = await aws(args, env);
      expect(result.code, args[1]).not.toBe(0);
      expect(result.stderr, args[1]).toMatch(/ResourceNotFoundException/);
    }
  });
});
