// Global setup of the integration project: one s3rver and one DynamoDB Local (in memory) on free
// loopback ports, shared by the integration tests and stopped afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { DEFAULT_REGIONS } from '../../scripts/local-cloud/cloud.ts';
import {
  checkJava,
  freePort,
  type ManagedProcess,
  startDynamoEmulator,
  startS3Emulator,
} from '../../scripts/local-cloud/processes.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    dynamodbEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  await checkJava();
  const dir = await mkdtemp(join(tmpdir(), 'volsnap-it-'));
  const started: ManagedProcess[] = [];
  try {
    const [s3, dynamodb] = await Promise.all([
      // Both regions the local cloud runs: tests sign for either.
      startS3Emulator(join(dir, 's3'), 0, { regions: DEFAULT_REGIONS }),
      startDynamoEmulator(':memory:', await freePort(), { regions: DEFAULT_REGIONS }),
    ]);
    started.push(s3, dynamodb);
    project.provide('s3Endpoint', `http://127.0.0.1:${s3.port}`);
    project.provide('dynamodbEndpoint', `http://127.0.0.1:${dynamodb.port}`);
  } catch (error) {
    await Promise.all(started.map((p) => p.stop()));
    throw error;
  }
  return async () => {
    await Promise.all(started.map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  };
}
