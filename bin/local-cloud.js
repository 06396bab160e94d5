#!/usr/bin/env node
// Runs the local cloud's supervisor from TypeScript sources (tsx); the functions it serves run from
// their Lambda bundles on Node 22, which it builds when they are out of date (scripts/local-cloud/bundles.ts).
import { register } from 'tsx/esm/api';

// These machines run Node 20; Lambda runs 22. The SDK versions in package-lock.json support 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
await import('../scripts/local-cloud/main.ts');
