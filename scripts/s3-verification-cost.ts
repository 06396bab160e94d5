// What the local S3's request verification costs (SigV4 on every request, SHA-256 of header-signed
// bodies): 16 MiB PutObject and GetObject through the SDK, N times each, against a verifying
// emulator and one without verification, started side by side in the same run.
//   node --import tsx scripts/s3-verification-cost.ts [N]
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { s3ClientConfig } from '../lib/adapters/aws-clients.ts';
import { verifySigV4 } from '../lib/http/sigv4.ts';
import { LOCAL_CREDENTIALS, startS3Emulator } from './local-cloud/processes.ts';

const N = Number(process.argv[2] ?? 12);
const SIZE = 16 * 1024 * 1024;
const REGION = 'eu-west-1';
const BUCKET = 'cost-bucket';
const work = await mkdtemp(join(tmpdir(), 'volsnap-s3-cost-'));
const [verifying, plain] = await Promise.all([
  startS3Emulator(join(work, 'verifying'), 0, { regions: [REGION] }),
  startS3Emulator(join(work, 'plain'), 0, { regions: [REGION], verify: false }),
]);
const client = (port: number) =>
  new S3Client(
    s3ClientConfig(
      {
        name: REGION,
        bucket: BUCKET,
        table: 't',
        s3Endpoint: `http://127.0.0.1:${port}`,
        s3ForcePathStyle: true,
      },
      LOCAL_CREDENTIALS,
    ),
  );
const targets = { verifying: client(verifying.port), plain: client(plain.port) };
const body = randomBytes(SIZE);
type Case = 'put (Buffer: x-amz-content-sha256 checked)' | 'put (stream: UNSIGNED-PAYLOAD)' | 'get';
const times = new Map<string, number[]>();

async function once(name: keyof typeof targets, kind: Case, i: number) {
  const s3 = targets[name];
  const started = performance.now();
  if (kind === 'get') {
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `o${i % 4}` }));
    const bytes = await object.Body?.transformToByteArray();
    if (bytes?.length !== SIZE) throw new Error('short read');
  } else {
    const Body = kind.startsWith('put (Buffer') ? body : Readable.from([body]);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `o${i % 4}`, Body, ContentLength: SIZE }));
  }
  const key = `${name} ${kind}`;
  times.set(key, [...(times.get(key) ?? []), performance.now() - started]);
}

try {
  for (const s3 of Object.values(targets)) await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const cases: Case[] = [
    'put (Buffer: x-amz-content-sha256 checked)',
    'put (stream: UNSIGNED-PAYLOAD)',
    'get',
  ];
  // Warm-up, then interleaved so both see the same machine load.
  for (const kind of cases) for (const name of ['verifying', 'plain'] as const) await once(name, kind, 0);
  times.clear();
  for (const kind of cases) {
    for (let i = 0; i < N; i++) {
      for (const name of i % 2 ? (['plain', 'verifying'] as const) : (['verifying', 'plain'] as const)) {
        await once(name, kind, i);
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  console.log(`16 MiB objects, N=${N} each, median ms (MiB/s):`);
  for (const kind of cases) {
    const v = median(times.get(`verifying ${kind}`) ?? []);
    const p = median(times.get(`plain ${kind}`) ?? []);
    const rate = (ms: number) => (16 / (ms / 1000)).toFixed(0);
    console.log(
      `  ${kind.padEnd(44)} verifying ${v.toFixed(1)} (${rate(v)})  plain ${p.toFixed(1)} (${rate(p)})  ratio ${(v / p).toFixed(3)}`,
    );
  }
  // The verification's own CPU cost, without the noise of a loaded machine's I/O.
  const url = new URL(
    await getSignedUrl(
      targets.verifying,
      new GetObjectCommand({ Bucket: BUCKET, Key: 'o0', Range: 'bytes=0-99' }),
      {
        expiresIn: 300,
      },
    ),
  );
  const request = {
    method: 'GET',
    target: url.pathname + url.search,
    headers: { host: url.host, range: 'bytes=0-99' },
  };
  const options = {
    service: 's3',
    region: REGION,
    secretFor: () => LOCAL_CREDENTIALS.secretAccessKey,
    nowMs: Date.now(),
  };
  const rounds = 20_000;
  let started = performance.now();
  for (let i = 0; i < rounds; i++) if (!verifySigV4(request, options).ok) throw new Error('did not verify');
  const perRequestUs = ((performance.now() - started) * 1000) / rounds;
  started = performance.now();
  for (let i = 0; i < 8; i++) createHash('sha256').update(body).digest();
  const sha256Ms = (performance.now() - started) / 8;
  console.log(`  verifySigV4 (presigned GET, Range signed): ${perRequestUs.toFixed(1)} µs per request`);
  console.log(`  SHA-256 of 16 MiB (the x-amz-content-sha256 check): ${sha256Ms.toFixed(1)} ms`);
} finally {
  await Promise.all([verifying.stop(), plain.stop()]);
  await rm(work, { recursive: true, force: true });
}
