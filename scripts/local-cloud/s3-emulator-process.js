// Runs s3rver in its own process (the local cloud forks it with NODE_OPTIONS=--openssl-legacy-provider,
// without which s3rver cannot list past 1000 keys). Exits when its parent goes away.
import { readFileSync } from 'node:fs';
import S3rver from 's3rver';

// Optional TLS (the benchmark's peers, restic, need an https endpoint): key and certificate files.
const [directory, portText, keyPath, certPath] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(portText),
  directory,
  silent: true,
  vhostBuckets: false,
  ...(keyPath && certPath ? { key: readFileSync(keyPath), cert: readFileSync(certPath) } : {}),
});
const { port } = await server.run();
process.send?.({ ready: true, port });
const stop = async () => {
  await server.close().catch(() => {});
  process.exit(0);
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
