#!/usr/bin/env node
// The volsnap CLI, run from its TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

// These machines run Node 20; Lambda runs 22. The SDK versions in package-lock.json support 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();

// Benchmarks ask the CLI for its own peak memory. VmHWM is this process image's high-water mark;
// getrusage's maxRSS would include the parent's, inherited through fork and exec.
if (process.env.VOLSNAP_REPORT_RUSAGE) {
  const { readFileSync } = await import('node:fs');
  process.on('exit', () => {
    let maxRssKiB = process.resourceUsage().maxRSS;
    try {
      maxRssKiB = Number(
        /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? maxRssKiB,
      );
    } catch {
      // not Linux: keep getrusage's figure
    }
    const usage = process.resourceUsage();
    process.stderr.write(
      `\nvolsnap-rusage ${JSON.stringify({ maxRssKiB, userMs: usage.userCPUTime / 1000, systemMs: usage.systemCPUTime / 1000 })}\n`,
    );
  });
}
const { main, exitWhenFlushed } = await import('../lib/cli/main.ts');
await main(process.argv);
exitWhenFlushed();
