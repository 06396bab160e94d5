// Entry point of one region's process in the local cloud. Its environment is that of a Lambda
// function of this region (VOLSNAP_*, AWS credentials for the emulators), so the handlers it loads
// see exactly what they would see on AWS. It runs on the Lambda runtime's Node major (Node 22), and
// runs the packaged bundles named by VOLSNAP_LOCAL_BUNDLES (else the sources, through a loader the
// caller provides). Exits when the supervisor goes away.

import { CallRecorder } from './aws-calls.ts';
import { RegionRuntime } from './region-runtime.ts';
import { loadServerlessSpec } from './serverless-spec.ts';

const env = process.env;
const verbose = env.VOLSNAP_LOCAL_VERBOSE === '1';
const runtime = new RegionRuntime({
  region: env.VOLSNAP_REGION ?? '',
  root: env.VOLSNAP_LOCAL_ROOT ?? process.cwd(),
  ...(env.VOLSNAP_LOCAL_BUNDLES ? { bundles: JSON.parse(env.VOLSNAP_LOCAL_BUNDLES) } : {}),
  spec: await loadServerlessSpec(env.VOLSNAP_LOCAL_SPEC ?? 'serverless.yml'),
  apiPort: Number(env.VOLSNAP_LOCAL_API_PORT ?? 0),
  queuePort: Number(env.VOLSNAP_LOCAL_QUEUE_PORT ?? 0),
  queueNames: JSON.parse(env.VOLSNAP_LOCAL_QUEUES ?? '{}'),
  schedules: env.VOLSNAP_LOCAL_SCHEDULES !== '0',
  ...(env.VOLSNAP_LOCAL_SCHEDULE_RUNS ? { scheduleRunsFile: env.VOLSNAP_LOCAL_SCHEDULE_RUNS } : {}),
  ...(env.VOLSNAP_LOCAL_RECORD_CALLS
    ? {
        recording: {
          roles: Object.keys(JSON.parse(env.VOLSNAP_REGIONS ?? '{}')),
          recorder: new CallRecorder(env.VOLSNAP_LOCAL_RECORD_CALLS, `sqs-${env.VOLSNAP_REGION}`),
        },
      }
    : {}),
  ...(env.VOLSNAP_LOCAL_LOSE_WORK_FILE ? { loseWorkFile: env.VOLSNAP_LOCAL_LOSE_WORK_FILE } : {}),
  log: (line) => {
    if (verbose || line.includes('"level":"error"')) console.log(line);
  },
});
// A stray rejection in one invocation ends that invocation on Lambda, not the whole region: log it.
process.on('unhandledRejection', (reason) => {
  console.log(
    JSON.stringify({
      level: 'error',
      region: env.VOLSNAP_REGION,
      message: 'unhandled rejection',
      error: String(reason),
    }),
  );
});

const ports = await runtime.start();
process.send?.({
  ready: true,
  port: ports.apiPort,
  queuePort: ports.queuePort,
  surface: runtime.surface,
  node: process.version,
});

const stop = async () => {
  await runtime.stop();
  process.exit(0);
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
