import { describe, expect, it } from 'vitest';
import { type CpuProfile, packageOf, summarize } from '../../../scripts/bench/profile-summary.ts';

const frame = (id: number, functionName: string, url = '') => ({
  id,
  callFrame: { functionName, url, lineNumber: 0, columnNumber: 0 },
});

describe('the CPU profile summary', () => {
  it('charges self time to packages and functions, leaves idle out, and keeps to its window', () => {
    const profile: CpuProfile = {
      nodes: [
        frame(1, '(root)'),
        frame(2, '(idle)'),
        frame(3, 'compress', 'file:///x/node_modules/zstd-napi/dist/compress.js'),
        frame(4, 'add', 'file:///x/lib/core/format/segment.ts'),
        frame(5, 'send', 'file:///x/node_modules/@smithy/core/dist-es/client.js'),
      ],
      startTime: 1000,
      endTime: 9000,
      // Samples at 2000, 3000, …, 8000 (µs): 1 ms each.
      samples: [3, 3, 4, 2, 5, 3, 2],
      timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000],
    };
    const whole = summarize(profile);
    expect(whole.totalMs).toBe(5);
    expect(whole.idleMs).toBe(2);
    expect(whole.byPackage).toEqual([
      ['zstd-napi', 3],
      ['lib/core/format', 1],
      ['@smithy/core', 1],
    ]);
    expect(whole.byFunction[0]?.[0]).toBe('compress node_modules/zstd-napi/dist/compress.js');
    const window = summarize(profile, { from: 3500, to: 6500 });
    expect(window.totalMs).toBe(2);
    expect(window.byPackage.map(([name]) => name).sort()).toEqual(['@smithy/core', 'lib/core/format']);
  });

  it('names node internals and V8 states as such', () => {
    expect(packageOf('node:internal/crypto/hash', 'update')).toBe('node internals');
    expect(packageOf('', '(garbage collector)')).toBe('(garbage collector)');
    expect(packageOf('', 'writev')).toBe('(writev)');
  });
});
