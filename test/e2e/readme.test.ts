import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BUNDLE, ROOT, type StartedCloud, startCloudProcess } from '../support/processes.ts';

// The README's CLI section, pasted: every `npx volsnap` line of its ```sh blocks (and the
// `npm run put-image` line), with the ids filled in, runs from a folder outside the clone against
// a local cloud and exits 0. The CLI is the bundle the e2e setup builds.
const MiB = 2 ** 20;
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-readme-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-readme-work-'));
const configPath = join(dataDir, 'config.json');
let cloud: StartedCloud;
let s3Endpoint: string;
let apiEndpoint: string;

const env = () => ({ ...process.env, VOLSNAP_CONFIG: configPath, VOLSNAP_S3_ENDPOINT: s3Endpoint });

/** `volsnap ARGS --json` from the work folder, parsed; fails the test with its stderr. */
async function json(...args: string[]) {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI_BUNDLE, '--json', ...args], {
    cwd: work,
    env: env(),
  }).catch((error) => {
    throw new Error(`volsnap ${args.join(' ')} failed: ${error.stderr}`);
  });
  return JSON.parse(stdout);
}

/** A README line run by bash from the work folder: its exit code and output. */
function shell(line: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', line], { cwd: work, env: env() }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** The command lines of the README's `## The CLI` section and its subsections, continuations joined. */
function readmeCommandLines(readme: string): string[] {
  const start = readme.indexOf('\n## The CLI\n');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  const lines: string[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const joined = (block[1] ?? '').replace(/\\\n\s*/g, '');
    for (const line of joined.split('\n'))
      if (/^(npx volsnap|npm run put-image) /.test(line)) lines.push(line.trim());
  }
  return lines;
}

/** A line as run: its comment and `[optional]` parts dropped; a `|` left would be a shell pipe. */
function runnable(line: string): string {
  const command = line.replace(/\s+#\s.*$/, '').replace(/\s*\[[^\]]*\]/g, '');
  const unquoted = command.replace(/'[^']*'|"[^"]*"/g, '');
  if (unquoted.includes('|')) throw new Error(`a README line is a shell pipe when pasted: ${line}`);
  return command.trim();
}

describe('the README, pasted', () => {
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
    const ports = /eu-west-1\s+API (\S+)\s+\(S3 (http:\/\/127\.0\.0\.1:\d+)/.exec(cloud.output());
    if (!ports?.[1] || !ports[2]) throw new Error('the local cloud did not print its endpoints');
    [apiEndpoint, s3Endpoint] = [ports[1], ports[2]];
    // The files the lines name: small, so the whole README runs in about a minute.
    const disk = randomBytes(4 * MiB);
    disk.fill(0, 0, MiB);
    writeFileSync(join(work, 'sdb.img'), disk);
    writeFileSync(join(work, 'data.img'), randomBytes(4 * MiB));
    const web = Buffer.alloc(64 * MiB);
    randomBytes(2 * MiB).copy(web, 8 * MiB);
    writeFileSync(join(work, 'web.img'), web);
    execFileSync('qemu-img', [
      'convert',
      '-f',
      'raw',
      '-O',
      'qcow2',
      join(work, 'data.img'),
      join(work, 'cloud-image.qcow2'),
    ]);
    // What the README's ids stand for, made first: a volume on this host with two snapshots, a
    // spare one to delete, and three for the instance.
    const volume = async (name: string) =>
      (await json('volume', 'create', '--name', name, '--size', '4MiB')).volumeId as string;
    ids.vol = await volume('host disk');
    ids.snapA = (
      await json('snapshot', 'create', '--volume', ids.vol, '--file', join(work, 'sdb.img'))
    ).snapshotId;
    disk.fill(7, 2 * MiB, 2 * MiB + 4096);
    writeFileSync(join(work, 'sdb.img'), disk);
    ids.snapB = (
      await json('snapshot', 'create', '--volume', ids.vol, '--file', join(work, 'sdb.img'))
    ).snapshotId;
    ids.spare = await volume('spare');
    ids.volA = await volume('vda');
    ids.volB = await volume('vdb');
    ids.volC = await volume('vdc');
    ids.account = (await json('account', 'show')).account.accountId;
  });
  afterAll(async () => {
    cloud?.process.kill('SIGINT');
    await cloud?.exited;
  });

  /** The id a placeholder of this line stands for, looked up when the line runs. */
  const named = async (kind: string, name: string, idField: string, ...args: string[]) => {
    const found = (await json(kind, 'list', ...args)).find((r: { name?: string }) => r.name === name);
    if (!found) throw new Error(`no ${kind} named ${name}: the README line that makes it did not run`);
    return found[idField] as string;
  };
  async function fill(line: string): Promise<string> {
    let text = line
      .replaceAll('npx volsnap', `'${process.execPath}' '${CLI_BUNDLE}'`)
      .replaceAll('npm run put-image --', `'${process.execPath}' '${ROOT}bin/put-image.js'`)
      .replaceAll('vol-A=', `${ids.volA}=`)
      .replaceAll('vol-B=', `${ids.volB}=`)
      .replaceAll('/dev/sdb', './sdb.img')
      .replaceAll('snap-A', ids.snapA ?? '')
      .replaceAll('snap-B', ids.snapB ?? '')
      .replaceAll('snap-…', ids.snapB ?? '')
      .replaceAll('<account id>', ids.account ?? '');
    const volume = / volume delete /.test(text)
      ? ids.spare
      : / instance (attach|detach) /.test(text)
        ? ids.volC
        : / snapshot create /.test(text) && !text.includes('--file')
          ? await named('volume', 'web', 'volumeId')
          : ids.vol;
    text = text.replaceAll('vol-…', volume ?? '');
    if (text.includes('exp-…') || text.includes('<that URL>')) {
      const exportId = (await json('export', 'list'))[0].exportId as string;
      text = text.replaceAll('exp-…', exportId);
      if (text.includes('<that URL>'))
        text = text.replaceAll('<that URL>', (await json('export', 'url', exportId)).url);
    }
    if (text.includes('pol-…')) text = text.replaceAll('pol-…', await named('policy', 'nightly', 'policyId'));
    if (text.includes('i-…')) text = text.replaceAll('i-…', await named('instance', 'web', 'instanceId'));
    if (text.includes('img-…')) text = text.replaceAll('img-…', await named('image', 'golden', 'imageId'));
    if (text.includes('key-…')) {
      const keys = await json('admin', 'key', 'list', '--user', 'ci');
      text = text.replaceAll('key-…', keys[0].keyId);
    }
    if (/[…<>]/.test(text.replace(/'[^']*'/g, ''))) throw new Error(`a placeholder left unfilled: ${text}`);
    return text;
  }

  /** `volsnap agent` watches until stopped: it must say what it watches, then stop cleanly on SIGTERM. */
  async function runAgent(command: string) {
    const child = spawn('bash', ['-c', `exec ${command}`], { cwd: work, env: env() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.includes('volsnap agent: taking queued snapshots')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, stdout, stderr };
  }

  it('runs every command line of its CLI section, ids filled in, each exiting 0', async () => {
    const lines = readmeCommandLines(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(lines.length).toBeGreaterThan(60);
    const failed: string[] = [];
    for (const line of lines) {
      const command = await fill(runnable(line));
      const result = / agent /.test(command) ? await runAgent(command) : await shell(command);
      if (/ agent /.test(command))
        expect(result.stdout).toBe(
          `volsnap agent: taking queued snapshots of ${ids.vol} (./sdb.img), every 30s until stopped (Ctrl-C or SIGTERM).\n`,
        );
      if (result.code !== 0) failed.push(`${line}\n  → exit ${result.code}: ${result.stderr.trim()}`);
    }
    expect(failed).toEqual([]);
    // What some of them did, as the README says.
    expect(readFileSync(join(work, 'disk.img')).equals(readFileSync(join(work, 'sdb.img')))).toBe(true);
    const imageBacked = await json('snapshot', 'list', '--volume', await named('volume', 'web', 'volumeId'));
    expect(imageBacked[0]).toMatchObject({ state: 'completed', stats: { blockCount: 4 } });
  }, 300_000);

  it('restore onto an existing file needs --force, and says so', async () => {
    const again = await shell(
      `'${process.execPath}' '${CLI_BUNDLE}' snapshot restore ${ids.snapB} --to ./disk.img`,
    );
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('--force');
    const forced = await shell(
      `'${process.execPath}' '${CLI_BUNDLE}' snapshot restore ${ids.snapB} --to ./disk.img --force`,
    );
    expect(forced.code, forced.stderr).toBe(0);
  });

  it('--json: what a command makes or changes is its record at the top level, as show prints it, and report', async () => {
    const keys = (record: object) => Object.keys(record).sort();
    const volume = await json('volume', 'create', '--name', 'json', '--size', '4MiB');
    expect(volume.volumeId).toMatch(/^vol-/);
    expect(keys(volume)).toEqual(keys(await json('volume', 'show', volume.volumeId)));
    expect(volume.sizeBytes).toBe(4 * MiB);

    const created = await json(
      'snapshot',
      'create',
      '--volume',
      volume.volumeId,
      '--file',
      join(work, 'sdb.img'),
    );
    expect(created.snapshotId).toMatch(/^snap-/);
    expect(created.report).toMatchObject({ blocks: 8, written: true });
    const shown = await json('snapshot', 'show', created.snapshotId);
    expect(keys(created)).toEqual([...keys(shown), 'report'].sort());
    expect(shown.sizeBytes).toBe(4 * MiB);
    expect(shown).not.toHaveProperty('volumeSize');
    const updated = await json('snapshot', 'update', created.snapshotId, '--name', 'renamed');
    expect(updated).toMatchObject({ snapshotId: created.snapshotId, name: 'renamed' });
    const shared = await json('snapshot', 'share', created.snapshotId, 'demo-b');
    expect(shared.snapshotId).toBe(created.snapshotId);
    expect(keys(shared)).toEqual(keys(await json('snapshot', 'show', created.snapshotId)));
    await json('snapshot', 'unshare', created.snapshotId, 'demo-b');

    const imported = await json(
      'snapshot',
      'import',
      '--file',
      join(work, 'cloud-image.qcow2'),
      '--format',
      'qcow2',
    );
    expect(imported).toMatchObject({ state: 'completed', sizeBytes: 4 * MiB });
    expect(keys(imported)).toEqual(keys(await json('snapshot', 'show', imported.snapshotId)));

    const exported = await json('snapshot', 'export', created.snapshotId, '--format', 'raw');
    expect(exported).toMatchObject({ exportId: expect.stringMatching(/^exp-/), sizeBytes: 4 * MiB });
    expect(keys(exported)).toEqual(keys(await json('export', 'show', exported.exportId)));
    expect((await json('export', 'url', exported.exportId)).sizeBytes).toBe(4 * MiB);
    expect(await json('export', 'delete', exported.exportId)).toEqual({
      exportId: exported.exportId,
      deleted: true,
    });

    const policy = await json(
      'policy',
      'create',
      '--name',
      'p',
      '--target-tag',
      'a=b',
      '--every',
      '1d',
      '--keep',
      '2',
    );
    expect(keys(policy)).toEqual(keys(await json('policy', 'show', policy.policyId)));
    expect((await json('policy', 'update', policy.policyId, '--keep', '3')).policyId).toBe(policy.policyId);
    expect(await json('policy', 'delete', policy.policyId)).toEqual({
      policyId: policy.policyId,
      deleted: true,
    });

    // A delete: the record in its new state when something remains, {<id>: id, deleted: true} when not.
    const recycled = await json('snapshot', 'delete', created.snapshotId);
    expect(recycled).toMatchObject({ snapshotId: created.snapshotId, state: 'recycled' });
    expect(keys(recycled)).toEqual(keys(await json('snapshot', 'show', created.snapshotId)));
    const instance = await json(
      'instance',
      'register',
      '--name',
      'json',
      '--volume',
      `${volume.volumeId}=/dev/vda`,
    );
    expect(keys(instance)).toEqual(keys(await json('instance', 'show', instance.instanceId)));
    const image = await json(
      'image',
      'create',
      '--instance',
      instance.instanceId,
      '--name',
      'json',
      '--file',
      `${volume.volumeId}=${join(work, 'sdb.img')}`,
    );
    expect(image).toMatchObject({ imageId: expect.stringMatching(/^img-/), state: 'completed' });
    expect(keys(image)).toEqual([...keys(await json('image', 'show', image.imageId)), 'report'].sort());
    const launched = await json('image', 'launch', image.imageId, '--name', 'json-2');
    expect(launched.instanceId).toMatch(/^i-/);
    expect(keys(launched)).toEqual(
      [...keys(await json('instance', 'show', launched.instanceId)), 'report'].sort(),
    );
    expect(await json('image', 'delete', image.imageId)).toMatchObject({
      imageId: image.imageId,
      deleted: true,
      report: { recycled: [expect.objectContaining({ volumeId: volume.volumeId })] },
    });
    expect(await json('instance', 'delete', instance.instanceId)).toEqual({
      instanceId: instance.instanceId,
      deleted: true,
    });
    expect(await json('volume', 'delete', volume.volumeId)).toMatchObject({
      volumeId: volume.volumeId,
      deleted: true,
      recycledSnapshots: expect.arrayContaining([
        expect.objectContaining({ snapshotId: created.snapshotId }),
      ]),
    });
  });

  it('installs on a host with one command: the packed CLI into an empty folder outside the clone, offline', async () => {
    const out = mkdtempSync(join(tmpdir(), 'volsnap-e2e-pack-'));
    execFileSync(process.execPath, [join(ROOT, 'scripts/pack-cli.js'), out], { cwd: ROOT, stdio: 'ignore' });
    const tarball = join(out, 'volsnap-cli-0.1.0.tgz');
    const host = mkdtempSync(join(tmpdir(), 'volsnap-e2e-host-'));
    execFileSync('npm', ['install', '--prefix', host, '--offline', '--no-audit', '--no-fund', tarball], {
      cwd: host,
      stdio: 'ignore',
    });
    const noConfig = {
      ...process.env,
      HOME: host,
      VOLSNAP_CONFIG: '',
      PATH: `${join(host, 'node_modules/.bin')}:${process.env.PATH}`,
    };
    const health = execFileSync('volsnap', ['health', '--endpoint', apiEndpoint], {
      cwd: host,
      env: noConfig,
      encoding: 'utf8',
    });
    expect(health).toMatch(/^region\s+eu-west-1\nversion\s+\S+\nstatus\s+ok\nruntime\s+Node v22\.\S+\n$/);
    // And it writes snapshots: its zstd addon came with it.
    const key = JSON.parse(readFileSync(configPath, 'utf8')).accounts.demo.apiKey;
    const created = JSON.parse(
      execFileSync(
        'volsnap',
        [
          '--endpoint',
          apiEndpoint,
          '--json',
          'snapshot',
          'create',
          '--volume',
          ids.vol ?? '',
          '--file',
          join(work, 'sdb.img'),
        ],
        { cwd: host, env: { ...noConfig, VOLSNAP_API_KEY: key }, encoding: 'utf8' },
      ),
    );
    expect(created).toMatchObject({ state: 'completed', volumeId: ids.vol });
  });
});
