// Global setup of the e2e project: every local cloud the e2e tests start records the calls its
// functions make (VOLSNAP_RECORD_AWS_CALLS, set for the project in vitest.config.ts), and once the
// whole project has run, the teardown checks them against the role's statements of the packaged
// template (scripts/local-cloud/iam-check.ts). A call no statement allows fails the run; a grant no
// call used is printed. The teardown sees every e2e file that ran, whichever were chosen.
import { rmSync, writeFileSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import {
  checkRecordedCalls,
  formatReport,
  sampleCalls,
  summarizeCalls,
} from '../../scripts/local-cloud/iam-check.ts';

export default function setup(project: TestProject) {
  const dir = project.config.env.VOLSNAP_RECORD_AWS_CALLS;
  if (!dir)
    throw new Error(
      'The e2e project records AWS calls into VOLSNAP_RECORD_AWS_CALLS: set it in vitest.config.ts.',
    );
  rmSync(dir, { recursive: true, force: true });
  return async () => {
    const result = await checkRecordedCalls(dir);
    if (result.checked === 0) {
      console.log('IAM check: no local cloud recorded any call.');
      return;
    }
    // VOLSNAP_IAM_LIST_CALLS=1 lists what was called; VOLSNAP_IAM_KEEP_CALLS=FILE keeps one call of each kind.
    if (process.env.VOLSNAP_IAM_LIST_CALLS === '1') console.log(summarizeCalls(result.calls).join('\n'));
    const keep = process.env.VOLSNAP_IAM_KEEP_CALLS;
    if (keep)
      writeFileSync(
        keep,
        sampleCalls(result.calls)
          .map((call) => `${JSON.stringify(call)}\n`)
          .join(''),
      );
    console.log(formatReport(result));
    // Vitest logs an error thrown here without failing the run: the exit status says it.
    if (result.denied.length > 0) process.exitCode = 1;
  };
}
