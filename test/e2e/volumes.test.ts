import { mkdtempSync, readFileSync } from 'node:fs';
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
    expect(shown.code).toBe(1);
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
    const unaligned = await as('demo', 'volume', 'create', '--name', 'odd', '--size', '1000000');
    expect(unaligned.code).toBe(1);
    expect(unaligned.stderr).toContain('volume.invalidSize');
    expect(unaligned.stderr).toContain('Round it up to 1048576');
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
