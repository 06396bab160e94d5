import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../../lib/cli/args.ts';
import { agentStartLine, formatPolicyRuns } from '../../../lib/cli/commands/maintenance.ts';
import { parseVolumeSize } from '../../../lib/cli/units.ts';

describe('the words of the CLI', () => {
  it('reads every duration the same way: a unit, or a bare number of seconds (0 included)', () => {
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration('30')).toBe(30);
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('45m')).toBe(2700);
    expect(parseDuration('12h')).toBe(43_200);
    expect(parseDuration('30d')).toBe(2_592_000);
    expect(() => parseDuration('1w')).toThrow(
      "'1w' is not a duration: use e.g. 90s, 45m, 12h or 30d (a bare number is seconds).",
    );
    expect(() => parseDuration('-1')).toThrow('is not a duration');
  });

  it('reads GiB, MiB and TiB as binary sizes; says GB is 10^9 and suggests GiB', () => {
    expect(parseVolumeSize('10GiB')).toBe(10 * 2 ** 30);
    expect(parseVolumeSize('64MiB')).toBe(64 * 2 ** 20);
    expect(parseVolumeSize('1TiB')).toBe(2 ** 40);
    expect(() => parseVolumeSize('10GB')).toThrow(
      "'10GB' is 10000000000 bytes: GB means 10^9 bytes, and a volume is a whole number of 512 KiB blocks. Write 10GiB (binary units) instead.",
    );
    expect(() => parseVolumeSize('1000000')).toThrow(
      'not a whole number of 512 KiB blocks: write e.g. 1048576',
    );
  });

  it('the agent says what it watches and how often when it starts', () => {
    const volumes = new Map([
      ['vol-a', '/dev/sdb'],
      ['vol-b', './disk.img'],
    ]);
    expect(agentStartLine(volumes, 30)).toBe(
      'volsnap agent: taking queued snapshots of vol-a (/dev/sdb), vol-b (./disk.img), every 30s until stopped (Ctrl-C or SIGTERM).\n',
    );
    expect(agentStartLine(volumes, 300)).toContain('every 5m until stopped');
    expect(agentStartLine(volumes, undefined)).toContain(', one pass (--once).');
  });

  it('admin run policies prints a table of the runs, not a JSON blob', () => {
    const text = formatPolicyRuns({
      runs: [
        {
          policyId: 'pol-1',
          accountId: 'acct-1',
          report: {
            at: '2026-12-01T03:00:00.000Z',
            created: ['snap-a'],
            deleted: ['snap-b', 'snap-c'],
            copied: [],
            skipped: [],
            errors: ['vol-x: quota exceeded'],
          },
        },
      ],
    });
    expect(text.split('\n')).toEqual([
      'POLICY  ACCOUNT  CREATED  DELETED            COPIED  SKIPPED  ERRORS',
      'pol-1   acct-1   snap-a   2: snap-b, snap-c  -       -        1',
      'errors:',
      '  pol-1: vol-x: quota exceeded',
      '',
    ]);
    expect(text).not.toContain('{');
    expect(formatPolicyRuns({ runs: [] })).toBe('No policy was due.\n');
  });
});
