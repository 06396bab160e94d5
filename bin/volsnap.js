#!/usr/bin/env node
// The volsnap CLI, run from its TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

// These machines run Node 20; Lambda runs 22. The SDK versions in package-lock.json support 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
const { main } = await import('../lib/cli/main.ts');
await main(process.argv);
