// Runs s3rver in its own process (the local cloud forks it with NODE_OPTIONS=--openssl-legacy-provider,
// without which s3rver cannot list past 1000 keys), verifying what AWS S3 verifies (./s3-emulator.ts).
// Configured by VOLSNAP_S3_EMULATOR (JSON, see S3EmulatorConfig in ./processes.ts). Exits when its
// parent goes away.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import S3rver from 's3rver';
import { CallRecorder, roleOfKey } from './aws-calls.ts';
import { type FaultCounts, faultMiddleware } from './faults.ts';
import type { S3EmulatorConfig } from './processes.ts';
import {
  acceptRoleKeys,
  countingMiddleware,
  installAtomicWrites,
  recordingMiddleware,
  s3ErrorOf,
  signerOf,
  verifyingMiddleware,
} from './s3-emulator.ts';

const config = JSON.parse(process.env.VOLSNAP_S3_EMULATOR ?? '{}') as S3EmulatorConfig;
const server = new S3rver({
  address: '127.0.0.1',
  port: config.port,
  directory: config.directory,
  silent: true,
  vhostBuckets: false,
  // Optional TLS (the benchmark's peers, restic, need an https endpoint): key and certificate files.
  ...(config.tls ? { key: readFileSync(config.tls.keyPath), cert: readFileSync(config.tls.certPath) } : {}),
});
installAtomicWrites(server.store);
// First in the stack, before s3rver routes or reads anything.
if (config.verify !== false) {
  const roles = config.roles ?? [];
  acceptRoleKeys(roles);
  server.middleware.unshift(
    verifyingMiddleware({ region: config.regions, credentials: config.credentials, roles }),
  );
  // Right behind the verification: it records what the verified role asked for.
  if (config.recordCallsTo) {
    const recorder = new CallRecorder(config.recordCallsTo, `s3-${config.regions.join('+')}`);
    server.middleware.splice(1, 0, recordingMiddleware({ roles, recorder }));
  }
  // Behind both: a faulted call was still made (and recorded). Only what a role signed: the
  // functions' own calls and the presigned URLs they hand out, never the operator's.
  if (config.faults) {
    const countsFile = join(dirname(config.directory), 's3-faults.json');
    server.middleware.splice(
      config.recordCallsTo ? 2 : 1,
      0,
      faultMiddleware(config.faults, {
        applies: (ctx) => roleOfKey(signerOf(ctx.req) ?? '', roles) !== undefined,
        makeError: s3ErrorOf,
        countsFile,
        ...(existsSync(countsFile)
          ? { initialCounts: JSON.parse(readFileSync(countsFile, 'utf8')) as FaultCounts }
          : {}),
      }),
    );
  }
}
// Before everything: it counts the requests the verification refuses too.
server.middleware.unshift(countingMiddleware());
const { port } = await server.run();
process.send?.({ ready: true, port });
const stop = async () => {
  await server.close().catch(() => {});
  process.exit(0);
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
