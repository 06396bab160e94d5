import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

// vitest.config.ts routes every temporary file of a run into one folder it removes when the run
// ends: workers and the processes tests start inherit TMPDIR pointing there.
describe('the test run', () => {
  it('keeps its temporary files in one folder of its own, which exists while it runs', () => {
    const runTmp = process.env.VOLSNAP_TEST_TMPDIR ?? '';
    expect(runTmp).toMatch(/volsnap-test-run-/);
    expect(existsSync(runTmp)).toBe(true);
    expect(tmpdir()).toBe(runTmp);
    expect(dirname(runTmp)).not.toBe(runTmp);
  });
});
