import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, type StartedCloud, startCloudProcess } from '../support/processes.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-volumes-'));
const configPath = join(dataDir, 'config.json');
let cloud: StartedCloud;
const as = (account: string, ...args: string[]) =>
  cli(['--config', configPath, '--account', account, ...args]);

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
});
afterAll(async () => {
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

describe('volumes through the CLI', () => {
  let volumeId: string;

  it('registers a volume and shows it', async () => {
    const created = await as(
      'demo',
      '--json',
      'volume',
      'create',
      '--name',
      'web disk',
      '--size',
      '64MiB',
      '--tag',
      'env=prod',
      '--tag',
      'tier=gold',
    );
    expect(created.stderr).toBe('');
    const volume = JSON.parse(created.stdout);
    expect(volume).toMatchObject({
      name: 'web disk',
      sizeBytes: 64 * 2 ** 20,
      tags: { env: 'prod', tier: 'gold' },
      region: 'eu-west-1',
    });
    volumeId = volume.volumeId;
    const shown = await as('demo', 'volume', 'show', volumeId);
    expect(shown.stdout).toMatch(new RegExp(`id\\s+${volumeId}`));
    expect(shown.stdout).toMatch(/size\s+64 MiB \(67108864 bytes\)/);
    expect(shown.stdout).toMatch(/tags\s+env=prod, tier=gold/);
  });

  it('lists it as a table, and filters by tag and name', async () => {
    await as('demo', 'volume', 'create', '--name', 'db disk', '--size', '1GiB', '--tag', 'env=dev');
    const table = await as('demo', 'volume', 'list');
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+SIZE\s+CREATED\s+TAGS$/);
    expect(lines[1]).toMatch(/db disk\s+1 GiB/);
    expect(lines[2]).toMatch(new RegExp(`^${volumeId}\\s+web disk\\s+64 MiB`));
    const prod = JSON.parse((await as('demo', '--json', 'volume', 'list', '--tag', 'env=prod')).stdout);
    expect(prod.map((v: { volumeId: string }) => v.volumeId)).toEqual([volumeId]);
    const db = JSON.parse((await as('demo', '--json', 'volume', 'list', '--name', 'db')).stdout);
    expect(db.map((v: { name: string }) => v.name)).toEqual(['db disk']);
  });

  it('keeps accounts apart: another account neither sees nor deletes it', async () => {
    const listed = JSON.parse((await as('demo-b', '--json', 'volume', 'list')).stdout);
    expect(listed).toEqual([]);
    const shown = await as('demo-b', 'volume', 'show', volumeId);
    expect(shown.code).toBe(3);
    expect(shown.stderr).toContain('volume.notFound');
    const deleted = await as('demo-b', 'volume', 'delete', volumeId);
    expect(deleted.stderr).toContain('volume.notFound');
    expect((await as('demo', 'volume', 'show', volumeId)).code).toBe(0);
  });

  it('answers 401 without a valid API key', async () => {
    const endpoint = JSON.parse(readFileSync(configPath, 'utf8')).regions['eu-west-1'].endpoint;
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer vsk_key-0000000000000000_nope' },
    ];
    for (const headers of attempts) {
      const response = await fetch(`${endpoint}/v1/volumes`, { headers });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: string }).error).toBe('auth.unauthorized');
    }
  });

  it('explains bad input: sizes that are not whole blocks, and sizes that are not sizes', async () => {
    // The CLI checks the size before asking (a usage error, exit 2); the service's own check,
    // volume.invalidSize, is covered by the unit tests of the volume service.
    const unaligned = await as('demo', 'volume', 'create', '--name', 'odd', '--size', '1000000');
    expect(unaligned.code).toBe(2);
    expect(unaligned.stderr).toContain('not a whole number of 512 KiB blocks');
    expect(unaligned.stderr).toContain('1048576');
    const nonsense = await as('demo', 'volume', 'create', '--name', 'odd', '--size', 'big');
    expect(nonsense.code).not.toBe(0);
    expect(nonsense.stderr).toContain("'big' is not a size");
  });

  it('deletes it', async () => {
    const deleted = await as('demo', 'volume', 'delete', volumeId);
    expect(deleted.stdout).toContain(`Deleted ${volumeId}.`);
    const gone = await as('demo', 'volume', 'show', volumeId);
    expect(gone.stderr).toContain('volume.notFound');
  });
});

/** The one `error: <code>: …` line a failure prints on stderr, with no stack frame. */
function errorLine(stderr: string, code: string): string {
  expect(stderr).not.toMatch(/^\s+at /m);
  const lines = stderr.split('\n').filter((line) => line !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]?.startsWith(`error: ${code}: `), stderr).toBe(true);
  return lines[0] as string;
}

describe('what the CLI says when a command fails, and when deleting leaves things behind', () => {
  const disk = randomBytes(2 ** 20);
  // Not in the cloud's data folder, which `--fresh` empties.
  const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-volumes-work-'));
  const file = join(work, 'disk.img');
  writeFileSync(file, disk);
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const json = async (...args: string[]) => {
    const result = await as('demo', '--json', ...args);
    if (result.code !== 0) throw new Error(`volsnap ${args.join(' ')} failed: ${result.stderr}`);
    return JSON.parse(result.stdout);
  };
  const make = async (name: string): Promise<string> =>
    (await json('volume', 'create', '--name', name, '--size', '1MiB')).volumeId;
  const snap = async (volume: string): Promise<string> =>
    (await json('snapshot', 'create', '--volume', volume, '--file', file)).snapshotId;

  it('a host volume snapshotted without --file, and an unknown option: one error line, or one JSON error', async () => {
    const volume = await make('host');
    const text = await as('demo', 'snapshot', 'create', '--volume', volume);
    expect(text.code).toBe(2);
    expect(errorLine(text.stderr, 'request.invalid')).toBe(
      `error: request.invalid: volume ${volume} is on a host: give --file with its bytes (see \`volsnap snapshot create --help\`)`,
    );
    const json = await as('demo', '--json', 'snapshot', 'create', '--volume', volume);
    expect(json.code).toBe(2);
    expect(json.stderr).not.toMatch(/^\s+at /m);
    expect(JSON.parse(json.stderr)).toMatchObject({
      error: 'request.invalid',
      message: expect.stringContaining('give --file'),
    });
    const unknown = await as('demo', 'snapshot', 'list', '--colour');
    expect(unknown.code).toBe(2);
    expect(errorLine(unknown.stderr, 'request.invalid')).toContain("unknown option '--colour'");
    const unknownJson = await as('demo', 'snapshot', 'list', '--colour', '--json');
    expect(JSON.parse(unknownJson.stderr)).toMatchObject({ error: 'request.invalid' });
    const missing = await as('demo', 'volume', 'create', '--name', 'no size');
    expect(errorLine(missing.stderr, 'request.invalid')).toContain('give --size');
  });

  it('deletes a volume whose snapshots are in the recycle bin, which keeps them recoverable', async () => {
    const volume = await make('retired');
    const [first, second] = [await snap(volume), await snap(volume)];
    await as('demo', 'snapshot', 'delete', first);
    const refused = await as('demo', 'volume', 'delete', volume);
    expect(refused.code).toBe(4);
    expect(errorLine(refused.stderr, 'volume.hasSnapshots')).toContain(
      `still has 1 snapshot(s) outside the recycle bin: ${second}. Delete them first (\`volsnap snapshot delete ${second}\`)`,
    );
    await as('demo', 'snapshot', 'delete', second);
    const deleted = await as('demo', 'volume', 'delete', volume);
    expect(deleted.code, deleted.stderr).toBe(0);
    const [done, kept] = deleted.stdout.trim().split('\n');
    expect(done).toBe(`Deleted ${volume}.`);
    expect(kept).toMatch(/^Its 2 snapshot\(s\) in the recycle bin stay there, recoverable until purged: /);
    for (const id of [first, second]) expect(kept).toContain(id);
    expect((await as('demo', 'volume', 'show', volume)).stderr).toContain('volume.notFound');
    expect((await as('demo', 'snapshot', 'undelete', second)).code).toBe(0);
    const restored = join(work, 'restored.img');
    const restore = await as('demo', 'snapshot', 'restore', second, '--to', restored);
    expect(restore.code, restore.stderr).toBe(0);
    expect(readFileSync(restored).equals(disk)).toBe(true);
    // With --json: the same facts.
    const other = await make('retired too');
    const third = await snap(other);
    await as('demo', 'snapshot', 'delete', third);
    const json = JSON.parse((await as('demo', '--json', 'volume', 'delete', other)).stdout);
    expect(json).toMatchObject({
      volumeId: other,
      deleted: true,
      recycledSnapshots: [{ snapshotId: third }],
    });
  });

  it('says who loses access when a shared or public snapshot is deleted', async () => {
    const volume = await make('shared');
    const [shared, published] = [await snap(volume), await snap(volume)];
    const demoB = JSON.parse((await as('demo-b', '--json', 'account', 'show')).stdout).account.accountId;
    await as('demo', 'snapshot', 'share', shared, 'demo-b');
    await as('demo', 'snapshot', 'publish', shared);
    const text = await as('demo', 'snapshot', 'delete', shared);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^Moved ${shared} to the recycle bin until `));
    expect(lines[1]).toMatch(
      new RegExp(
        `^${shared} is shared with 1 account\\(s\\) \\(${demoB}\\) and public: they lose access now; \`volsnap snapshot undelete ${shared}\` before \\S+ gives it back to them\\.$`,
      ),
    );
    expect((await as('demo-b', 'snapshot', 'show', shared)).stderr).toContain('snapshot.notFound');
    await as('demo', 'snapshot', 'publish', published);
    const json = JSON.parse((await as('demo', '--json', 'snapshot', 'delete', published)).stdout);
    expect(json).toMatchObject({
      snapshotId: published,
      state: 'recycled',
      accessLost: {
        accountIds: [],
        public: true,
        message:
          `${published} is public: they lose access now; ` +
          `\`volsnap snapshot undelete ${published}\` before ${json.purgeAt} gives it back to them.`,
      },
    });
  });
});
