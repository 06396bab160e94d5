import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import { MemoryVolumeRepository } from '../../../../lib/adapters/memory/volumes.ts';
import { collectTag, formatSize, parseSize } from '../../../../lib/cli/units.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { newId } from '../../../../lib/core/shared/ids.ts';
import { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { testCaller } from '../../../support/callers.ts';

const alice: Caller = testCaller();
const bob: Caller = testCaller();
let repo: MemoryVolumeRepository;
let service: VolumeService;

beforeEach(() => {
  repo = new MemoryVolumeRepository();
  service = new VolumeService(repo, new ManualClock(Date.UTC(2026, 2, 3, 4, 5, 6)), 'eu-west-1', {
    regionBucket: 'region-bucket',
    extraBuckets: ['images'],
  });
});

describe('volumes', () => {
  it('are registered with an id, the region, the owner and the time', async () => {
    const volume = await service.register(alice, {
      name: 'db disk',
      sizeBytes: 64 * 2 ** 20,
      tags: { env: 'prod' },
    });
    expect(volume).toMatchObject({
      name: 'db disk',
      sizeBytes: 64 * 2 ** 20,
      tags: { env: 'prod' },
      region: 'eu-west-1',
      accountId: alice.accountId,
      createdAt: '2026-03-03T04:05:06.000Z',
    });
    expect(volume.volumeId).toMatch(/^vol-/);
    expect(await service.get(alice, volume.volumeId)).toEqual(volume);
  });

  it('must have a size that is a positive multiple of 512 KiB; the error says what to use', async () => {
    await expect(service.register(alice, { name: 'x', sizeBytes: BLOCK_SIZE + 1 })).rejects.toMatchObject({
      code: 'volume.invalidSize',
      message: expect.stringContaining(`Round it up to ${2 * BLOCK_SIZE}`),
    });
    for (const sizeBytes of [0, -BLOCK_SIZE, 1.5, Number.MAX_SAFE_INTEGER + 1]) {
      await expect(service.register(alice, { name: 'x', sizeBytes })).rejects.toMatchObject({
        code: 'volume.invalidSize',
      });
    }
  });

  it('refuse bad names, tags and image locations with request.invalid', async () => {
    const ok = { name: 'x', sizeBytes: BLOCK_SIZE };
    await expect(service.register(alice, { ...ok, name: '' })).rejects.toMatchObject({
      code: 'request.invalid',
    });
    await expect(service.register(alice, { ...ok, name: 'a\nb' })).rejects.toMatchObject({
      code: 'request.invalid',
    });
    await expect(service.register(alice, { ...ok, tags: { 'volsnap:policy': 'x' } })).rejects.toThrow(
      /reserved/,
    );
    await expect(
      service.register(alice, {
        ...ok,
        tags: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])),
      }),
    ).rejects.toThrow(/at most 50 tags/);
    await expect(
      service.register(alice, { ...ok, imageUri: 'https://example.com/disk.img' }),
    ).rejects.toThrow(/s3:\/\/bucket\/key/);
    expect(await service.register(alice, { ...ok, imageUri: 's3://images/disk.img' })).toMatchObject({
      imageUri: 's3://images/disk.img',
    });
  });

  it('are invisible to other accounts: show and delete answer volume.notFound, exactly as for a missing id', async () => {
    const volume = await service.register(alice, { name: 'x', sizeBytes: BLOCK_SIZE });
    const foreign = await service.get(bob, volume.volumeId).catch((e) => e);
    const missing = await service.get(bob, newId('volume')).catch((e) => e);
    expect(foreign.code).toBe('volume.notFound');
    expect(missing.code).toBe('volume.notFound');
    await expect(service.delete(bob, volume.volumeId)).rejects.toMatchObject({ code: 'volume.notFound' });
    await expect(service.get(alice, 'vol-../../x')).rejects.toMatchObject({ code: 'volume.notFound' });
    expect((await service.list(bob, {}, { limit: 10 })).items).toEqual([]);
  });

  it('cannot be deleted while they have snapshots: 409 naming them', async () => {
    const volume = await service.register(alice, { name: 'x', sizeBytes: BLOCK_SIZE });
    repo.snapshotsOf.set(volume.volumeId, new Set(['snap-1', 'snap-2']));
    await expect(service.delete(alice, volume.volumeId)).rejects.toMatchObject({
      code: 'volume.hasSnapshots',
      status: 409,
      details: { snapshotIds: ['snap-1', 'snap-2'] },
    });
    repo.snapshotsOf.delete(volume.volumeId);
    await service.delete(alice, volume.volumeId);
    await expect(service.get(alice, volume.volumeId)).rejects.toMatchObject({ code: 'volume.notFound' });
  });
});

describe('CLI units', () => {
  it('parse sizes in bytes, binary and decimal units', () => {
    expect(parseSize('1048576')).toBe(2 ** 20);
    expect(parseSize('64MiB')).toBe(64 * 2 ** 20);
    expect(parseSize('64M')).toBe(64 * 2 ** 20);
    expect(parseSize('1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(parseSize('10GB')).toBe(10e9);
    expect(() => parseSize('ten')).toThrow(/not a size/);
    expect(() => parseSize('1.3B')).toThrow(/whole number/);
  });
  it('format sizes for people', () => {
    expect(formatSize(64 * 2 ** 20)).toBe('64 MiB');
    expect(formatSize(1536 * 2 ** 20)).toBe('1.5 GiB');
    expect(formatSize(100)).toBe('100 B');
  });
  it('collect repeated tags', () => {
    expect(collectTag('b=2=3', collectTag('a=1'))).toEqual({ a: '1', b: '2=3' });
    expect(() => collectTag('novalue')).toThrow(/key=value/);
  });
});
