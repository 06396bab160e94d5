import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Every temporary file of a run (test folders, local clouds' data, bundles, child processes' own)
// goes under one folder that is removed when the run ends, however the tests left theirs.
// The config is loaded once, in the main process, before any worker or child starts.
if (!process.env.VOLSNAP_TEST_TMPDIR) {
  const runTmp = mkdtempSync(join(tmpdir(), 'volsnap-test-run-'));
  process.env.VOLSNAP_TEST_TMPDIR = runTmp;
  process.env.TMPDIR = runTmp;
  process.on('exit', () => rmSync(runTmp, { recursive: true, force: true }));
}

// Three projects: `unit` (in-memory, no I/O beyond loopback), `integration` (against s3rver and
// DynamoDB Local started by a global setup), `e2e` (the CLI against a local cloud the test starts).
export default defineConfig({
  test: {
    // These machines run Node 20 (Lambda runs 22); the pinned SDK supports both.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    projects: [
      {
        extends: true,
        // Generous for a loaded 2-core CI machine; still catches a hang.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node', testTimeout: 20_000 },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/emulators-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/support/cli-bundle-setup.ts', 'test/support/iam-setup.ts'],
          // Every local cloud of the project records its functions' AWS calls here, for the IAM check.
          env: { VOLSNAP_RECORD_AWS_CALLS: join(process.env.VOLSNAP_TEST_TMPDIR ?? tmpdir(), 'aws-calls') },
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // One local cloud at a time: two would fight over the two cores.
          fileParallelism: false,
        },
      },
    ],
  },
});
