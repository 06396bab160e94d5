import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ManualClock } from '../../../../lib/adapters/clock.ts';
import type { MemoryExportRepository } from '../../../../lib/adapters/memory/exports.ts';
import type { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import type { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import type { MemorySnapshotRepository } from '../../../../lib/adapters/memory/snapshots.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { decodeManifest } from '../../../../lib/core/format/manifest.ts';
import { readSegmentBlock } from '../../../../lib/core/format/segment.ts';
import type { AccountService } from '../../../../lib/core/identity/accounts.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import {
  DEFAULT_GC_GRACE_MS,
  Maintenance,
  MaintenanceJobs,
  type MaintenanceOptions,
  workOf,
} from '../../../../lib/core/maintenance/maintenance.ts';
import { ObjectLayout, type ObjectStore, type StoredObject } from '../../../../lib/core/ports/objects.ts';
import type { WorkMessage } from '../../../../lib/core/ports/queue.ts';
import { type Clock, isoTime } from '../../../../lib/core/shared/clock.ts';
import type { Page } from '../../../../lib/core/shared/pagination.ts';
import {
  DEFAULT_MAX_DISPATCHES,
  type SnapshotService,
} from '../../../../lib/core/snapshots/snapshot-service.ts';
import type {
  MaintainedState,
  Snapshot,
  SnapshotRepository,
} from '../../../../lib/core/snapshots/snapshots.ts';
import type { ExportService } from '../../../../lib/core/tasks/exports.ts';
import type { ImageSnapshotter } from '../../../../lib/core/tasks/image-snapshot.ts';
import { partKey } from '../../../../lib/core/tasks/parts.ts';
import type { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { maintenanceOptions } from '../../../../lib/wiring/maintenance.ts';
import { injectObjectFaults } from '../../../support/faulty-objects.ts';
import { type MemoryRegion, memoryRegion } from '../../../support/memory-region.ts';
import { writeSnapshot } from '../../../support/writes.ts';

const zstd = createZstdCompressor();
const BLOCKS = 16;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const LEASE = 20 * MINUTE;
const UPLOAD_TIMEOUT = 6 * HOUR;
const BUCKET = 'region-bucket';

let region: MemoryRegion;
let clock: ManualClock;
let objects: MemoryObjectStore;
let queue: MemoryWorkQueue;
let snapshotRepo: MemorySnapshotRepository;
let service: SnapshotService;
let volumes: VolumeService;
let accounts: AccountService;
let exportRepo: MemoryExportRepository;
let exportService: ExportService;
let worker: ImageSnapshotter;
let alice: Caller;
let bob: Caller;
let operator: Caller;

beforeEach(async () => {
  region = memoryRegion('r1', {
    bucket: BUCKET,
    settings: {
      tuning: {
        snapshots: { uploadTimeoutMs: UPLOAD_TIMEOUT, leaseMs: LEASE },
        exports: { partSize: 5 * 1024 * 1024, leaseMs: LEASE },
        imageSnapshots: { partBytes: 4 * BLOCK_SIZE },
        maintenance: { leaseMs: LEASE },
      },
    },
  });
  ({
    clock,
    accounts,
    volumes,
    snapshots: service,
    exports: exportService,
    imageSnapshotter: worker,
  } = region);
  ({ objects, queue, snapshots: snapshotRepo, exports: exportRepo } = region.ports);
  alice = await region.account('alice');
  bob = await region.account('bob');
  operator = await region.account('operator', { operator: true });
});

/** The region's maintenance as the wiring builds it, with `options` in place of its parts. */
function maintenance(options: Partial<MaintenanceOptions> = {}): Maintenance {
  return new Maintenance({ ...maintenanceOptions(region.region), ...options });
}

/** Alice's completed snapshot and a pending child written against it (4 blocks changed), no recycle bin. */
async function pendingChildOfCompletedParent(): Promise<{
  parent: Snapshot;
  child: Snapshot;
  second: Buffer;
}> {
  await noRecycleBin(alice);
  const volume = await hostVolume(alice);
  const first = image();
  const parent = await takeSnapshot(alice, volume.volumeId, first);
  const second = changed(first, 4, 4);
  const child = await takeSnapshot(alice, volume.volumeId, second, { complete: false });
  return { parent, child, second };
}

function image(blocks = BLOCKS): Buffer {
  return randomBytes(blocks * BLOCK_SIZE);
}

/** `data` with blocks [first, first + count) replaced by new random bytes. */
function changed(data: Buffer, first: number, count: number): Buffer {
  const out = Buffer.from(data);
  randomBytes(count * BLOCK_SIZE).copy(out, first * BLOCK_SIZE);
  return out;
}

/** What the CLI does, in memory: writes the blocks through the service's URLs, uploads the manifest, completes. */
async function takeSnapshot(
  caller: Caller,
  volumeId: string,
  data: Buffer,
  options: { complete?: boolean; queued?: boolean } = {},
): Promise<Snapshot> {
  let snapshot = await service.create(caller, { volumeId, name: 'test', queued: options.queued });
  if (snapshot.state === 'queued') snapshot = await service.start(caller, snapshot.snapshotId);
  return writeBlocks(caller, snapshot, data, options.complete ?? true);
}

async function writeBlocks(caller: Caller, snapshot: Snapshot, data: Buffer, complete: boolean) {
  return (
    await writeSnapshot(region, caller, snapshot, data, { segmentTargetSize: 4 * BLOCK_SIZE, complete })
  ).snapshot;
}

/** The volume's bytes, read from the snapshot's manifest and segments (throws if a segment is gone). */
async function restore(accountId: string, snapshotId: string): Promise<Buffer> {
  const bytes = await objects.get(ObjectLayout.manifest(snapshotId));
  if (!bytes) throw new Error(`no manifest for ${snapshotId}`);
  const manifest = decodeManifest(bytes);
  const out = Buffer.alloc(manifest.volumeSize);
  for (const e of manifest.entries) {
    const stored = await objects.getRange(
      ObjectLayout.segment(accountId, e.segmentId),
      e.offset,
      e.offset + e.storedLength,
    );
    Buffer.from(readSegmentBlock(zstd, { ...e, plainLength: BLOCK_SIZE }, stored)).copy(
      out,
      e.blockIndex * BLOCK_SIZE,
    );
  }
  return out;
}

/** The segment keys a completed snapshot's manifest names. */
async function segmentsOf(accountId: string, snapshotId: string): Promise<Set<string>> {
  const bytes = await objects.get(ObjectLayout.manifest(snapshotId));
  if (!bytes) throw new Error(`no manifest for ${snapshotId}`);
  return new Set([...decodeManifest(bytes).segments.keys()].map((id) => ObjectLayout.segment(accountId, id)));
}

async function sessionKeys(accountId: string, snapshotId: string): Promise<Set<string>> {
  return new Set(
    [...(await snapshotRepo.sessionSegments(snapshotId))].map((id) => ObjectLayout.segment(accountId, id)),
  );
}

function storedKeys(prefix: string): string[] {
  return [...objects.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
}

function sizeOf(keys: Iterable<string>): number {
  let total = 0;
  for (const key of keys) total += objects.objects.get(key)?.length ?? Number.NaN;
  return total;
}

const minus = (a: Set<string>, b: Set<string>) => new Set([...a].filter((x) => !b.has(x)));

/** `target` with some methods replaced (the others bound to it: memory adapters have private fields). */
function intercept<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(inner, property) {
      if (property in overrides) return overrides[property as keyof T];
      const value = Reflect.get(inner, property);
      return typeof value === 'function' ? value.bind(inner) : value;
    },
  });
}

async function noRecycleBin(caller: Caller): Promise<void> {
  await accounts.updateSettings(caller, { recycleBinDays: 0 });
}

async function hostVolume(caller: Caller, name = 'disk') {
  return volumes.register(caller, { name, sizeBytes: BLOCKS * BLOCK_SIZE });
}

async function imageVolume(caller: Caller, blocks: number) {
  const key = `${ObjectLayout.imagePrefix(caller.accountId)}disk-${blocks}.img`;
  await objects.put(key, image(blocks));
  return volumes.register(caller, {
    name: 'img',
    sizeBytes: blocks * BLOCK_SIZE,
    imageUri: `s3://${BUCKET}/${key}`,
  });
}

/** Two snapshots of a volume, the second written against the first with blocks 4–7 changed. */
async function olderAndNewer(caller: Caller) {
  const volume = await hostVolume(caller);
  const first = image();
  const older = await takeSnapshot(caller, volume.volumeId, first);
  const second = changed(first, 4, 4);
  const newer = await takeSnapshot(caller, volume.volumeId, second);
  expect(newer.parentSnapshotId).toBe(older.snapshotId);
  const olderSegments = await segmentsOf(caller.accountId, older.snapshotId);
  const newerSegments = await segmentsOf(caller.accountId, newer.snapshotId);
  const onlyOlder = minus(olderSegments, newerSegments);
  // The test means something only if the snapshots share some segments and not others.
  expect(onlyOlder.size).toBeGreaterThan(0);
  expect(olderSegments.size - onlyOlder.size).toBeGreaterThan(0);
  return { volume, older, newer, first, second, olderSegments, newerSegments, onlyOlder };
}

describe('what maintenance reads', () => {
  it('reads only listings of snapshots in a state and of exports, never every snapshot of the region', async () => {
    const { older } = await olderAndNewer(alice);
    await service.delete(alice, older.snapshotId);
    const refuse = async (): Promise<never> => {
      throw new Error('listed every snapshot of the region');
    };
    const states: string[] = [];
    const snapshots = intercept<SnapshotRepository>(snapshotRepo, {
      listAll: refuse,
      listInState: (
        state: MaintainedState,
        page: { limit: number; nextToken?: string },
        dueBefore?: string,
      ) => {
        states.push(dueBefore === undefined ? state : `${state}<`);
        return snapshotRepo.listInState(state, page, dueBefore);
      },
    });
    clock.advance(8 * DAY);
    const jobs = maintenance({ snapshots });
    expect((await jobs.expire()).snapshotsPurged).toEqual([older.snapshotId]);
    await jobs.reap();
    expect((await jobs.gc({ graceMs: 0 })).segmentsDeleted).toBeGreaterThan(0);
    // Expiry and the reaper read what is due (before a time); GC every live manifest and what is being written.
    expect(states).toEqual([
      'recycled<',
      'queued<',
      'pending<',
      'deleting<',
      'completed',
      'recycled',
      'pending',
      'queued',
      'completed',
      'recycled',
    ]);
  });
});

describe('garbage collection', () => {
  it('deletes exactly the segments only a deleted snapshot referenced, and reclaims their bytes; the newer snapshot stays whole', async () => {
    await noRecycleBin(alice);
    const { older, newer, second, olderSegments, newerSegments, onlyOlder } = await olderAndNewer(alice);
    const reclaimable = sizeOf(onlyOlder);
    expect(await service.delete(alice, older.snapshotId)).toBeUndefined();
    clock.advance(1);
    const report = await maintenance().gc({ graceMs: 0 });
    const all = new Set([...olderSegments, ...newerSegments]);
    expect(report).toEqual({
      segmentsListed: all.size,
      segmentsConsidered: all.size,
      segmentsLive: newerSegments.size,
      segmentsDeleted: onlyOlder.size,
      bytesReclaimed: reclaimable,
      objectsDeleted: 0,
      accountsSkipped: [],
      graceMs: 0,
    });
    expect(storedKeys('segments/')).toEqual([...newerSegments].sort());
    expect((await restore(alice.accountId, newer.snapshotId)).equals(second)).toBe(true);
    // A second run finds nothing more to do.
    expect(await maintenance().gc({ graceMs: 0 })).toMatchObject({ segmentsDeleted: 0, bytesReclaimed: 0 });
  });

  it("keeps a recycled snapshot's segments until expiry purges it after purgeAt, then collects them", async () => {
    const { older, newer, first, second, olderSegments, onlyOlder } = await olderAndNewer(alice);
    const recycled = await service.delete(alice, older.snapshotId);
    expect(recycled).toMatchObject({ state: 'recycled', purgeAt: isoTime(clock.now() + 7 * DAY) });
    clock.advance(1);
    expect(await maintenance().gc({ graceMs: 0 })).toMatchObject({ segmentsDeleted: 0, bytesReclaimed: 0 });
    for (const key of olderSegments) expect(objects.objects.has(key), key).toBe(true);
    // Its blocks are all still there: undeleted, it would restore whole.
    expect((await restore(alice.accountId, older.snapshotId)).equals(first)).toBe(true);
    clock.advance(7 * DAY - 1);
    expect(await maintenance().expire()).toEqual({ exportsDeleted: [], snapshotsPurged: [] });
    expect((await snapshotRepo.get(older.snapshotId))?.state).toBe('recycled');
    clock.advance(1);
    expect(await maintenance().expire()).toEqual({ exportsDeleted: [], snapshotsPurged: [older.snapshotId] });
    expect(await snapshotRepo.get(older.snapshotId)).toBeUndefined();
    expect(await objects.get(ObjectLayout.manifest(older.snapshotId))).toBeUndefined();
    const reclaimable = sizeOf(onlyOlder);
    const report = await maintenance().gc({ graceMs: 0 });
    expect(report).toMatchObject({ segmentsDeleted: onlyOlder.size, bytesReclaimed: reclaimable });
    for (const key of onlyOlder) expect(objects.objects.has(key), key).toBe(false);
    expect((await restore(alice.accountId, newer.snapshotId)).equals(second)).toBe(true);
  });

  it("leaves a pending snapshot's uploaded segments and manifest alone; completed afterwards, it is whole", async () => {
    const volume = await hostVolume(alice);
    const data = image();
    const pending = await takeSnapshot(alice, volume.volumeId, data, { complete: false });
    const session = await sessionKeys(alice.accountId, pending.snapshotId);
    expect(session.size).toBeGreaterThan(0);
    clock.advance(1);
    const report = await maintenance().gc({ graceMs: 0 });
    expect(report).toMatchObject({
      segmentsConsidered: session.size,
      segmentsLive: session.size,
      segmentsDeleted: 0,
      objectsDeleted: 0,
    });
    expect(await objects.head(ObjectLayout.manifestUpload(pending.snapshotId))).toBeDefined();
    const completed = await service.complete(alice, pending.snapshotId);
    expect(completed.state).toBe('completed');
    expect((await restore(alice.accountId, pending.snapshotId)).equals(data)).toBe(true);
  });

  it('collects the segments (tombstones since it failed) of a snapshot that failed, but not those of a queued one', async () => {
    const volume = await hostVolume(alice);
    const failed = await takeSnapshot(alice, volume.volumeId, image(), { complete: false });
    await service.fail(alice, failed.snapshotId, 'disk unreadable');
    const session = await sessionKeys(alice.accountId, failed.snapshotId);
    // Failing retired the upload at once: its data is gone, its keys hold empty tombstones.
    for (const key of session) expect(objects.objects.get(key)?.length, key).toBe(0);
    expect(await objects.head(ObjectLayout.manifestUpload(failed.snapshotId))).toBeUndefined();
    const queued = await service.create(alice, { volumeId: volume.volumeId, queued: true });
    expect(queued.state).toBe('queued');
    clock.advance(1);
    const report = await maintenance().gc({ graceMs: 0 });
    expect(report).toMatchObject({ segmentsDeleted: session.size, bytesReclaimed: 0 });
    expect(storedKeys('segments/')).toEqual([]);
    expect(await objects.head(ObjectLayout.manifestUpload(failed.snapshotId))).toBeUndefined();
    expect((await snapshotRepo.get(queued.snapshotId))?.state).toBe('queued');
  });

  it('does not even consider segments younger than the grace period', async () => {
    await noRecycleBin(alice);
    const volume = await hostVolume(alice);
    const early = await takeSnapshot(alice, volume.volumeId, image());
    const earlySegments = await segmentsOf(alice.accountId, early.snapshotId);
    await service.delete(alice, early.snapshotId);
    clock.advance(2 * HOUR);
    const other = await hostVolume(alice, 'other');
    const late = await takeSnapshot(alice, other.volumeId, image());
    const lateSegments = await segmentsOf(alice.accountId, late.snapshotId);
    await service.delete(alice, late.snapshotId);
    clock.advance(1);
    // By default (24 h), nothing here is old enough.
    expect(await maintenance().gc()).toMatchObject({
      graceMs: DEFAULT_GC_GRACE_MS,
      segmentsListed: earlySegments.size + lateSegments.size,
      segmentsConsidered: 0,
      segmentsDeleted: 0,
    });
    const report = await maintenance().gc({ graceMs: HOUR });
    expect(report).toMatchObject({
      graceMs: HOUR,
      segmentsListed: earlySegments.size + lateSegments.size,
      segmentsConsidered: earlySegments.size,
      segmentsDeleted: earlySegments.size,
      bytesReclaimed: expect.any(Number),
    });
    expect(storedKeys('segments/')).toEqual([...lateSegments].sort());
    // The deployment's own grace applies when the run gives none.
    expect(await maintenance({ gcGraceMs: 0 }).gc()).toMatchObject({
      graceMs: 0,
      segmentsDeleted: lateSegments.size,
    });
  });

  it('keeps the blocks of a snapshot created and completed while it lists the segments', async () => {
    await noRecycleBin(alice);
    const { volume, older, newer, second, newerSegments, onlyOlder } = await olderAndNewer(alice);
    await service.delete(alice, older.snapshotId);
    const third = changed(second, 8, 4);
    let concurrent: Snapshot | undefined;
    let before = 0;
    // The listing has started when the snapshot is made; its pages are read after (as S3 pages are).
    const racing = intercept<ObjectStore>(objects, {
      async *list(prefix: string): AsyncIterable<StoredObject> {
        if (prefix === 'segments/' && !concurrent) {
          before = storedKeys('segments/').length;
          concurrent = await takeSnapshot(alice, volume.volumeId, third);
        }
        yield* objects.list(prefix);
      },
    });
    // The functions' clock runs a minute ahead of the store's: with no grace, the new snapshot's
    // segments look old enough to be considered, so only the order of listing and marking saves them.
    const ahead: Clock = { now: () => clock.now() + MINUTE };
    const report = await maintenance({ objects: racing, clock: ahead }).gc({ graceMs: 0 });
    const made = concurrent as Snapshot;
    expect(made.state).toBe('completed');
    expect(made.parentSnapshotId).toBe(newer.snapshotId);
    const madeSegments = await segmentsOf(alice.accountId, made.snapshotId);
    const fresh = minus(madeSegments, newerSegments);
    expect(fresh.size).toBeGreaterThan(0);
    expect(report.segmentsConsidered).toBe(before + fresh.size);
    expect(report.segmentsDeleted).toBe(onlyOlder.size);
    expect((await restore(alice.accountId, made.snapshotId)).equals(third)).toBe(true);
    expect((await restore(alice.accountId, newer.snapshotId)).equals(second)).toBe(true);
  });

  it('keeps the blocks a snapshot completed during the marking inherits from a parent deleted meanwhile', async () => {
    await noRecycleBin(alice);
    const volume = await hostVolume(alice);
    const first = image();
    const parent = await takeSnapshot(alice, volume.volumeId, first);
    const second = changed(first, 4, 4);
    let child: Snapshot | undefined;
    // After gc has read the snapshot listing (without the child), the child is written against the
    // parent and completed, then the parent is deleted: its manifest is gone when gc comes to it.
    const racing = intercept<SnapshotRepository>(snapshotRepo, {
      async listInState(
        state: MaintainedState,
        page: { limit: number; nextToken?: string },
        dueBefore?: string,
      ): Promise<Page<Snapshot>> {
        const listed = await snapshotRepo.listInState(state, page, dueBefore);
        if (!child) {
          child = await takeSnapshot(alice, volume.volumeId, second);
          await service.delete(alice, parent.snapshotId);
        }
        return listed;
      },
    });
    clock.advance(1);
    await maintenance({ snapshots: racing }).gc({ graceMs: 0 });
    const made = child as Snapshot;
    expect(made.parentSnapshotId).toBe(parent.snapshotId);
    expect(await snapshotRepo.get(parent.snapshotId)).toBeUndefined();
    expect((await restore(alice.accountId, made.snapshotId)).equals(second)).toBe(true);
  });

  it('keeps the blocks a snapshot pending in the listing inherits, when it completes and its parent is deleted during the marking', async () => {
    const { parent, child, second } = await pendingChildOfCompletedParent();
    expect(child.parentSnapshotId).toBe(parent.snapshotId);
    let raced = false;
    // gc reads the pending child's session; then the child completes and its parent is deleted,
    // before gc comes to the parent's manifest.
    const racing = intercept<SnapshotRepository>(snapshotRepo, {
      async sessionSegments(snapshotId: string): Promise<Set<string>> {
        const session = await snapshotRepo.sessionSegments(snapshotId);
        if (snapshotId === child.snapshotId && !raced) {
          raced = true;
          await service.complete(alice, child.snapshotId);
          await service.delete(alice, parent.snapshotId);
        }
        return session;
      },
    });
    clock.advance(1);
    await maintenance({ snapshots: racing }).gc({ graceMs: 0 });
    expect(raced).toBe(true);
    expect((await snapshotRepo.get(child.snapshotId))?.state).toBe('completed');
    expect(await snapshotRepo.get(parent.snapshotId)).toBeUndefined();
    expect((await restore(alice.accountId, child.snapshotId)).equals(second)).toBe(true);
  });

  it('keeps the blocks a snapshot inherits when the index lags its completion and its parent’s deletion', async () => {
    const { parent, child, second } = await pendingChildOfCompletedParent();
    let raced = false;
    // The state index lags the table (DynamoDB's global secondary indexes are eventually
    // consistent). Just before gc lists anything, the child completes and its parent is deleted;
    // gc's listings still show the child as it was, pending, and never as completed.
    const lagging = intercept<SnapshotRepository>(snapshotRepo, {
      async listInState(
        state: MaintainedState,
        page: { limit: number; nextToken?: string },
        dueBefore?: string,
      ): Promise<Page<Snapshot>> {
        if (!raced) {
          raced = true;
          await service.complete(alice, child.snapshotId);
          await service.delete(alice, parent.snapshotId);
        }
        const listed = await snapshotRepo.listInState(state, page, dueBefore);
        const others = listed.items.filter((s) => s.snapshotId !== child.snapshotId);
        return { ...listed, items: state === 'pending' ? [...others, child] : others };
      },
    });
    clock.advance(1);
    const report = await maintenance({ snapshots: lagging }).gc({ graceMs: 0 });
    expect(raced).toBe(true);
    expect((await snapshotRepo.get(child.snapshotId))?.state).toBe('completed');
    expect(await snapshotRepo.get(parent.snapshotId)).toBeUndefined();
    // Every segment the child names is kept (only the parent's segments it does not inherit go).
    const named = [
      ...decodeManifest(
        (await objects.get(ObjectLayout.manifest(child.snapshotId))) as Buffer,
      ).segments.keys(),
    ];
    for (const segmentId of named)
      expect(objects.objects.has(ObjectLayout.segment(alice.accountId, segmentId)), segmentId).toBe(true);
    expect(report.segmentsLive).toBe(named.length);
    expect((await restore(alice.accountId, child.snapshotId)).equals(second)).toBe(true);
  });

  it('skips an account whose live snapshot has lost its manifest, deleting nothing of it', async () => {
    await noRecycleBin(alice);
    await noRecycleBin(bob);
    const aliceVolume = await hostVolume(alice);
    const broken = await takeSnapshot(alice, aliceVolume.volumeId, image());
    const gone = await takeSnapshot(alice, (await hostVolume(alice, 'gone')).volumeId, image());
    await service.delete(alice, gone.snapshotId);
    await objects.delete(ObjectLayout.manifest(broken.snapshotId));
    const bobsGone = await takeSnapshot(bob, (await hostVolume(bob)).volumeId, image());
    const bobsSegments = await segmentsOf(bob.accountId, bobsGone.snapshotId);
    await service.delete(bob, bobsGone.snapshotId);
    const alicesBefore = storedKeys(ObjectLayout.segmentPrefix(alice.accountId));
    clock.advance(1);
    const report = await maintenance().gc({ graceMs: 0 });
    expect(report.accountsSkipped).toEqual([alice.accountId]);
    expect(report.segmentsDeleted).toBe(bobsSegments.size);
    expect(storedKeys(ObjectLayout.segmentPrefix(alice.accountId))).toEqual(alicesBefore);
    expect(storedKeys(ObjectLayout.segmentPrefix(bob.accountId))).toEqual([]);
  });

  it('deletes manifests and part manifests of snapshots that no longer exist', async () => {
    const orphanManifest = ObjectLayout.manifest('snap-0000000000000000');
    const orphanPart = partKey('snap-0000000000000001', 0);
    await objects.put(orphanManifest, Buffer.from('x'));
    await objects.put(orphanPart, Buffer.from('x'));
    const volume = await hostVolume(alice);
    const kept = await takeSnapshot(alice, volume.volumeId, image());
    clock.advance(1);
    expect(await maintenance().gc({ graceMs: 0 })).toMatchObject({ objectsDeleted: 2, segmentsDeleted: 0 });
    expect(storedKeys('manifests/')).toEqual([ObjectLayout.manifest(kept.snapshotId)]);
    expect(storedKeys('uploads/')).toEqual([]);
  });
});

describe('the reaper', () => {
  it('fails a pending snapshot past its deadline, naming it, and deletes what it uploaded', async () => {
    const volume = await hostVolume(alice);
    const late = await takeSnapshot(alice, volume.volumeId, image(), { complete: false });
    const session = await sessionKeys(alice.accountId, late.snapshotId);
    expect(session.size).toBeGreaterThan(0);
    clock.advance(HOUR);
    const other = await hostVolume(alice, 'other');
    const inTime = await takeSnapshot(alice, other.volumeId, image(), { complete: false });
    clock.advance(UPLOAD_TIMEOUT - HOUR);
    expect((await maintenance().reap()).snapshotsFailed).toEqual([]);
    clock.advance(1);
    const report = await maintenance().reap();
    expect(report.snapshotsFailed).toEqual([late.snapshotId]);
    const failed = await snapshotRepo.get(late.snapshotId);
    expect(failed?.state).toBe('error');
    expect(failed?.stateReason).toContain(`deadline (${late.deadline})`);
    // Tombstones: an upload URL still alive finds its key taken (412), and the data is gone.
    for (const key of session) expect(objects.objects.get(key)?.length, key).toBe(0);
    expect(await objects.head(ObjectLayout.manifestUpload(late.snapshotId))).toBeUndefined();
    // The other one has time left: untouched.
    expect((await snapshotRepo.get(inTime.snapshotId))?.state).toBe('pending');
    expect(await objects.head(ObjectLayout.manifestUpload(inTime.snapshotId))).toBeDefined();
    for (const key of await sessionKeys(alice.accountId, inTime.snapshotId))
      expect(objects.objects.has(key), key).toBe(true);
  });

  it('fails a queued snapshot no agent took in time, telling to run `volsnap agent`', async () => {
    const volume = await hostVolume(alice);
    const queued = await service.create(alice, { volumeId: volume.volumeId, queued: true });
    expect(queued.deadline).toBe(isoTime(clock.now() + HOUR));
    clock.advance(HOUR / 2);
    const younger = await service.create(alice, { volumeId: volume.volumeId, queued: true });
    clock.advance(HOUR / 2);
    expect((await maintenance().reap()).queuedExpired).toEqual([]);
    clock.advance(1);
    const report = await maintenance().reap();
    expect(report).toMatchObject({ queuedExpired: [queued.snapshotId], snapshotsFailed: [] });
    const failed = await snapshotRepo.get(queued.snapshotId);
    expect(failed?.state).toBe('error');
    expect(failed?.stateReason).toContain(`volsnap agent --volume ${volume.volumeId}=`);
    expect(failed?.stateReason).toContain(queued.deadline);
    expect((await snapshotRepo.get(younger.snapshotId))?.state).toBe('queued');
    // An agent coming late finds it gone.
    await expect(service.start(alice, queued.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.invalidState',
    });
  });

  it('sends the work of a server-side snapshot again when its lease lapses, and fails it after maxDispatches lapses without progress', async () => {
    const volume = await imageVolume(alice, 4);
    const snapshot = await service.create(alice, { volumeId: volume.volumeId });
    expect(snapshot).toMatchObject({ state: 'pending', leaseUntil: isoTime(clock.now() + LEASE) });
    const work: WorkMessage = { kind: 'snapshot.fromImage', snapshotId: snapshot.snapshotId };
    expect(queue.messages.splice(0)).toEqual([work]);
    clock.advance(LEASE);
    expect((await maintenance().reap()).redispatched).toEqual([]);
    for (let lapse = 1; lapse <= DEFAULT_MAX_DISPATCHES; lapse++) {
      clock.advance(1);
      const report = await maintenance().reap();
      expect(report.redispatched).toEqual([snapshot.snapshotId]);
      expect(queue.messages.splice(0)).toEqual([work]);
      expect(await snapshotRepo.get(snapshot.snapshotId)).toMatchObject({
        state: 'pending',
        dispatches: lapse,
        leaseParts: 0,
        leaseUntil: isoTime(clock.now() + LEASE),
      });
      // Within the renewed lease, nothing is sent.
      expect((await maintenance().reap()).redispatched).toEqual([]);
      clock.advance(LEASE);
    }
    clock.advance(1);
    const report = await maintenance().reap();
    expect(report).toMatchObject({ redispatched: [], snapshotsFailed: [snapshot.snapshotId] });
    expect(queue.messages).toEqual([]);
    const failed = await snapshotRepo.get(snapshot.snapshotId);
    expect(failed?.state).toBe('error');
    expect(failed?.stateReason).toMatch(/no progress after it was dispatched 5 more times/);
  });

  it('sends just the unfinished parts when no worker touched the work for a lease, counting lapses only without progress', async () => {
    const data = image(12);
    const key = `${ObjectLayout.imagePrefix(alice.accountId)}parts.img`;
    await objects.put(key, data);
    const volume = await volumes.register(alice, {
      name: 'img',
      sizeBytes: data.length,
      imageUri: `s3://${BUCKET}/${key}`,
    });
    const snapshot = await service.create(alice, { volumeId: volume.volumeId });
    expect(await worker.run(snapshot.snapshotId)).toBe('split');
    queue.messages.splice(0);
    clock.advance(LEASE - 1);
    // A worker starting and finishing a part extends the lease: the reaper leaves the work alone.
    expect(await worker.runPart(snapshot.snapshotId, 0)).toBe('part');
    expect((await snapshotRepo.get(snapshot.snapshotId))?.leaseUntil).toBe(isoTime(clock.now() + LEASE));
    clock.advance(LEASE);
    expect(await maintenance().reap()).toMatchObject({ redispatched: [], snapshotsFailed: [] });
    // Then the workers of parts 1 and 2 die (their messages are dropped): a lease later, they are sent again.
    clock.advance(1);
    expect((await maintenance().reap()).redispatched).toEqual([snapshot.snapshotId]);
    const parts = [1, 2].map((part) => ({
      kind: 'snapshot.fromImagePart',
      snapshotId: snapshot.snapshotId,
      part,
    }));
    expect(queue.messages.splice(0)).toEqual(parts);
    expect(await snapshotRepo.get(snapshot.snapshotId)).toMatchObject({
      leaseParts: 1,
      dispatches: 0,
      leaseUntil: isoTime(clock.now() + LEASE),
    });
    clock.advance(LEASE + 1);
    expect((await maintenance().reap()).redispatched).toEqual([snapshot.snapshotId]);
    expect(queue.messages).toEqual(parts);
    expect((await snapshotRepo.get(snapshot.snapshotId))?.dispatches).toBe(1);
    const outcomes: string[] = [];
    for (const m of queue.messages.splice(0))
      if (m.kind === 'snapshot.fromImagePart') outcomes.push(await worker.runPart(m.snapshotId, m.part));
    expect(outcomes).toEqual(['part', 'completed']);
    expect((await restore(alice.accountId, snapshot.snapshotId)).equals(data)).toBe(true);
    clock.advance(LEASE + 1);
    expect(await maintenance().reap()).toMatchObject({ redispatched: [], snapshotsFailed: [] });
  });

  it('fails server-side work out of attempts as its kind fails it: no segment, part or staged manifest left', async () => {
    const data = image(12);
    const key = `${ObjectLayout.imagePrefix(alice.accountId)}doomed.img`;
    await objects.put(key, data);
    const volume = await volumes.register(alice, {
      name: 'img',
      sizeBytes: data.length,
      imageUri: `s3://${BUCKET}/${key}`,
    });
    const snapshot = await service.create(alice, { volumeId: volume.volumeId });
    expect(await worker.run(snapshot.snapshotId)).toBe('split');
    expect(await worker.runPart(snapshot.snapshotId, 0)).toBe('part');
    const written = await snapshotRepo.sessionSegments(snapshot.snapshotId);
    expect(written.size).toBeGreaterThan(0);
    expect(await objects.get(partKey(snapshot.snapshotId, 0))).toBeDefined();
    // Parts 1 and 2 kill their worker every time: the reaper sends them again, then gives up.
    for (let lapse = 0; lapse <= DEFAULT_MAX_DISPATCHES; lapse++) {
      clock.advance(LEASE + 1);
      await maintenance().reap();
    }
    clock.advance(LEASE + 1);
    const report = await maintenance().reap();
    expect(report.snapshotsFailed).toEqual([snapshot.snapshotId]);
    expect((await snapshotRepo.get(snapshot.snapshotId))?.state).toBe('error');
    for (const segmentId of written)
      expect(await objects.get(ObjectLayout.segment(alice.accountId, segmentId))).toBeUndefined();
    expect(await objects.get(partKey(snapshot.snapshotId, 0))).toBeUndefined();
    expect(await objects.get(ObjectLayout.manifestUpload(snapshot.snapshotId))).toBeUndefined();
  });

  it('dispatches once when two reapers overlap', async () => {
    const volume = await imageVolume(alice, 4);
    const snapshot = await service.create(alice, { volumeId: volume.volumeId });
    queue.messages.splice(0);
    clock.advance(LEASE + 1);
    const [a, b] = await Promise.all([maintenance().reap(), maintenance().reap()]);
    expect([...a.redispatched, ...b.redispatched]).toEqual([snapshot.snapshotId]);
    expect(queue.messages).toEqual([{ kind: 'snapshot.fromImage', snapshotId: snapshot.snapshotId }]);
    expect((await snapshotRepo.get(snapshot.snapshotId))?.dispatches).toBe(1);
    // The same Maintenance run twice at once behaves alike.
    clock.advance(LEASE + 1);
    const shared = maintenance();
    const [c, d] = await Promise.all([shared.reap(), shared.reap()]);
    expect([...c.redispatched, ...d.redispatched]).toEqual([snapshot.snapshotId]);
    expect(queue.messages).toHaveLength(2);
  });

  it('fails a pending export past its deadline, aborting its upload and releasing its snapshot', async () => {
    const volume = await hostVolume(alice);
    const snapshot = await takeSnapshot(alice, volume.volumeId, image());
    const started = await exportService.start(alice, snapshot.snapshotId, 'raw');
    queue.messages.splice(0);
    expect(objects.uploads.size).toBe(1);
    expect((await snapshotRepo.get(snapshot.snapshotId))?.holds).toHaveProperty(started.exportId);
    clock.advance(6 * HOUR);
    expect((await maintenance().reap()).exportsFailed).toEqual([]);
    clock.advance(1);
    const report = await maintenance().reap();
    expect(report.exportsFailed).toEqual([started.exportId]);
    const failed = await exportRepo.get(started.exportId);
    expect(failed?.state).toBe('error');
    expect(failed?.stateReason).toContain(`deadline (${started.deadline})`);
    expect(objects.uploads.size).toBe(0);
    expect((await snapshotRepo.get(snapshot.snapshotId))?.holds).toBeUndefined();
    expect(report.uploadsAborted).toBe(0);
  });

  it('recovers an export whose worker died mid-part, or after recording the last part but before joining them', async () => {
    const volume = await hostVolume(alice);
    const data = image();
    const snapshot = await takeSnapshot(alice, volume.volumeId, data);
    const runExport = async () => {
      const outcomes: string[] = [];
      for (const m of queue.messages.splice(0))
        if (m.kind === 'export.part') outcomes.push(await exportService.runPart(m.exportId, m.part));
      return outcomes;
    };
    // Mid-part: part 1's message is dropped (its worker died); part 0 is done.
    const midPart = await exportService.start(alice, snapshot.snapshotId, 'raw');
    expect(midPart.parts).toBe(2);
    expect(midPart.leaseUntil).toBe(isoTime(clock.now() + LEASE));
    queue.messages.splice(1);
    expect(await runExport()).toEqual(['part']);
    clock.advance(LEASE + 1);
    expect((await maintenance().reap()).redispatched).toEqual([midPart.exportId]);
    expect(queue.messages).toEqual([{ kind: 'export.part', exportId: midPart.exportId, part: 1 }]);
    expect(await runExport()).toEqual(['completed']);
    expect(Buffer.from(objects.objects.get(midPart.key) ?? []).equals(data)).toBe(true);

    // After the last part's ETag is recorded, joining them fails (the worker dies there).
    const joining = await exportService.start(alice, snapshot.snapshotId, 'raw');
    const complete = objects.completeMultipart;
    objects.completeMultipart = async () => {
      throw new Error('worker killed while joining the parts');
    };
    expect(await exportService.runPart(joining.exportId, 0)).toBe('part');
    await expect(exportService.runPart(joining.exportId, 1)).rejects.toThrow('worker killed');
    queue.messages.splice(0);
    objects.completeMultipart = complete;
    expect((await exportRepo.get(joining.exportId))?.partsDone).toEqual([0, 1]);
    clock.advance(LEASE + 1);
    expect((await maintenance().reap()).redispatched).toEqual([joining.exportId]);
    // Every part is recorded: the last is sent again, and its redelivery joins them with the ETags kept.
    expect(queue.messages).toEqual([{ kind: 'export.part', exportId: joining.exportId, part: 1 }]);
    expect(await runExport()).toEqual(['completed']);
    expect(await exportRepo.get(joining.exportId)).toMatchObject({ state: 'completed', progress: 100 });
    expect(Buffer.from(objects.objects.get(joining.key) ?? []).equals(data)).toBe(true);
    expect(objects.uploads.size).toBe(0);
  });

  it('fails an export whose parts make no progress after maxDispatches lapses, as its kind fails it', async () => {
    const volume = await hostVolume(alice);
    const snapshot = await takeSnapshot(alice, volume.volumeId, image());
    const started = await exportService.start(alice, snapshot.snapshotId, 'raw');
    for (let lapse = 1; lapse <= DEFAULT_MAX_DISPATCHES; lapse++) {
      queue.messages.splice(0);
      clock.advance(LEASE + 1);
      expect((await maintenance().reap()).redispatched).toEqual([started.exportId]);
      expect((await exportRepo.get(started.exportId))?.dispatches).toBe(lapse);
    }
    queue.messages.splice(0);
    clock.advance(LEASE + 1);
    const report = await maintenance().reap();
    expect(report).toMatchObject({ redispatched: [], exportsFailed: [started.exportId] });
    expect(queue.messages).toEqual([]);
    const failed = await exportRepo.get(started.exportId);
    expect(failed?.state).toBe('error');
    expect(failed?.stateReason).toMatch(/no progress after it was dispatched 5 more times/);
    expect(objects.uploads.size).toBe(0);
    expect((await snapshotRepo.get(snapshot.snapshotId))?.holds).toBeUndefined();
  });

  it('aborts unfinished multipart uploads older than the upload grace, and notes a store that cannot list them', async () => {
    await objects.createMultipart('stray/old');
    clock.advance(DAY);
    const young = await objects.createMultipart('stray/young');
    clock.advance(DAY);
    expect((await maintenance().reap()).uploadsAborted).toBe(0);
    clock.advance(1);
    expect((await maintenance().reap()).uploadsAborted).toBe(1);
    expect([...objects.uploads.keys()]).toEqual([young]);
    expect((await maintenance({ uploadGraceMs: HOUR }).reap()).uploadsAborted).toBe(1);
    expect(objects.uploads.size).toBe(0);
    const unsupported = intercept<ObjectStore>(objects, {
      listIncompleteUploads: () => ({
        [Symbol.asyncIterator]: () => ({
          next: () => Promise.reject(new Error('listing uploads is not supported')),
        }),
      }),
    });
    const queued = await service.create(alice, {
      volumeId: (await hostVolume(alice)).volumeId,
      queued: true,
    });
    clock.advance(HOUR + 1);
    const report = await maintenance({ objects: unsupported }).reap();
    expect(report.notes).toEqual([expect.stringContaining('listing uploads is not supported')]);
    // The rest of the run was done.
    expect(report.queuedExpired).toEqual([queued.snapshotId]);
  });

  it('deletes an export in any state at once for its owner when the store refuses the abort; the reaper finishes', async () => {
    const volume = await hostVolume(alice);
    const data = image();
    const snapshot = await takeSnapshot(alice, volume.volumeId, data);
    const usageBefore = await snapshotRepo.usage(alice.accountId);
    const pending = await exportService.start(alice, snapshot.snapshotId, 'raw');
    expect(await exportService.runPart(pending.exportId, 0)).toBe('part');
    queue.messages.splice(0);
    // A store that cannot abort a multipart upload (s3rver), as S3 does not answer it now.
    const faults = injectObjectFaults(objects);
    faults.fail('abortMultipart');
    await exportService.delete(alice, pending.exportId);
    await expect(exportService.get(alice, pending.exportId)).rejects.toMatchObject({
      code: 'export.notFound',
    });
    expect((await exportService.list(alice, { limit: 10 })).items).toEqual([]);
    // Workers stop: a redelivered part does nothing.
    expect(await exportService.runPart(pending.exportId, 1)).toBe('skipped');
    // Still refused: the reaper notes it and keeps the record (its bytes still count: they are stored).
    const refusedRun = await maintenance().reap();
    expect(refusedRun.deletionsFinished).toEqual([]);
    expect(refusedRun.notes.join('\n')).toContain(`Export ${pending.exportId} is deleted`);
    expect(await exportRepo.get(pending.exportId)).toMatchObject({ state: 'pending' });
    expect(objects.uploads.size).toBe(1);
    // Meanwhile GC loses nothing: the snapshot the export read restores whole.
    clock.advance(DAY + 1);
    await maintenance().gc();
    expect((await restore(alice.accountId, snapshot.snapshotId)).equals(data)).toBe(true);
    expect(faults.calls('abortMultipart')).toBeGreaterThanOrEqual(2); // the delete's, then the reaper's
    faults.heal();
    expect((await maintenance().reap()).deletionsFinished).toEqual([pending.exportId]);
    expect(await exportRepo.get(pending.exportId)).toBeUndefined();
    expect(objects.uploads.size).toBe(0);
    expect((await snapshotRepo.get(snapshot.snapshotId))?.holds).toBeUndefined();
    expect(await snapshotRepo.usage(alice.accountId)).toEqual(usageBefore);

    // A completed export whose object the store will not delete now: deleted all the same.
    const completed = await exportService.start(alice, snapshot.snapshotId, 'raw');
    for (const m of queue.messages.splice(0))
      if (m.kind === 'export.part') await exportService.runPart(m.exportId, m.part);
    faults.fail('delete');
    await exportService.delete(alice, completed.exportId);
    await expect(exportService.get(alice, completed.exportId)).rejects.toMatchObject({
      code: 'export.notFound',
    });
    await expect(exportService.url(alice, completed.exportId)).rejects.toMatchObject({
      code: 'export.notFound',
    });
    faults.heal();
    expect((await maintenance().reap()).deletionsFinished).toEqual([completed.exportId]);
    expect(objects.objects.has(completed.key)).toBe(false);
    expect(await snapshotRepo.usage(alice.accountId)).toEqual(usageBefore);
  });

  it('gives up the abort of a deleted export after the upload grace: the bucket rule has aborted it', async () => {
    const volume = await hostVolume(alice);
    const snapshot = await takeSnapshot(alice, volume.volumeId, image());
    const pending = await exportService.start(alice, snapshot.snapshotId, 'raw');
    injectObjectFaults(objects).fail('abortMultipart');
    await exportService.delete(alice, pending.exportId);
    clock.advance(2 * DAY);
    expect((await maintenance().reap()).deletionsFinished).toEqual([]);
    clock.advance(1);
    expect((await maintenance().reap()).deletionsFinished).toEqual([pending.exportId]);
    expect(await exportRepo.get(pending.exportId)).toBeUndefined();
  });

  it('deletes a pending server-side snapshot at once when the store refuses its cleanup; the reaper finishes', async () => {
    const data = image(12);
    const key = `${ObjectLayout.imagePrefix(alice.accountId)}gone.img`;
    await objects.put(key, data);
    const volume = await volumes.register(alice, {
      name: 'img',
      sizeBytes: data.length,
      imageUri: `s3://${BUCKET}/${key}`,
    });
    const snapshot = await service.create(alice, { volumeId: volume.volumeId });
    expect(await worker.run(snapshot.snapshotId)).toBe('split');
    expect(await worker.runPart(snapshot.snapshotId, 0)).toBe('part');
    const faults = injectObjectFaults(objects);
    faults.fail('delete');
    await service.delete(alice, snapshot.snapshotId);
    await expect(service.get(alice, snapshot.snapshotId)).rejects.toMatchObject({
      code: 'snapshot.notFound',
    });
    expect(await worker.runPart(snapshot.snapshotId, 1)).toBe('skipped');
    // The reaper retries the cleanup the store refused once the store answers again.
    const refused = faults.calls('delete');
    faults.heal();
    clock.advance(5 * MINUTE + 1);
    expect((await maintenance().reap()).deletionsFinished).toEqual([snapshot.snapshotId]);
    expect(await snapshotRepo.get(snapshot.snapshotId)).toBeUndefined();
    expect((await snapshotRepo.usage(alice.accountId)).snapshots).toBe(0);
    expect(refused).toBeGreaterThan(0);
  });

  it('finishes a deletion interrupted half-way, once it is old enough to be surely stuck', async () => {
    const volume = await hostVolume(alice);
    const snapshot = await takeSnapshot(alice, volume.volumeId, image());
    await snapshotRepo.transition(snapshot.snapshotId, ['completed'], 'deleting', {
      deletedAt: isoTime(clock.now()),
    });
    clock.advance(5 * MINUTE);
    expect((await maintenance().reap()).deletionsFinished).toEqual([]);
    expect(await objects.head(ObjectLayout.manifest(snapshot.snapshotId))).toBeDefined();
    clock.advance(1);
    expect((await maintenance().reap()).deletionsFinished).toEqual([snapshot.snapshotId]);
    expect(await snapshotRepo.get(snapshot.snapshotId)).toBeUndefined();
    expect(await objects.head(ObjectLayout.manifest(snapshot.snapshotId))).toBeUndefined();
    expect((await snapshotRepo.usage(alice.accountId)).snapshots).toBe(0);
  });
});

describe('expiry', () => {
  /** Runs the export messages queued. */
  async function exportWork(): Promise<void> {
    for (const m of queue.messages.splice(0))
      if (m.kind === 'export.part') await exportService.runPart(m.exportId, m.part);
  }

  it('deletes an export past its expiresAt, with its object; a younger one stays', async () => {
    const volume = await hostVolume(alice);
    const snapshot = await takeSnapshot(alice, volume.volumeId, image());
    const short = await exportService.start(alice, snapshot.snapshotId, 'raw', { keepForMs: HOUR });
    const long = await exportService.start(alice, snapshot.snapshotId, 'vsnap', { keepForMs: 2 * HOUR });
    await exportWork();
    expect((await exportRepo.get(short.exportId))?.state).toBe('completed');
    expect(await objects.head(short.key)).toBeDefined();
    clock.advance(HOUR);
    expect((await maintenance().expire()).exportsDeleted).toEqual([]);
    clock.advance(1);
    expect(await maintenance().expire()).toEqual({ exportsDeleted: [short.exportId], snapshotsPurged: [] });
    expect(await exportRepo.get(short.exportId)).toBeUndefined();
    expect(await objects.head(short.key)).toBeUndefined();
    expect((await exportRepo.get(long.exportId))?.state).toBe('completed');
    expect(await objects.head(long.key)).toBeDefined();
  });

  it('purges a recycled snapshot past its purgeAt (record and manifest gone), and leaves others', async () => {
    await accounts.updateSettings(alice, { recycleBinDays: 2 });
    const volume = await hostVolume(alice);
    const old = await takeSnapshot(alice, volume.volumeId, image());
    const kept = await takeSnapshot(alice, volume.volumeId, image());
    const recycled = await service.delete(alice, old.snapshotId);
    expect(recycled?.purgeAt).toBe(isoTime(clock.now() + 2 * DAY));
    clock.advance(DAY);
    const later = await takeSnapshot(alice, (await hostVolume(alice, 'later')).volumeId, image());
    await service.delete(alice, later.snapshotId);
    clock.advance(DAY + 1);
    expect(await maintenance().expire()).toEqual({ exportsDeleted: [], snapshotsPurged: [old.snapshotId] });
    expect(await snapshotRepo.get(old.snapshotId)).toBeUndefined();
    expect(await objects.head(ObjectLayout.manifest(old.snapshotId))).toBeUndefined();
    expect((await snapshotRepo.get(later.snapshotId))?.state).toBe('recycled');
    expect(await objects.head(ObjectLayout.manifest(later.snapshotId))).toBeDefined();
    expect((await snapshotRepo.get(kept.snapshotId))?.state).toBe('completed');
    expect((await snapshotRepo.usage(alice.accountId)).snapshots).toBe(2);
  });
});

describe('maintenance jobs', () => {
  let policyRuns: unknown[];
  let jobs: MaintenanceJobs;

  beforeEach(() => {
    policyRuns = [];
    jobs = new MaintenanceJobs(
      () => maintenance(),
      () => ({
        run: async (options) => {
          policyRuns.push(options);
          return { runs: [] };
        },
      }),
    );
  });

  it("refuse callers that are not the operator's", async () => {
    await noRecycleBin(alice);
    const volume = await hostVolume(alice);
    const snapshot = await takeSnapshot(alice, volume.volumeId, image());
    await service.delete(alice, snapshot.snapshotId);
    clock.advance(1);
    const garbage = storedKeys('segments/');
    expect(garbage.length).toBeGreaterThan(0);
    for (const job of ['gc', 'reaper', 'expiry', 'policies'])
      await expect(jobs.run(alice, job, { graceMs: 0 })).rejects.toMatchObject({ code: 'auth.forbidden' });
    const admin = { ...alice, role: 'admin' as const };
    await expect(jobs.run(admin, 'gc', { graceMs: 0 })).rejects.toMatchObject({ code: 'auth.forbidden' });
    // It says what was refused: running a job, not managing accounts.
    await expect(jobs.run(alice, 'gc')).rejects.toThrow(
      "Only the service operator's owners and admins can run the region's scheduled jobs (gc is one: it runs on its own schedule).",
    );
    expect(storedKeys('segments/')).toEqual(garbage);
    expect(policyRuns).toEqual([]);
    // The operator may.
    expect(await jobs.run(operator, 'gc', { graceMs: 0 })).toMatchObject({
      graceMs: 0,
      segmentsDeleted: garbage.length,
    });
    expect(storedKeys('segments/')).toEqual([]);
  });

  it('refuse an unknown job and a bad grace period', async () => {
    await expect(jobs.run(operator, 'vacuum')).rejects.toMatchObject({
      code: 'request.invalid',
      message: expect.stringContaining('gc, reaper, expiry, policies'),
    });
    await expect(jobs.run('schedule', 'vacuum')).rejects.toMatchObject({ code: 'request.invalid' });
    for (const graceMs of [-1, 1.5, Number.NaN])
      await expect(jobs.run(operator, 'gc', { graceMs })).rejects.toMatchObject({ code: 'request.invalid' });
  });

  it('run every job for the schedule, passing policy options through', async () => {
    expect(await jobs.run('schedule', 'gc')).toMatchObject({
      graceMs: DEFAULT_GC_GRACE_MS,
      segmentsDeleted: 0,
    });
    expect(await jobs.run('schedule', 'reaper')).toMatchObject({ snapshotsFailed: [], uploadsAborted: 0 });
    expect(await jobs.run('schedule', 'expiry')).toEqual({ exportsDeleted: [], snapshotsPurged: [] });
    expect(await jobs.run('schedule', 'policies', { force: true })).toEqual({ runs: [] });
    expect(await jobs.run(operator, 'policies', { policyId: 'pol-x' })).toEqual({ runs: [] });
    expect(policyRuns).toEqual([{ force: true }, { policyId: 'pol-x' }]);
  });
});

describe('workOf', () => {
  const base: Snapshot = {
    snapshotId: 'snap-aaaaaaaaaaaaaaaa',
    accountId: 'acct-aaaaaaaaaaaaaaaa',
    volumeId: 'vol-aaaaaaaaaaaaaaaa',
    volumeSize: 4 * BLOCK_SIZE,
    blockSize: BLOCK_SIZE,
    name: '',
    description: '',
    tags: {},
    state: 'pending',
    progress: 0,
    region: 'r1',
    createdAt: isoTime(0),
    deadline: isoTime(1),
  };
  const snapshotId = base.snapshotId;

  it('sends the unfinished parts of a copy, an import, or a split image snapshot', () => {
    const from = { region: 'r2', snapshotId: 'snap-bbbbbbbbbbbbbbbb', accountId: base.accountId };
    expect(workOf({ ...base, copiedFrom: from, parts: 4, partsDone: [0, 2] })).toEqual([
      { kind: 'snapshot.copyPart', snapshotId, part: 1 },
      { kind: 'snapshot.copyPart', snapshotId, part: 3 },
    ]);
    const importedFrom = { source: 'https://example.com/disk.img', format: 'raw' as const, ref: 'r' };
    expect(workOf({ ...base, importedFrom, parts: 2, partsDone: [1] })).toEqual([
      { kind: 'snapshot.importPart', snapshotId, part: 0 },
    ]);
    expect(workOf({ ...base, parts: 3 })).toEqual(
      [0, 1, 2].map((part) => ({ kind: 'snapshot.fromImagePart', snapshotId, part })),
    );
  });

  it('sends an image snapshot not split yet whole', () => {
    expect(workOf(base)).toEqual([{ kind: 'snapshot.fromImage', snapshotId }]);
  });
});
