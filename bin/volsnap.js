#!/usr/bin/env node
// The volsnap CLI, run from its TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

// These machines run Node 20; Lambda runs 22. The SDK versions in package-lock.json support 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();

// Benchmarks ask the CLI for its own peak memory (Linux reports maxRSS in KiB).
if (process.env.VOLSNAP_REPORT_RUSAGE) {
  process.on('exit', () => {
    const usage = process.resourceUsage();
    process.stderr.write(
      `\nvolsnap-rusage ${JSON.stringify({ maxRssKiB: usage.maxRSS, userMs: usage.userCPUTime / 1000, systemMs: usage.systemCPUTime / 1000 })}\n`,
    );
  });
}
const { main } = await import('../lib/cli/main.ts');
await main(process.argv);
