import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { type Image, NETWORK_NOTE } from '../../../../lib/core/instances/images.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { testCaller } from '../../../support/callers.ts';
import { type MemoryRegion, memoryCloud } from '../../../support/memory-region.ts';
import { writeSnapshot } from '../../../support/writes.ts';

/** One region of the cloud, by the names the tests use. */
function regionParts(r: MemoryRegion) {
  return {
    memory: r,
    name: r.name,
    objects: r.ports.objects,
    queue: r.ports.queue,
    volumeRepo: r.ports.volumes,
    snapshotRepo: r.ports.snapshots,
    imageRepo: r.ports.images,
    instanceRepo: r.ports.instances,
    volumes: r.volumes,
    snapshots: r.snapshots,
    instances: r.instances,
    exports: r.exports,
    images: r.images,
    copier: r.copier,
  };
}
type Region = ReturnType<typeof regionParts>;

let r1: Region;
let r2: Region;
let owner: Caller;
let grantee: Caller;
let stranger: Caller;

beforeEach(async () => {
  const cloud = memoryCloud(['eu-west-1', 'us-east-1'], { bucket: 'bucket' });
  const home = cloud.region('eu-west-1');
  [owner, grantee, stranger] = await Promise.all([
    home.account('owner-co'),
    home.account('grantee-co'),
    home.account('stranger-co'),
  ]);
  r1 = regionParts(home);
  r2 = regionParts(cloud.region('us-east-1'));
});

function disk(blocks: number): Buffer {
  const data = Buffer.alloc(blocks * BLOCK_SIZE);
  for (let i = 1; i < blocks; i += 2) randomBytes(BLOCK_SIZE).copy(data, i * BLOCK_SIZE);
  return data;
}

/** What `image create --file` does for one queued snapshot, in memory: take it, write it, complete it. */
async function write(r: Region, caller: Caller, snapshotId: string, data: Buffer) {
  const started = await r.snapshots.start(caller, snapshotId);
  return (await writeSnapshot(r.memory, caller, started, data.subarray(0, started.volumeSize))).snapshot;
}

/** An instance of `caller` with two volumes on a host (4 and 8 blocks), its files' bytes. */
async function twoDiskInstance(r: Region, caller: Caller, state: 'running' | 'stopped' = 'stopped') {
  const boot = await r.volumes.register(caller, { name: 'boot', sizeBytes: 4 * BLOCK_SIZE });
  const data = await r.volumes.register(caller, { name: 'data', sizeBytes: 8 * BLOCK_SIZE });
  const instance = await r.instances.register(caller, {
    name: 'web',
    volumes: [
      { volumeId: data.volumeId, device: '/dev/vdb', bootIndex: 1 },
      { volumeId: boot.volumeId, device: '/dev/vda', bootIndex: 0 },
    ],
    properties: { min_disk: '4', min_ram: '2048', base_image_ref: 'ubuntu-24.04', licence_type: 'LINUX' },
    state,
  });
  return {
    instance,
    boot,
    data,
    bytes: new Map([
      [boot.volumeId, disk(4)],
      [data.volumeId, disk(8)],
    ]),
  };
}

/** A completed image of a fresh two-volume instance. */
async function completedImage(r: Region, caller: Caller) {
  const made = await twoDiskInstance(r, caller);
  const image = await r.images.create(caller, { instanceId: made.instance.instanceId, name: 'golden' });
  for (const s of image.snapshots) await write(r, caller, s.snapshotId, made.bytes.get(s.volumeId) as Buffer);
  return { ...made, image: await r.images.get(caller, image.imageId) };
}

describe('image create', () => {
  it('snapshots every volume at one moment: one group id, one takenAt, the image id on each, queued for the host', async () => {
    const { instance, boot, data } = await twoDiskInstance(r1, owner, 'running');
    const image = await r1.images.create(owner, { instanceId: instance.instanceId, name: 'before upgrade' });
    expect(image).toMatchObject({
      state: 'pending',
      crashConsistent: true,
      instance: {
        instanceId: instance.instanceId,
        name: 'web',
        state: 'running',
        properties: instance.properties,
      },
    });
    expect(image.instance.volumes).toEqual(instance.volumes);
    // In boot order, with device, boot index and size.
    expect(image.snapshots.map((s) => [s.device, s.bootIndex, s.volumeId, s.sizeBytes, s.state])).toEqual([
      ['/dev/vda', 0, boot.volumeId, 4 * BLOCK_SIZE, 'queued'],
      ['/dev/vdb', 1, data.volumeId, 8 * BLOCK_SIZE, 'queued'],
    ]);
    const records = await Promise.all(image.snapshots.map((s) => r1.snapshotRepo.get(s.snapshotId)));
    expect(new Set(records.map((s) => s?.groupId))).toEqual(new Set([image.groupId]));
    expect(new Set(records.map((s) => s?.takenAt))).toEqual(new Set([image.takenAt]));
    expect(records.every((s) => s?.imageId === image.imageId)).toBe(true);
    expect(image.groupId).toMatch(/^grp-/);
    expect(image.imageId).toMatch(/^img-/);
  });

  it('leaves image-backed volumes to workers (pending, announced on the queue), host volumes queued', async () => {
    const key = `${ObjectLayout.imagePrefix(owner.accountId)}root.img`;
    const backed = await r1.volumes.register(owner, {
      name: 'root',
      sizeBytes: 4 * BLOCK_SIZE,
      imageUri: `s3://bucket/${key}`,
    });
    const host = await r1.volumes.register(owner, { name: 'scratch', sizeBytes: 4 * BLOCK_SIZE });
    const instance = await r1.instances.register(owner, {
      name: 'mixed',
      volumes: [
        { volumeId: backed.volumeId, device: '/dev/vda' },
        { volumeId: host.volumeId, device: '/dev/vdb' },
      ],
    });
    const image = await r1.images.create(owner, { instanceId: instance.instanceId, name: 'mixed' });
    expect(image.snapshots.map((s) => s.state)).toEqual(['pending', 'queued']);
    expect(r1.queue.messages).toContainEqual({
      kind: 'snapshot.fromImage',
      snapshotId: image.snapshots[0]?.snapshotId,
    });
  });

  it('refuses a running instance with --require-stopped (409 instance.running); a stopped one is not crash-consistent', async () => {
    const { instance } = await twoDiskInstance(r1, owner, 'running');
    await expect(
      r1.images.create(owner, { instanceId: instance.instanceId, name: 'x', requireStopped: true }),
    ).rejects.toMatchObject({ code: 'instance.running', status: 409 });
    expect((await r1.images.list(owner, { limit: 10 })).items).toEqual([]);
    expect((await r1.snapshotRepo.list(owner.accountId, {}, { limit: 10 })).items).toEqual([]);
    await r1.instances.update(owner, instance.instanceId, { state: 'stopped' });
    const image = await r1.images.create(owner, {
      instanceId: instance.instanceId,
      name: 'x',
      requireStopped: true,
    });
    expect(image.crashConsistent).toBe(false);
  });
});

describe('image state, derived from its snapshots', () => {
  it('is completed only once every snapshot is, and stays so in the table', async () => {
    const { instance, bytes } = await twoDiskInstance(r1, owner);
    const image = await r1.images.create(owner, { instanceId: instance.instanceId, name: 'golden' });
    const [first, second] = image.snapshots;
    await write(r1, owner, first?.snapshotId ?? '', bytes.get(first?.volumeId ?? '') as Buffer);
    const half = await r1.images.get(owner, image.imageId);
    expect(half.state).toBe('pending');
    expect(half.progress).toBe(50);
    expect((await r1.imageRepo.get(image.imageId))?.state).toBe('pending');
    await write(r1, owner, second?.snapshotId ?? '', bytes.get(second?.volumeId ?? '') as Buffer);
    const done = await r1.images.get(owner, image.imageId);
    expect(done).toMatchObject({ state: 'completed', progress: 100 });
    expect(done.snapshots.every((s) => s.state === 'completed')).toBe(true);
    expect((await r1.imageRepo.get(image.imageId))?.state).toBe('completed');
  });

  it('is error, naming the volume, when one snapshot fails; never completed, even once the others are', async () => {
    const { instance, data, bytes } = await twoDiskInstance(r1, owner);
    const image = await r1.images.create(owner, { instanceId: instance.instanceId, name: 'golden' });
    const failing = image.snapshots.find((s) => s.volumeId === data.volumeId);
    const other = image.snapshots.find((s) => s.volumeId !== data.volumeId);
    await r1.snapshots.fail(owner, failing?.snapshotId ?? '', '/dev/nope: no such file');
    const failed = await r1.images.get(owner, image.imageId);
    expect(failed.state).toBe('error');
    expect(failed.stateReason).toContain(data.volumeId);
    expect(failed.stateReason).toContain('/dev/vdb');
    expect(failed.stateReason).toContain('no such file');
    await write(r1, owner, other?.snapshotId ?? '', bytes.get(other?.volumeId ?? '') as Buffer);
    const later = await r1.images.get(owner, image.imageId);
    expect(later.state).toBe('error');
    expect((await r1.imageRepo.get(image.imageId))?.state).toBe('error');
    expect((await r1.images.list(owner, { limit: 10 })).items.map((i) => i.state)).toEqual(['error']);
    await expect(r1.images.launch(owner, image.imageId, { name: 'x' })).rejects.toMatchObject({
      code: 'image.invalidState',
    });
  });

  it('breaks (error) when a snapshot of a completed image is deleted behind its back', async () => {
    const { image } = await completedImage(r1, owner);
    expect(image.state).toBe('completed');
    const victim = image.snapshots[1];
    await r1.snapshots.delete(owner, victim?.snapshotId ?? '');
    const broken = await r1.images.get(owner, image.imageId);
    expect(broken.state).toBe('error');
    expect(broken.stateReason).toContain(victim?.volumeId);
  });
});

describe('image delete', () => {
  it('deletes its snapshots, keeps those shared or held by another image, and says which and why', async () => {
    const { image } = await completedImage(r1, owner);
    const [sharedOne, plainOne] = image.snapshots;
    // One of its snapshots is also shared on its own, and image sharing is revoked with the image.
    await r1.snapshots.share(owner, sharedOne?.snapshotId ?? '', 'stranger-co');
    await r1.images.share(owner, image.imageId, 'grantee-co');
    const report = await r1.images.delete(owner, image.imageId);
    expect(report.kept.map((k) => [k.snapshotId, k.reasons])).toEqual([
      [sharedOne?.snapshotId, [`it is shared with ${stranger.accountId}`]],
    ]);
    expect([...report.deleted, ...report.recycled].map((s) => s.snapshotId)).toEqual([plainOne?.snapshotId]);
    await expect(r1.images.get(owner, image.imageId)).rejects.toMatchObject({ code: 'image.notFound' });
    // The grantee's access through the image went with it.
    expect((await r1.snapshotRepo.get(sharedOne?.snapshotId ?? ''))?.sharedWith).toEqual([
      stranger.accountId,
    ]);
    await expect(r1.snapshots.get(grantee, sharedOne?.snapshotId ?? '')).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
  });

  it('keeps a snapshot another image holds', async () => {
    const { image } = await completedImage(r1, owner);
    const held = image.snapshots[0];
    const { state: _s, progress: _p, stateReason: _r, ...ref } = held ?? ({} as Image['snapshots'][number]);
    const other: Image = { ...image, imageId: 'img-0000000000000000', snapshots: [ref], state: 'completed' };
    delete other.progress;
    await r1.imageRepo.create(other);
    const report = await r1.images.delete(owner, image.imageId);
    expect(report.kept).toEqual([
      expect.objectContaining({
        snapshotId: held?.snapshotId,
        reasons: ['image img-0000000000000000 also holds it'],
      }),
    ]);
    expect((await r1.snapshotRepo.get(held?.snapshotId ?? ''))?.state).toBe('completed');
  });
});

describe('who sees what', () => {
  it("answers another account's image and instance exactly like missing ones (404)", async () => {
    const { image, instance } = await completedImage(r1, owner);
    for (const call of [
      () => r1.images.get(stranger, image.imageId),
      () => r1.images.launch(stranger, image.imageId, { name: 'x' }),
      () => r1.images.delete(stranger, image.imageId),
      () => r1.images.share(stranger, image.imageId, 'grantee-co'),
      () => r1.images.export(stranger, image.imageId, 'vsnap'),
      () => r2.images.copy(stranger, { sourceRegion: r1.name, sourceImageId: image.imageId }),
    ])
      await expect(call()).rejects.toMatchObject({ code: 'image.notFound', status: 404 });
    await expect(r1.images.get(stranger, 'img-0000000000000000')).rejects.toMatchObject({
      code: 'image.notFound',
    });
    await expect(r1.instances.get(stranger, instance.instanceId)).rejects.toMatchObject({
      code: 'instance.notFound',
    });
    await expect(
      r1.images.create(stranger, { instanceId: instance.instanceId, name: 'theirs' }),
    ).rejects.toMatchObject({ code: 'instance.notFound' });
    expect((await r1.images.list(stranger, { limit: 10 })).items).toEqual([]);
  });

  it('lets a grantee read and launch a shared image (not change it), until it is unshared', async () => {
    const { image } = await completedImage(r1, owner);
    await r1.images.share(owner, image.imageId, 'grantee-co');
    const seen = await r1.images.get(grantee, image.imageId);
    expect(seen.state).toBe('completed');
    expect(seen.sharedWith).toBeUndefined();
    expect((await r1.images.list(grantee, { limit: 10 }, 'shared')).items.map((i) => i.imageId)).toEqual([
      image.imageId,
    ]);
    await expect(r1.images.delete(grantee, image.imageId)).rejects.toMatchObject({ code: 'auth.forbidden' });
    await expect(r1.images.share(grantee, image.imageId, 'stranger-co')).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    const launched = await r1.images.launch(grantee, image.imageId, { name: 'theirs' });
    expect(launched.instance.accountId).toBe(grantee.accountId);
    await r1.images.unshare(owner, image.imageId, 'grantee-co');
    await expect(r1.images.get(grantee, image.imageId)).rejects.toMatchObject({ code: 'image.notFound' });
    await expect(r1.snapshots.get(grantee, image.snapshots[0]?.snapshotId ?? '')).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
  });

  it('asks for the permissions: snapshot:create to take, volume:create to launch, instance:manage for instances', async () => {
    const { image, instance } = await completedImage(r1, owner);
    const member = (permissions: Caller['permissions']) =>
      testCaller({ accountId: owner.accountId, role: 'member', permissions });
    await expect(
      r1.images.create(member([]), { instanceId: instance.instanceId, name: 'x' }),
    ).rejects.toMatchObject({ code: 'auth.forbidden' });
    await expect(
      r1.images.launch(member(['snapshot:create']), image.imageId, { name: 'x' }),
    ).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    await expect(
      r1.images.launch(member(['volume:create']), image.imageId, { name: 'x' }),
    ).resolves.toBeDefined();
    await expect(
      r1.instances.update(member([]), instance.instanceId, { state: 'running' }),
    ).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    await expect(
      r1.instances.update(member(['instance:manage']), instance.instanceId, { state: 'running' }),
    ).resolves.toMatchObject({ state: 'running' });
    await expect(r1.images.delete(member(['snapshot:create']), image.imageId)).rejects.toMatchObject({
      code: 'auth.forbidden',
    });
    // Deleting a shared image takes its grants back: that needs snapshot:delete, not snapshot:share.
    await r1.images.share(owner, image.imageId, 'grantee-co');
    const report = await r1.images.delete(member(['snapshot:delete']), image.imageId);
    expect(report.kept).toEqual([]);
    expect(report.recycled).toHaveLength(2);
  });
});

describe('launch', () => {
  it('makes one volume per snapshot (its size, from it), same devices, boot order and properties; says network identity is not copied', async () => {
    const { image, instance } = await completedImage(r1, owner);
    const launch = await r1.images.launch(owner, image.imageId, { name: 'web-2' });
    expect(launch.instance).toMatchObject({
      name: 'web-2',
      state: 'stopped',
      properties: instance.properties,
      accountId: owner.accountId,
    });
    expect(launch.instance.instanceId).not.toBe(instance.instanceId);
    expect(launch.instance.volumes.map((v) => [v.device, v.bootIndex])).toEqual(
      instance.volumes.map((v) => [v.device, v.bootIndex]),
    );
    for (const [i, v] of launch.volumes.entries()) {
      const ref = image.snapshots[i];
      const volume = await r1.volumes.get(owner, v.volumeId);
      expect(volume.sourceSnapshotId).toBe(ref?.snapshotId);
      expect(volume.sizeBytes).toBe(ref?.sizeBytes);
      expect(volume.sizeBytes).toBeGreaterThanOrEqual(
        (await r1.snapshotRepo.get(v.sourceSnapshotId))?.volumeSize ?? 0,
      );
      expect(v.device).toBe(ref?.device);
      expect(volume.volumeId).not.toBe(ref?.volumeId);
    }
    expect(launch.notes).toEqual([NETWORK_NOTE]);
    expect(NETWORK_NOTE).toMatch(/addresses, MAC addresses.*host name/);
    // The launched instance's volumes are its own: they can be imaged in turn.
    expect(await r1.instanceRepo.attachedTo(launch.volumes[0]?.volumeId ?? '')).toBe(
      launch.instance.instanceId,
    );
  });
});

describe('copy and export', () => {
  it(`copies an image to another region: each snapshot copied, completed once every copy is`, async () => {
    const { image } = await completedImage(r1, owner);
    const copy = await r2.images.copy(owner, { sourceRegion: r1.name, sourceImageId: image.imageId });
    expect(copy).toMatchObject({
      state: 'pending',
      region: r2.name,
      takenAt: image.takenAt,
      copiedFrom: { region: r1.name, imageId: image.imageId, accountId: owner.accountId },
    });
    expect(copy.snapshots.map((s) => s.device)).toEqual(['/dev/vda', '/dev/vdb']);
    const parts = r2.queue.messages.filter((m) => m.kind === 'snapshot.copyPart');
    expect(parts).toHaveLength(2);
    const [first, second] = parts as { snapshotId: string; part: number }[];
    await r2.copier.runPart(first?.snapshotId ?? '', first?.part ?? 0);
    expect((await r2.images.get(owner, copy.imageId)).state).toBe('pending');
    await r2.copier.runPart(second?.snapshotId ?? '', second?.part ?? 0);
    const done = await r2.images.get(owner, copy.imageId);
    expect(done.state).toBe('completed');
    const records = await Promise.all(done.snapshots.map((s) => r2.snapshotRepo.get(s.snapshotId)));
    expect(records.every((s) => s?.imageId === copy.imageId && s.groupId === copy.groupId)).toBe(true);
    const launch = await r2.images.launch(owner, copy.imageId, { name: 'elsewhere' });
    expect(launch.volumes.map((v) => v.sizeBytes)).toEqual([4 * BLOCK_SIZE, 8 * BLOCK_SIZE]);
  });

  it('exports every snapshot of a completed image, and refuses a pending one', async () => {
    const { image } = await completedImage(r1, owner);
    const result = await r1.images.export(owner, image.imageId, 'raw');
    expect(result.exports.map((e) => [e.snapshotId, e.device])).toEqual(
      image.snapshots.map((s) => [s.snapshotId, s.device]),
    );
    expect(result.exports.every((e) => e.exportId.startsWith('exp-'))).toBe(true);
    const { instance } = await twoDiskInstance(r1, owner);
    const pending = await r1.images.create(owner, { instanceId: instance.instanceId, name: 'p' });
    await expect(r1.images.export(owner, pending.imageId, 'raw')).rejects.toMatchObject({
      code: 'image.invalidState',
    });
  });
});

describe('instances', () => {
  it('attach a volume to one instance at a time, only the account’s own, each device once', async () => {
    const { instance, boot } = await twoDiskInstance(r1, owner);
    const spare = await r1.volumes.register(owner, { name: 'spare', sizeBytes: BLOCK_SIZE });
    const other = await r1.instances.register(owner, { name: 'db' });
    await expect(
      r1.instances.attach(owner, other.instanceId, { volumeId: boot.volumeId, device: '/dev/vda' }),
    ).rejects.toMatchObject({
      code: 'instance.volumeAttached',
      details: { instanceId: instance.instanceId },
    });
    await expect(
      r1.instances.attach(owner, instance.instanceId, { volumeId: spare.volumeId, device: '/dev/vda' }),
    ).rejects.toMatchObject({ code: 'request.invalid' });
    const theirs = await r1.volumes.register(stranger, { name: 'theirs', sizeBytes: BLOCK_SIZE });
    await expect(
      r1.instances.attach(owner, instance.instanceId, { volumeId: theirs.volumeId, device: '/dev/vdc' }),
    ).rejects.toMatchObject({ code: 'volume.notFound' });
    const attached = await r1.instances.attach(owner, instance.instanceId, {
      volumeId: spare.volumeId,
      device: '/dev/vdc',
    });
    expect(attached.volumes.map((v) => [v.device, v.bootIndex])).toEqual([
      ['/dev/vda', 0],
      ['/dev/vdb', 1],
      ['/dev/vdc', 2],
    ]);
    // Attaching again as the same device changes nothing.
    expect(
      await r1.instances.attach(owner, instance.instanceId, { volumeId: spare.volumeId, device: '/dev/vdc' }),
    ).toEqual(attached);
    await r1.instances.detach(owner, instance.instanceId, boot.volumeId);
    const moved = await r1.instances.attach(owner, other.instanceId, {
      volumeId: boot.volumeId,
      device: '/dev/vda',
    });
    expect(moved.volumes.map((v) => v.volumeId)).toEqual([boot.volumeId]);
    await r1.instances.delete(owner, other.instanceId);
    expect(await r1.instanceRepo.attachedTo(boot.volumeId)).toBeUndefined();
    await expect(r1.instances.get(owner, other.instanceId)).rejects.toMatchObject({
      code: 'instance.notFound',
    });
  });

  it('refuse bad devices, properties and states with 400s that say what is allowed', async () => {
    const volume = await r1.volumes.register(owner, { name: 'v', sizeBytes: BLOCK_SIZE });
    for (const input of [
      { name: 'x', volumes: [{ volumeId: volume.volumeId, device: 'vda' }] },
      { name: 'x', volumes: [{ volumeId: volume.volumeId, device: '/dev/../etc' }] },
      { name: 'x', properties: { 'bad key': 'v' } },
      { name: 'x', state: 'paused' as 'running' },
      { name: '' },
    ])
      await expect(r1.instances.register(owner, input)).rejects.toMatchObject({ code: 'request.invalid' });
  });
});
