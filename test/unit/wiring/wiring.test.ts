import { describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../../lib/config/runtime.ts';
import { buildRuntime } from '../../../lib/root.ts';
import { accountService } from '../../../lib/wiring/identity.ts';
import { lazily } from '../../../lib/wiring/region.ts';
import { snapshotService } from '../../../lib/wiring/snapshots.ts';
import { memoryCloud, memoryRegion } from '../../support/memory-region.ts';

describe("the wiring of a region's services", () => {
  it('makes a service on first use only, then hands out the same one', () => {
    const { region } = memoryRegion();
    let made = 0;
    const counted = (r: typeof region) => {
      made++;
      return r.get(snapshotService);
    };
    expect(made).toBe(0);
    const first = region.get(counted);
    expect(region.get(counted)).toBe(first);
    expect(made).toBe(1);
    expect(first).toBe(region.get(snapshotService));
  });

  it("makes a port's adapter on first read only (how the root defers its SDK clients)", () => {
    const made: string[] = [];
    const ports = lazily<{ a: string; b: string }>({
      a: () => {
        made.push('a');
        return 'A';
      },
      b: () => {
        made.push('b');
        return 'B';
      },
    });
    expect(made).toEqual([]);
    expect([ports.a, ports.a]).toEqual(['A', 'A']);
    expect(made).toEqual(['a']);
  });

  it('gives two regions of one cloud their own stores and one identity: a key issued in one works in the other', async () => {
    const cloud = memoryCloud(['eu-west-1', 'us-east-1']);
    const eu = cloud.region('eu-west-1');
    const us = cloud.region('us-east-1');
    const operator = await eu.account('operator', { operator: true });
    const { key } = await eu.accounts.createAccount(operator, { name: 'alice-co' });
    const alice = await us.authenticate(`Bearer ${key.token}`);
    expect(alice).toMatchObject({ accountId: key.accountId, userName: 'owner' });
    if (!alice) throw new Error('unreachable');
    const volume = await us.volumes.register(alice, { name: 'disk', sizeBytes: 512 * 1024 });
    expect(await us.ports.volumes.get(alice.accountId, volume.volumeId)).toBeDefined();
    expect(await eu.ports.volumes.get(alice.accountId, volume.volumeId)).toBeUndefined();
    expect(eu.region.region('us-east-1')).toBe(us.region);
    expect(eu.region.get(accountService)).not.toBe(us.region.get(accountService));
  });

  it('answers region.unknown for a region the deployment does not know', () => {
    const { region } = memoryRegion('eu-west-1');
    expect(() => region.region('mars-1')).toThrow(expect.objectContaining({ code: 'region.unknown' }));
  });

  it("builds the root's runtime with today's getters, each one service for the container's life", () => {
    const runtime = buildRuntime(
      loadRuntimeConfig({ VOLSNAP_REGION: 'eu-west-1', VOLSNAP_BUCKET: 'bucket', VOLSNAP_TABLE: 'table' }),
    );
    const names = [
      'accounts',
      'limiter',
      'audit',
      'volumes',
      'snapshots',
      'imageSnapshotter',
      'copier',
      'exports',
      'importer',
      'jobs',
      'policies',
      'instances',
      'images',
    ] as const;
    for (const name of names) expect(runtime[name], name).toBe(runtime[name]);
    expect(runtime.config.region.name).toBe('eu-west-1');
    expect(runtime.aws).toBe(runtime.awsFor('eu-west-1'));
  });
});
