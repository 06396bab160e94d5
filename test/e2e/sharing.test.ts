import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../lib/cli/errors.ts';
import { ERROR_STATUS, type ErrorCode } from '../../lib/core/shared/errors.ts';
import { cli, type StartedCloud, startCloudProcess } from '../support/processes.ts';

const BLOCK = 512 * 1024;
const SIZE = 4 * 1024 * 1024;
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-sharing-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-sharing-files-'));
const configPath = join(dataDir, 'config.json');
let cloud: StartedCloud;

/** Who runs a command: an account of the config file by name, or a bare API key. */
type Actor = string | { token: string };
interface Refusal {
  error: string;
  message: string;
  details?: Record<string, unknown>;
}

const run = (actor: Actor, ...args: string[]) =>
  typeof actor === 'string'
    ? cli(['--config', configPath, '--account', actor, ...args])
    : cli(['--config', configPath, ...args], { ...process.env, VOLSNAP_API_KEY: actor.token });
const json = async (actor: Actor, ...args: string[]) => {
  const result = await run(actor, '--json', ...args);
  if (result.code !== 0) throw new Error(`volsnap ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
};
/**
 * Runs a command that must fail: the API's error as JSON on stderr, and the exit code of its kind
 * (3 not found, 4 conflict, 1 a refusal: lib/cli/errors.ts) for the HTTP status the code maps to.
 */
const refused = async (actor: Actor, ...args: string[]): Promise<Refusal> => {
  const result = await run(actor, '--json', ...args);
  expect(result.code, `volsnap ${args.join(' ')} should fail; it printed ${result.stdout}`).not.toBe(0);
  const refusal = JSON.parse(result.stderr) as Refusal;
  const status = ERROR_STATUS[refusal.error as ErrorCode] ?? 0;
  expect(result.code, `exit code of ${refusal.error}`).toBe(exitCodeFor(refusal.error, status));
  return refusal;
};
const accountId = (name: string): string =>
  JSON.parse(readFileSync(configPath, 'utf8')).accounts[name].accountId;
const ids = (snapshots: { snapshotId: string }[]) => snapshots.map((s) => s.snapshotId);

/** 4 MiB: blocks 1, 4 and 6 zero, the other five random. */
function makeImage(): Buffer {
  const image = randomBytes(SIZE);
  for (const i of [1, 4, 6]) image.fill(0, i * BLOCK, (i + 1) * BLOCK);
  return image;
}

/** A completed snapshot of `image` on a new volume of `actor`. */
async function snapshotOf(
  actor: Actor,
  name: string,
  image: Buffer,
): Promise<{ snapshotId: string; volumeId: string }> {
  const path = join(work, `${name}.img`);
  writeFileSync(path, image);
  const volume = await json(actor, 'volume', 'create', '--name', name, '--size', '4MiB');
  const created = await json(actor, 'snapshot', 'create', '--volume', volume.volumeId, '--file', path);
  expect(created).toMatchObject({ state: 'completed', stats: { blockCount: 5, zeroBlocks: 3 } });
  return created;
}

let restores = 0;
/** Restores a snapshot as `actor` into a new file and returns the file's bytes. */
async function restore(actor: Actor, snapshotId: string): Promise<Buffer> {
  const target = join(work, `restore-${++restores}.img`);
  const report = await json(actor, 'snapshot', 'restore', snapshotId, '--to', target);
  expect(report).toMatchObject({ snapshotId, report: { blocks: 8, fetchedBlocks: 5, zeroBlocks: 3 } });
  return readFileSync(target);
}

/** A restore that must be refused before it writes anything. */
async function refusedRestore(actor: Actor, snapshotId: string): Promise<Refusal> {
  const target = join(work, `refused-${++restores}.img`);
  const refusal = await refused(actor, 'snapshot', 'restore', snapshotId, '--to', target);
  expect(existsSync(target)).toBe(false);
  return refusal;
}

beforeAll(async () => {
  // One region is enough: shares, public snapshots and quotas are per region.
  cloud = await startCloudProcess([
    '--fresh',
    '--port-base',
    'auto',
    '--regions',
    'eu-west-1',
    '--data-dir',
    dataDir,
  ]);
});
afterAll(async () => {
  // Kept beside the cloud's data, for reading when a test here fails.
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

/** A's snapshot, shared, unshared and published below (and kept from a member of A at the end). */
let snapshotId: string;

describe('sharing a snapshot between accounts, through the CLI', () => {
  // A is `demo`, B is `demo-b`.
  const image = makeImage();

  it("keeps A's private snapshot from B: B can neither delete nor share it, it is not found", async () => {
    ({ snapshotId } = await snapshotOf('demo', 'shared-disk', image));
    expect((await refused('demo-b', 'snapshot', 'delete', snapshotId)).error).toBe('snapshot.notFound');
    const share = await refused('demo-b', 'snapshot', 'share', snapshotId, 'operator');
    expect(share).toMatchObject({ error: 'snapshot.notFound', details: { snapshotId } });
  });

  it('shares it with B, who lists it under --shared and restores it byte for byte', async () => {
    const shared = await json('demo', 'snapshot', 'share', snapshotId, 'demo-b');
    expect(shared.sharedWith).toEqual([accountId('demo-b')]);
    const listed = await json('demo-b', 'snapshot', 'list', '--shared');
    expect(ids(listed)).toEqual([snapshotId]);
    expect(listed[0].accountId).toBe(accountId('demo'));
    // Whom else it is shared with is the owner's business.
    expect(listed[0]).not.toHaveProperty('sharedWith');
    expect(Buffer.compare(await restore('demo-b', snapshotId), image)).toBe(0);
  });

  it('lets B read it but not delete or share it while it is shared', async () => {
    const deleted = await run('demo-b', 'snapshot', 'delete', snapshotId);
    expect(deleted.code).toBe(1);
    expect(deleted.stderr).toMatch(
      new RegExp(`^error: auth\\.forbidden: Snapshot ${snapshotId} belongs to another account`),
    );
    const share = await refused('demo-b', 'snapshot', 'share', snapshotId, 'operator');
    expect(share.error).toBe('auth.forbidden');
    expect(share.message).toContain('only its owner can share it');
  });

  it("unshares it: B's next restore is a 404, and B still cannot delete or share it", async () => {
    const unshared = await json('demo', 'snapshot', 'unshare', snapshotId, 'demo-b');
    expect(unshared.sharedWith ?? []).toEqual([]);
    expect(unshared.state).toBe('completed');
    expect((await refusedRestore('demo-b', snapshotId)).error).toBe('snapshot.notFound');
    expect((await refused('demo-b', 'snapshot', 'delete', snapshotId)).error).toBe('snapshot.notFound');
    expect((await refused('demo-b', 'snapshot', 'share', snapshotId, 'operator')).error).toBe(
      'snapshot.notFound',
    );
  });

  describe('publishing it to every account', () => {
    let carol: { token: string };

    it('lets a third account find it under --public and restore it', async () => {
      const created = await json('operator', 'admin', 'account', 'create', 'carol');
      expect(created.account.name).toBe('carol');
      carol = { token: created.key.token };
      expect((await json('demo', 'snapshot', 'publish', snapshotId)).public).toBe(true);
      const listed = await json(carol, 'snapshot', 'list', '--public');
      expect(ids(listed)).toEqual([snapshotId]);
      expect(Buffer.compare(await restore(carol, snapshotId), image)).toBe(0);
    });

    it('hides it at once when A blocks public sharing, and refuses to publish it', async () => {
      const settings = await json('demo', 'account', 'settings', '--block-public-sharing');
      expect(settings).toMatchObject({ accountId: accountId('demo'), blockPublicSharing: true });
      expect((await refusedRestore(carol, snapshotId)).error).toBe('snapshot.notFound');
      const publish = await refused('demo', 'snapshot', 'publish', snapshotId);
      expect(publish.error).toBe('snapshot.publicSharingBlocked');
      expect(publish.message).toContain('--allow-public-sharing');
    });

    it('no longer lists it under --public once A blocks public sharing', async () => {
      expect(ids(await json(carol, 'snapshot', 'list', '--public'))).not.toContain(snapshotId);
    });
  });
});

describe('quotas', () => {
  it("refuses B's snapshot past its quota, naming the limit and the usage", async () => {
    const quota = await json('operator', 'admin', 'quota', 'set', 'demo-b', '--snapshots', '1');
    expect(quota).toMatchObject({
      account: { accountId: accountId('demo-b') },
      limits: { maxSnapshots: 1 },
    });
    const first = await snapshotOf('demo-b', 'quota-disk', makeImage());
    const path = join(work, 'quota-disk.img');
    const second = await refused('demo-b', 'snapshot', 'create', '--volume', first.volumeId, '--file', path);
    expect(second.error).toBe('quota.exceeded');
    expect(second.message).toContain('has 1 snapshots in eu-west-1, its quota is 1');
    expect(second.details).toMatchObject({ quota: 'snapshots', limit: 1, used: 1 });
    const usage = await json('demo-b', 'account', 'usage');
    expect(usage).toMatchObject({ accountId: accountId('demo-b'), snapshots: { used: 1, limit: 1 } });
    expect(usage.storedBytes.used).toBeGreaterThanOrEqual(5 * BLOCK);
    expect(usage.storedBytes.used).toBeLessThan(usage.storedBytes.limit);
  });

  it('shows every limit beside its use in account usage, each set by the operator, the others kept', async () => {
    const quota = await json(
      'operator',
      'admin',
      'quota',
      'set',
      'demo-b',
      '--pending',
      '3',
      '--exports',
      '4',
      '--rate',
      '20',
      '--burst',
      '40',
    );
    expect(quota.limits).toMatchObject({
      maxSnapshots: 1,
      maxPendingSnapshots: 3,
      maxExportsInFlight: 4,
      requestsPerSecond: 20,
      requestBurst: 40,
    });
    const usage = await json('demo-b', 'account', 'usage');
    expect(usage).toMatchObject({
      snapshots: { used: 1, limit: 1 },
      storedBytes: { exports: 0 },
      pendingSnapshots: { used: 0, limit: 3 },
      pendingSnapshotsPerVolume: { limit: 20 },
      copiesInFlight: { used: 0, limit: 20 },
      importsInFlight: { used: 0, limit: 20 },
      exportsInFlight: { used: 0, limit: 4 },
      openUploads: { used: 0, limit: 20 },
      requestRate: { limit: 40, perSeconds: 2, requestsPerSecond: 20 },
    });
    const table = await run('demo-b', 'account', 'usage');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/snapshots being written\s+0\s+3/);
    expect(table.stdout).toMatch(/exports in flight\s+0\s+4/);
    expect(table.stdout).toMatch(/requests in the last 2 s\s+\d+\s+40 \(20\/s\)/);
  });
});

describe('users and keys', () => {
  it('forbids a member without snapshot:delete to delete, and stops a revoked key at once', async () => {
    const user = await json(
      'demo',
      'admin',
      'user',
      'create',
      'alice',
      '--role',
      'member',
      '--permission',
      'snapshot:create',
    );
    expect(user).toMatchObject({ userName: 'alice', role: 'member', permissions: ['snapshot:create'] });
    const key = await json('demo', 'admin', 'key', 'create', '--user', 'alice', '--expires', '1h');
    expect(key.userName).toBe('alice');
    expect(Date.parse(key.expiresAt) - Date.now()).toBeGreaterThan(50 * 60 * 1000);
    const alice = { token: key.token as string };
    const deleted = await refused(alice, 'snapshot', 'delete', snapshotId);
    expect(deleted).toMatchObject({ error: 'auth.forbidden', details: { permission: 'snapshot:delete' } });
    expect(deleted.message).toContain('lacks the permission snapshot:delete');

    const revoked = await json('demo', 'admin', 'key', 'revoke', key.keyId);
    expect(revoked).toMatchObject({ keyId: key.keyId, userName: 'alice' });
    expect(revoked.revokedAt).toBeTruthy();
    expect((await refused(alice, 'snapshot', 'show', snapshotId)).error).toBe('auth.unauthorized');
    // …which the API answers with a 401.
    const endpoint = JSON.parse(readFileSync(configPath, 'utf8')).regions['eu-west-1'].endpoint;
    const response = await fetch(`${endpoint}/v1/account`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: string }).error).toBe('auth.unauthorized');
  });
});

describe('request rate', () => {
  it("answers an account's requests past its rate 429 request.throttled with Retry-After, and no other account's", async () => {
    const created = await json('operator', 'admin', 'account', 'create', 'rate-co');
    // Before its first request: a region reads an account's limits once a minute.
    await json('operator', 'admin', 'quota', 'set', 'rate-co', '--rate', '5', '--burst', '10');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    const endpoint = config.regions['eu-west-1'].endpoint as string;
    const get = (token: string) =>
      fetch(`${endpoint}/v1/account`, { headers: { authorization: `Bearer ${token}` } });
    const answers = await Promise.all(Array.from({ length: 60 }, () => get(created.key.token)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(10);
    const throttled = answers.filter((a) => a.status === 429);
    expect(throttled.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const first = throttled[0] as Response;
    expect(Number(first.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(first.headers.get('retry-after'))).toBeLessThanOrEqual(2);
    expect(await first.json()).toMatchObject({
      error: 'request.throttled',
      details: { limit: 10, windowSeconds: 2 },
    });
    expect((await get(config.accounts.demo.apiKey)).status).toBe(200);
  });
});
