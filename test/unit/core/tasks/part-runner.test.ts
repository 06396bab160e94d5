import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../lib/adapters/clock.ts';
import { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import { MemoryWorkQueue } from '../../../../lib/adapters/memory/queue.ts';
import { MemorySnapshotRepository } from '../../../../lib/adapters/memory/snapshots.ts';
import { MemoryVolumeRepository } from '../../../../lib/adapters/memory/volumes.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { BLOCK_SIZE } from '../../../../lib/core/format/blocks.ts';
import { ObjectLayout } from '../../../../lib/core/ports/objects.ts';
import { VolsnapError } from '../../../../lib/core/shared/errors.ts';
import { SnapshotService } from '../../../../lib/core/snapshots/snapshot-service.ts';
import type { Snapshot } from '../../../../lib/core/snapshots/snapshots.ts';
import { type PartKind, PartRunner, type PartTally } from '../../../../lib/core/tasks/part-runner.ts';
import {
  nextSessionSegment,
  partKey,
  SEGMENTS_PER_HEARTBEAT,
  sessionWriter,
  snapshotPartKind,
} from '../../../../lib/core/tasks/parts.ts';
import { VolumeService } from '../../../../lib/core/volumes/volumes.ts';
import { testCaller } from '../../../support/callers.ts';

/** A kind of work over records in memory that logs every step the runner takes. */
function toyKind(parts = 3) {
  const log: string[] = [];
  const records = new Map<string, { state: 'pending' | 'completed' | 'error'; done: Set<number> }>([
    ['w-1', { state: 'pending', done: new Set() }],
  ]);
  let failWith: ((part: number) => Error | undefined) | undefined;
  let leftPending = false;
  type Toy = { id: string; done: number[] };
  const kind: PartKind<Toy> = {
    load: async (id) => {
      log.push('load');
      const r = records.get(id);
      return r?.state === 'pending' ? { id, done: [...r.done] } : undefined;
    },
    parts: () => {
      log.push('parts');
      return parts;
    },
    isCheckpointed: (record, part) => {
      log.push(`isCheckpointed ${part}`);
      return record.done.includes(part);
    },
    renew: async () => {
      log.push('renew');
    },
    check: async () => {
      log.push('check');
    },
    work: async (record, part): Promise<PartTally | undefined> => {
      log.push(`work ${part}`);
      const error = failWith?.(part);
      if (error) throw error;
      if (leftPending) return undefined;
      const r = records.get(record.id);
      r?.done.add(part);
      return { done: r?.done.size ?? 0 };
    },
    recount: async (record, part) => {
      log.push(`recount ${part}`);
      return { done: records.get(record.id)?.done.size ?? 0 };
    },
    progress: async (_, percent) => {
      log.push(`progress ${percent}`);
    },
    finish: async (record) => {
      log.push('finish');
      const r = records.get(record.id);
      if (r) r.state = 'completed';
    },
    fail: async (record, reason) => {
      log.push(`fail ${reason}`);
      const r = records.get(record.id);
      if (r) r.state = 'error';
    },
  };
  return {
    kind,
    log,
    records,
    failOn: (f: typeof failWith) => {
      failWith = f;
    },
    leavePending: () => {
      leftPending = true;
    },
  };
}

describe('the part runner', () => {
  it('runs each part as load, parts, renew (the lease), check, checkpoint lookup, work, then renew and progress, and finishes after the last', async () => {
    const toy = toyKind(3);
    const runner = new PartRunner(toy.kind);
    expect(await runner.runPart('w-1', 2)).toBe('part');
    expect(toy.log.splice(0)).toEqual([
      'load',
      'parts',
      'renew',
      'check',
      'isCheckpointed 2',
      'work 2',
      'renew',
      'progress 31',
    ]);
    expect(await runner.runPart('w-1', 0)).toBe('part');
    expect(toy.log.splice(0)).toEqual([
      'load',
      'parts',
      'renew',
      'check',
      'isCheckpointed 0',
      'work 0',
      'renew',
      'progress 63',
    ]);
    expect(await runner.runPart('w-1', 1)).toBe('completed');
    expect(toy.log.splice(0)).toEqual([
      'load',
      'parts',
      'renew',
      'check',
      'isCheckpointed 1',
      'work 1',
      'finish',
    ]);
    // Done work: every later delivery is skipped after the load, with no other step.
    expect(await runner.runPart('w-1', 1)).toBe('skipped');
    expect(toy.log).toEqual(['load']);
  });

  it('does not redo a checkpointed part: it counts it again (and finishes), or skips it without recount', async () => {
    const toy = toyKind(2);
    const runner = new PartRunner(toy.kind);
    expect(await runner.runPart('w-1', 0)).toBe('part');
    toy.log.length = 0;
    expect(await runner.runPart('w-1', 0)).toBe('part');
    expect(toy.log.splice(0)).toEqual([
      'load',
      'parts',
      'renew',
      'check',
      'isCheckpointed 0',
      'recount 0',
      'renew',
      'progress 47',
    ]);
    // Both parts checkpointed, but the worker died before finishing: a redelivery finishes it.
    toy.records.get('w-1')?.done.add(1);
    expect(await runner.runPart('w-1', 1)).toBe('completed');
    expect(toy.log.splice(0)).toEqual([
      'load',
      'parts',
      'renew',
      'check',
      'isCheckpointed 1',
      'recount 1',
      'finish',
    ]);

    const noRecount = toyKind(2);
    const { recount: _, ...withoutRecount } = noRecount.kind;
    const strict = new PartRunner(withoutRecount);
    expect(await strict.runPart('w-1', 0)).toBe('part');
    noRecount.log.length = 0;
    expect(await strict.runPart('w-1', 0)).toBe('skipped');
    expect(noRecount.log).toEqual(['load', 'parts', 'renew', 'check', 'isCheckpointed 0']);
  });

  it('skips an out-of-range part (negative, at or past the part count, not a whole number) with no side effect', async () => {
    const toy = toyKind(3);
    const runner = new PartRunner(toy.kind);
    for (const part of [-1, 3, 4, 1.5, Number.NaN]) {
      expect(await runner.runPart('w-1', part)).toBe('skipped');
      expect(toy.log.splice(0)).toEqual(['load', 'parts']);
    }
    expect(toy.records.get('w-1')).toEqual({ state: 'pending', done: new Set() });
    // The stray messages poisoned nothing: the work goes on.
    for (const part of [0, 1]) expect(await runner.runPart('w-1', part)).toBe('part');
    expect(await runner.runPart('w-1', 2)).toBe('completed');
  });

  it('fails the work for good on a permanent error, with its message as the reason; throws a transient one', async () => {
    const toy = toyKind(2);
    const runner = new PartRunner(toy.kind);
    toy.failOn(() => new Error('socket hang up'));
    await expect(runner.runPart('w-1', 0)).rejects.toThrow('socket hang up');
    // A server-side VolsnapError (5xx) is not the data's fault either: the message comes again.
    toy.failOn(() => new VolsnapError('internal', 'storage hiccup'));
    await expect(runner.runPart('w-1', 0)).rejects.toThrow('storage hiccup');
    expect(toy.log.filter((step) => step.startsWith('fail'))).toEqual([]);
    expect(toy.records.get('w-1')?.state).toBe('pending');
    toy.failOn((part) => (part === 1 ? new VolsnapError('data.corrupt', 'block 7 is damaged') : undefined));
    expect(await runner.runPart('w-1', 0)).toBe('part');
    toy.log.length = 0;
    expect(await runner.runPart('w-1', 1)).toBe('error');
    expect(toy.log).toEqual([
      'load',
      'parts',
      'renew',
      'check',
      'isCheckpointed 1',
      'work 1',
      'fail block 7 is damaged',
    ]);
    expect(await runner.runPart('w-1', 1)).toBe('skipped');
  });

  it('skips a part whose work left pending while it ran (nothing counted): no progress, no finish', async () => {
    const toy = toyKind(1);
    toy.leavePending();
    expect(await new PartRunner(toy.kind).runPart('w-1', 0)).toBe('skipped');
    expect(toy.log).toEqual(['load', 'parts', 'renew', 'check', 'isCheckpointed 0', 'work 0']);
  });

  it('runs a step that is not a part the same way: skipped when not to be done, failed for good on a permanent error', async () => {
    const toy = toyKind(1);
    const runner = new PartRunner(toy.kind);
    expect(await runner.attempt('w-9', async () => 'split' as const)).toBe('skipped');
    await expect(
      runner.attempt('w-1', async () => {
        throw new Error('timeout');
      }),
    ).rejects.toThrow('timeout');
    expect(
      await runner.attempt('w-1', async () => {
        throw new VolsnapError('request.invalid', 'The image does not exist.');
      }),
    ).toBe('error');
    expect(toy.log.at(-1)).toBe('fail The image does not exist.');
  });
});

describe('snapshot work in parts', () => {
  const zstd = createZstdCompressor();
  const alice = testCaller();
  let objects: MemoryObjectStore;
  let snapshotRepo: MemorySnapshotRepository;
  let service: SnapshotService;
  let snapshot: Snapshot;
  let corruptPart: number | undefined;
  let kind: PartKind<Snapshot>;

  beforeEach(async () => {
    const clock = new ManualClock();
    objects = new MemoryObjectStore();
    const volumeRepo = new MemoryVolumeRepository();
    snapshotRepo = new MemorySnapshotRepository(volumeRepo);
    const queue = new MemoryWorkQueue();
    service = new SnapshotService({
      compressor: zstd,
      snapshots: snapshotRepo,
      volumes: volumeRepo,
      objects,
      clock,
      region: 'r',
      queue,
    });
    const volumes = new VolumeService(volumeRepo, clock, 'r', { regionBucket: 'region', extraBuckets: [] });
    // An image-backed volume: its snapshot is server-side work, pending for the workers.
    const volume = await volumes.register(alice, {
      name: 'disk',
      sizeBytes: 4 * BLOCK_SIZE,
      imageUri: `s3://region/${ObjectLayout.imagePrefix(alice.accountId)}disk.img`,
    });
    const created = await service.create(alice, { volumeId: volume.volumeId });
    snapshot = (await snapshotRepo.transition(created.snapshotId, ['pending'], 'pending', {
      parts: 2,
    })) as Snapshot;
    corruptPart = undefined;
    // Each part writes its two blocks of random data, as a real kind writes what it reads.
    kind = snapshotPartKind(
      { snapshots: snapshotRepo, objects, service },
      {
        owns: (s) => !s.copiedFrom,
        write: async (s, part) => {
          const writer = sessionWriter({ snapshots: snapshotRepo, objects, compressor: zstd }, s);
          for (const index of [2 * part, 2 * part + 1]) {
            if (part === corruptPart && index === 2 * part + 1)
              throw new VolsnapError('data.corrupt', `Block ${index} is damaged.`);
            await writer.add(index, randomBytes(BLOCK_SIZE));
          }
          return writer.finish();
        },
      },
    );
  });

  const keysOf = (s: Snapshot) =>
    [...objects.objects.keys()].filter(
      (key) => key.includes(s.snapshotId) || key.startsWith(ObjectLayout.segmentPrefix(s.accountId)),
    );

  it('checkpoints each part as its manifest and completes the snapshot with the last, leaving only its segments and manifest', async () => {
    const runner = new PartRunner(kind);
    expect(await runner.runPart(snapshot.snapshotId, 1)).toBe('part');
    expect(await objects.head(partKey(snapshot.snapshotId, 1))).toBeDefined();
    expect(await runner.runPart(snapshot.snapshotId, 0)).toBe('completed');
    const done = await service.get(alice, snapshot.snapshotId);
    expect(done).toMatchObject({ state: 'completed', stats: { blockCount: 4 } });
    expect([...objects.objects.keys()].filter((key) => key.startsWith('uploads/'))).toEqual([]);
    expect(await objects.head(ObjectLayout.manifest(snapshot.snapshotId))).toBeDefined();
  });

  it('failing for good leaves nothing it wrote: no segment, no part checkpoint, no staged manifest', async () => {
    const runner = new PartRunner(kind);
    expect(await runner.runPart(snapshot.snapshotId, 0)).toBe('part');
    // A staged manifest left by a completion that did not go through.
    await objects.put(ObjectLayout.manifestUpload(snapshot.snapshotId), new Uint8Array([1]));
    expect(keysOf(snapshot).length).toBeGreaterThan(2);
    corruptPart = 1;
    expect(await runner.runPart(snapshot.snapshotId, 1)).toBe('error');
    expect(await snapshotRepo.get(snapshot.snapshotId)).toMatchObject({
      state: 'error',
      stateReason: 'Block 3 is damaged.',
    });
    expect(keysOf(snapshot)).toEqual([]);
    expect(objects.objects.size).toBe(0);
  });

  it('never deletes the segments of a snapshot that completed meanwhile', async () => {
    const runner = new PartRunner(kind);
    await runner.runPart(snapshot.snapshotId, 0);
    await runner.runPart(snapshot.snapshotId, 1);
    const before = keysOf(snapshot).sort();
    // A late failure of a worker that loaded the snapshot while it was still pending.
    await kind.fail(snapshot, 'the source went away');
    expect((await snapshotRepo.get(snapshot.snapshotId))?.state).toBe('completed');
    expect(keysOf(snapshot).sort()).toEqual(before);
  });

  it('leaves a stray message for another kind of work alone', async () => {
    const copyKind = snapshotPartKind(
      { snapshots: snapshotRepo, objects, service },
      {
        owns: (s) => s.copiedFrom !== undefined,
        write: async () => {
          throw new VolsnapError('data.corrupt', 'not a copy');
        },
      },
    );
    expect(await new PartRunner(copyKind).runPart(snapshot.snapshotId, 0)).toBe('skipped');
    expect((await snapshotRepo.get(snapshot.snapshotId))?.state).toBe('pending');
  });
});

describe('a long part keeps its lease', () => {
  it('extends the lease every SEGMENTS_PER_HEARTBEAT segments it writes, each recorded in the session first', async () => {
    const recorded: string[] = [];
    const extended: string[] = [];
    const next = nextSessionSegment(
      {
        snapshots: {
          addSessionSegments: async (snapshotId, ids) => {
            recorded.push(`${snapshotId}:${ids.join(',')}`);
          },
        },
        service: {
          extendLease: async (snapshotId) => {
            extended.push(`${snapshotId} after ${recorded.length}`);
          },
        },
      },
      'snap-1',
    );
    for (let i = 0; i < 2 * SEGMENTS_PER_HEARTBEAT + 1; i++) await next();
    expect(recorded).toHaveLength(2 * SEGMENTS_PER_HEARTBEAT + 1);
    expect(new Set(recorded).size).toBe(recorded.length);
    expect(extended).toEqual([
      `snap-1 after ${SEGMENTS_PER_HEARTBEAT}`,
      `snap-1 after ${2 * SEGMENTS_PER_HEARTBEAT}`,
    ]);
  });
});
