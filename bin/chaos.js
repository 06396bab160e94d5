#!/usr/bin/env node
// `npm run chaos -- --minutes N [--seed S]`: the chaos workload against a local cloud of its own.
import { register } from 'tsx/esm/api';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
await import('../scripts/chaos.ts');
