import { describe, expect, it } from 'vitest';
import { accountPorts } from '../../../lib/aws/account-records.ts';
import { identityPorts } from '../../../lib/aws/dynamodb.ts';
import { exportPorts } from '../../../lib/aws/export-records.ts';
import { instancePorts } from '../../../lib/aws/instance-records.ts';
import { remotePorts } from '../../../lib/aws/node.ts';
import { policyPorts } from '../../../lib/aws/policy-records.ts';
import { snapshotPorts } from '../../../lib/aws/snapshots.ts';
import { loadRuntimeConfig } from '../../../lib/config/runtime.ts';
import { buildRoot } from '../../../lib/root.ts';
import { snapshotCopier } from '../../../lib/wiring/copies.ts';
import { exportService } from '../../../lib/wiring/exports.ts';
import { accountService, requestLimiter } from '../../../lib/wiring/identity.ts';
import { imageSnapshotter } from '../../../lib/wiring/image-snapshots.ts';
import { imageService } from '../../../lib/wiring/images.ts';
import { snapshotImporter } from '../../../lib/wiring/imports.ts';
import { instanceService } from '../../../lib/wiring/instances.ts';
import { maintenanceJobs } from '../../../lib/wiring/maintenance.ts';
import { policyService } from '../../../lib/wiring/policies.ts';
import { lazily } from '../../../lib/wiring/region.ts';
import { snapshotService, volumeService } from '../../../lib/wiring/snapshots.ts';
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

  it("builds the root's services over the port sets given, each one service for the container's life", () => {
    const config = loadRuntimeConfig({
      VOLSNAP_REGION: 'eu-west-1',
      VOLSNAP_BUCKET: 'bucket',
      VOLSNAP_TABLE: 'table',
    });
    const root = buildRoot(config, [...snapshotPorts, exportPorts, policyPorts, instancePorts, remotePorts]);
    const factories = [
      accountService,
      requestLimiter,
      volumeService,
      snapshotService,
      imageSnapshotter,
      snapshotCopier,
      exportService,
      snapshotImporter,
      maintenanceJobs,
      policyService,
      instanceService,
      imageService,
    ];
    for (const factory of factories) {
      expect(root.service<unknown>(factory), factory.name).toBeDefined();
      expect(root.service<unknown>(factory), factory.name).toBe(root.service<unknown>(factory));
    }
    expect(root.config.region.name).toBe('eu-west-1');
    expect(root.region.ports.audit).toBe(root.region.ports.audit);
    expect(root.region.ports.objectsIn('bucket')).toBe(root.region.ports.objects);
  });

  it('fails on first use of a port no set provides, naming it; the services over the others still work', () => {
    const config = loadRuntimeConfig({
      VOLSNAP_REGION: 'eu-west-1',
      VOLSNAP_BUCKET: 'bucket',
      VOLSNAP_TABLE: 'table',
    });
    const root = buildRoot(config, [identityPorts, accountPorts]);
    expect(root.service(accountService)).toBeDefined();
    expect(() => root.service(volumeService)).toThrow(/provides no volumes port/);
    expect(() => root.service(snapshotService)).toThrow(
      /provides no (volumes|objects|compressor|queue) port/,
    );
  });
});
