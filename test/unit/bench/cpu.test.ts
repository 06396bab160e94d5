import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cpuBetween, cpuDuring, cpuTotal, processCpuSeconds } from '../../../scripts/bench/cpu.ts';

describe('the bench CPU meter', () => {
  it('reads a live process its CPU seconds from /proc, and none for a pid that is not there', async () => {
    const before = await processCpuSeconds(process.pid);
    expect(before).toEqual(expect.any(Number));
    const { cpu } = await cpuDuring(
      async () => ({ me: [process.pid] }),
      async () => {
        // About 0.2 s of CPU: SHA-256 of 64 MiB.
        const hash = createHash('sha256');
        const chunk = Buffer.alloc(1 << 20, 7);
        for (let i = 0; i < 64; i++) hash.update(chunk);
        hash.digest();
      },
    );
    expect(cpu.me).toBeGreaterThan(0);
    expect(await processCpuSeconds(2 ** 22 + 12345)).toBeUndefined();
  });

  it('sums what each kind used between samples; a process gone by the second sample counts nothing', () => {
    const watched = { region: [1, 2], s3: [3] };
    const before = new Map([
      [1, 1.0],
      [2, 2.0],
      [3, 0.5],
    ]);
    const after = new Map([
      [1, 1.75],
      [3, 1.5],
    ]);
    const used = cpuBetween(watched, before, after);
    expect(used).toEqual({ region: 0.75, s3: 1 });
    expect(cpuTotal(used)).toBe(1.75);
  });
});
