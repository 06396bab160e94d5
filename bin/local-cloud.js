#!/usr/bin/env node
// Runs the local cloud from TypeScript sources (tsx), so `npm start` needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../scripts/local-cloud/main.ts');
