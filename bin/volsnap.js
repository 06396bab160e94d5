#!/usr/bin/env node
// The volsnap CLI, run from its TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../lib/cli/main.ts');
await main(process.argv);
