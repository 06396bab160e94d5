import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliFor } from '../support/e2e-cli.ts';
import { type StartedCloud, startCloudProcess } from '../support/processes.ts';

/**
 * Issue #9's acceptance through the CLI against the two-region local cloud: instances with volumes
 * on files, images of them (one snapshot per volume, one moment), launches restored to files, a
 * failed volume failing the image, sharing, copying to another region, exports and deletion.
 */

const BLOCK = 512 * 1024;
const [R1, R2] = ['eu-west-1', 'us-east-1'];
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-images-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-images-files-'));
const configPath = join(dataDir, 'config.json');
let cloud: StartedCloud;
const { run, json } = cliFor(configPath);

/** A disk image of `blocks` blocks: every third one zero, the rest random. */
function disk(blocks: number): Buffer {
  const bytes = randomBytes(blocks * BLOCK);
  for (let i = 0; i < blocks; i += 3) bytes.fill(0, i * BLOCK, (i + 1) * BLOCK);
  return bytes;
}

/** Two volumes on files here, attached to a new instance as /dev/vda and /dev/vdb. */
async function instanceWithTwoDisks(name: string, state: 'running' | 'stopped') {
  const bytes = { vda: disk(8), vdb: disk(16) };
  const files = { vda: join(work, `${name}-vda.img`), vdb: join(work, `${name}-vdb.img`) };
  writeFileSync(files.vda, bytes.vda);
  writeFileSync(files.vdb, bytes.vdb);
  const vda = (await json('demo', R1, 'volume', 'create', '--name', `${name}-root`, '--size', '4MiB'))
    .volumeId;
  const vdb = (await json('demo', R1, 'volume', 'create', '--name', `${name}-data`, '--size', '8MiB'))
    .volumeId;
  const instance = await json(
    'demo',
    R1,
    'instance',
    'register',
    '--name',
    name,
    '--volume',
    `${vda}=/dev/vda`,
    '--volume',
    `${vdb}=/dev/vdb`,
    '--property',
    'min_disk=12',
    '--property',
    'base_image_ref=ubuntu-24.04',
    ...(state === 'stopped' ? ['--stopped'] : []),
  );
  return { instance, volumes: { vda, vdb }, files, bytes };
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
});
afterAll(async () => {
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

describe('images of instances, through the CLI', () => {
  let golden: string;
  let original: { vda: Buffer; vdb: Buffer };

  it('images an instance with two volumes on files, then launches it: both restored volumes equal their sources at the image’s moment', async () => {
    const { instance, volumes, files, bytes } = await instanceWithTwoDisks('web', 'stopped');
    original = bytes;
    expect(instance.volumes).toEqual([
      { volumeId: volumes.vda, device: '/dev/vda', bootIndex: 0 },
      { volumeId: volumes.vdb, device: '/dev/vdb', bootIndex: 1 },
    ]);
    const created = await json(
      'demo',
      R1,
      'image',
      'create',
      '--instance',
      instance.instanceId,
      '--name',
      'golden',
      '--file',
      `${volumes.vda}=${files.vda}`,
      '--file',
      `${volumes.vdb}=${files.vdb}`,
    );
    const image = created;
    golden = image.imageId;
    expect(image).toMatchObject({
      state: 'completed',
      crashConsistent: false,
      instance: {
        instanceId: instance.instanceId,
        name: 'web',
        properties: { min_disk: '12', base_image_ref: 'ubuntu-24.04' },
      },
    });
    expect(created.report.notes).toEqual([]);
    expect(created.report.written.map((w: { outcome: string }) => w.outcome)).toEqual([
      'completed',
      'completed',
    ]);
    expect(
      image.snapshots.map((s: Record<string, unknown>) => [s.device, s.bootIndex, s.volumeId, s.sizeBytes]),
    ).toEqual([
      ['/dev/vda', 0, volumes.vda, 4 * 1024 * 1024],
      ['/dev/vdb', 1, volumes.vdb, 8 * 1024 * 1024],
    ]);
    // Every snapshot of the image: one group, one point in time, the image's id.
    for (const ref of image.snapshots) {
      const snapshot = await json('demo', R1, 'snapshot', 'show', ref.snapshotId);
      expect(snapshot).toMatchObject({
        state: 'completed',
        imageId: image.imageId,
        groupId: image.groupId,
        takenAt: image.takenAt,
      });
    }
    // The sources move on after the image was taken.
    const later = { vda: Buffer.from(bytes.vda), vdb: Buffer.from(bytes.vdb) };
    randomBytes(BLOCK).copy(later.vda, 1 * BLOCK);
    randomBytes(2 * BLOCK).copy(later.vdb, 4 * BLOCK);
    writeFileSync(files.vda, later.vda);
    writeFileSync(files.vdb, later.vdb);

    const to = join(work, 'launched');
    const launch = await json('demo', R1, 'image', 'launch', image.imageId, '--name', 'web-2', '--to', to);
    expect(launch).toMatchObject({
      name: 'web-2',
      state: 'stopped',
      properties: { min_disk: '12', base_image_ref: 'ubuntu-24.04' },
    });
    expect(launch.volumes.map((v: Record<string, unknown>) => [v.device, v.bootIndex])).toEqual([
      ['/dev/vda', 0],
      ['/dev/vdb', 1],
    ]);
    expect(launch.report.notes.join(' ')).toMatch(/Network identity is not copied.*addresses, MAC addresses/);
    for (const v of launch.report.volumes) {
      const volume = await json('demo', R1, 'volume', 'show', v.volumeId);
      const ref = image.snapshots.find((s: { device: string }) => s.device === v.device);
      expect(volume).toMatchObject({ sourceSnapshotId: ref.snapshotId, sizeBytes: ref.sizeBytes });
    }
    expect(launch.report.restored.map((r: { file: string }) => r.file)).toEqual([
      join(to, 'vda.img'),
      join(to, 'vdb.img'),
    ]);
    expect(readFileSync(join(to, 'vda.img')).equals(bytes.vda)).toBe(true);
    expect(readFileSync(join(to, 'vdb.img')).equals(bytes.vdb)).toBe(true);
    expect(readFileSync(join(to, 'vda.img')).equals(later.vda)).toBe(false);
    const shown = await json('demo', R1, 'instance', 'show', launch.instanceId);
    expect(shown.volumes.map((v: { volumeId: string }) => v.volumeId)).toEqual(
      launch.report.volumes.map((v: { volumeId: string }) => v.volumeId),
    );
  });

  it("ends an image in error, naming the volume, when one volume's snapshot fails; no completed image is left", async () => {
    const { instance, volumes, files } = await instanceWithTwoDisks('db', 'running');
    const refused = await run(
      'demo',
      R1,
      'image',
      'create',
      '--instance',
      instance.instanceId,
      '--name',
      'x',
      '--require-stopped',
    );
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('instance.running');
    const missing = join(work, 'no-such-disk.img');
    const result = await run(
      'demo',
      R1,
      '--json',
      'image',
      'create',
      '--instance',
      instance.instanceId,
      '--name',
      'db nightly',
      '--file',
      `${volumes.vda}=${files.vda}`,
      '--file',
      `${volumes.vdb}=${missing}`,
    );
    expect(result.code).toBe(1);
    const image = JSON.parse(result.stdout);
    const { notes, written } = image.report;
    expect(notes.join(' ')).toMatch(/crash-consistent.*Stop the instance, or at least sync/);
    expect(written.map((w: { outcome: string }) => w.outcome)).toEqual(['completed', 'failed']);
    expect(image.state).toBe('error');
    expect(image.stateReason).toContain(volumes.vdb);
    expect(image.stateReason).toContain('/dev/vdb');
    expect(image.stateReason).toContain(missing);
    const failed = image.snapshots.find((s: { volumeId: string }) => s.volumeId === volumes.vdb);
    expect(failed.state).toBe('error');
    const shown = await json('demo', R1, 'image', 'show', image.imageId);
    expect(shown.state).toBe('error');
    const listed = await json('demo', R1, 'image', 'list');
    expect(
      listed.filter((i: { name: string }) => i.name === 'db nightly').map((i: { state: string }) => i.state),
    ).toEqual(['error']);
    const launch = await run('demo', R1, 'image', 'launch', image.imageId, '--name', 'no');
    expect(launch.code).toBe(4);
    expect(launch.stderr).toContain('image.invalidState');
  });

  it('shares an image: the other account shows and launches it, a third gets 404, and unsharing takes it back', async () => {
    await json('demo', R1, 'image', 'share', golden, 'demo-b');
    const seen = await json('demo-b', R1, 'image', 'show', golden);
    expect(seen.state).toBe('completed');
    expect(seen.sharedWith).toBeUndefined();
    expect(
      (await json('demo-b', R1, 'image', 'list', '--shared')).map((i: { imageId: string }) => i.imageId),
    ).toEqual([golden]);
    const to = join(work, 'theirs');
    const launch = await json('demo-b', R1, 'image', 'launch', golden, '--name', 'theirs', '--to', to);
    const b = (await json('demo-b', R1, 'account', 'show')).account.accountId;
    expect(launch.accountId).toBe(b);
    expect(readFileSync(join(to, 'vda.img')).equals(original.vda)).toBe(true);
    expect(readFileSync(join(to, 'vdb.img')).equals(original.vdb)).toBe(true);
    const hidden = await run('operator', R1, 'image', 'show', golden);
    expect(hidden.code).toBe(3);
    expect(hidden.stderr).toContain('image.notFound');
    const forbidden = await run('demo-b', R1, 'image', 'delete', golden);
    expect(forbidden.stderr).toContain('auth.forbidden');
    await json('demo', R1, 'image', 'unshare', golden, 'demo-b');
    expect((await run('demo-b', R1, 'image', 'show', golden)).stderr).toContain('image.notFound');
  });

  it(`copies an image to ${R2}: every snapshot copied, completed, and its volumes restore there byte for byte`, async () => {
    const image = await json('demo', R2, 'image', 'copy', golden, '--source-region', R1);
    expect(image).toMatchObject({
      state: 'completed',
      region: R2,
      copiedFrom: { region: R1, imageId: golden },
    });
    expect(image.imageId).not.toBe(golden);
    expect(image.snapshots.map((s: { device: string; state: string }) => [s.device, s.state])).toEqual([
      ['/dev/vda', 'completed'],
      ['/dev/vdb', 'completed'],
    ]);
    const to = join(work, 'copied');
    await json('demo', R2, 'image', 'launch', image.imageId, '--name', 'web-east', '--to', to);
    expect(readFileSync(join(to, 'vda.img')).equals(original.vda)).toBe(true);
    expect(readFileSync(join(to, 'vdb.img')).equals(original.vdb)).toBe(true);
  });

  it('exports every snapshot of an image, and deletes an image keeping the snapshot shared on its own', async () => {
    const exported = await json('demo', R1, 'image', 'export', golden, '--format', 'raw');
    expect(exported.exports.map((e: { device: string; state: string }) => [e.device, e.state])).toEqual([
      ['/dev/vda', 'completed'],
      ['/dev/vdb', 'completed'],
    ]);
    expect(exported.exports.every((e: { exportId: string }) => e.exportId.startsWith('exp-'))).toBe(true);
    const image = await json('demo', R1, 'image', 'show', golden);
    const [vda, vdb] = image.snapshots;
    await json('demo', R1, 'snapshot', 'share', vda.snapshotId, 'demo-b');
    const report = await json('demo', R1, 'image', 'delete', golden);
    const b = (await json('demo-b', R1, 'account', 'show')).account.accountId;
    expect(report).toMatchObject({ imageId: golden, deleted: true });
    expect(report.report.kept).toEqual([
      expect.objectContaining({ snapshotId: vda.snapshotId, reasons: [`it is shared with ${b}`] }),
    ]);
    expect(report.report.recycled.map((s: { snapshotId: string }) => s.snapshotId)).toEqual([vdb.snapshotId]);
    expect((await run('demo', R1, 'image', 'show', golden)).stderr).toContain('image.notFound');
    expect((await json('demo', R1, 'snapshot', 'show', vda.snapshotId)).state).toBe('completed');
  });
});
