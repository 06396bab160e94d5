// `npm run bench [-- --size 1GiB --quick --runs 3]` (`--quick`: 256 MiB, one run) (`-- --scale`: the table-size bench instead;
// `-- --sizes 256MiB,1GiB,4GiB`: how time, memory and requests grow with the size, scripts/bench/sizes.ts): measures volsnap's data path on deterministic
// images against a local cloud it starts itself, side by side with the tools users would pick
// instead (restic, rclone, the AWS CLI) on the same images and the same emulator (s3rver), and with the limits of
// the machine (a plain read, sha256sum, OpenSSL's SHA-256) and of the emulator (PUTs and GETs of
// 512 KiB and 16 MiB objects at concurrency 16). Every volsnap row also reports the S3 and DynamoDB
// requests it made (the emulators' in-memory counts, scripts/bench/requests.ts), which the cost
// table prices (scripts/bench/cost.ts). Writes bench/results.json, bench/results.md and
// bench/results.svg.
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { s3ClientConfig } from '../lib/adapters/aws-clients.ts';
import { parseSize } from '../lib/cli/units.ts';
import { makeExt4Image } from './bench/compressible.ts';
import { costMarkdown, costTable, type MeasuredForCost, US_EAST_1_PRICES } from './bench/cost.ts';
import { type CpuSeconds, cloudProcesses, cpuDuring, cpuTotal } from './bench/cpu.ts';
import { EBS_DOWNLOAD, EBS_UPLOAD, EbsBench } from './bench/ebs.ts';
import { perGiB, RequestCounter, type RequestCounts, totalOf } from './bench/requests.ts';
import { runScaleBench } from './bench/scale.ts';
import { runSizesBench } from './bench/sizes.ts';
import { makeSparseImage, SPARSE_FACTOR, sameSparseContent } from './bench/sparse.ts';
import { BLOCK, buildCli, makeImages, median, run, sha256, time, warmFile } from './bench/tools.ts';
import { LOCAL_CREDENTIALS, startLocalCloud } from './local-cloud/cloud.ts';
import { startS3Emulator } from './local-cloud/processes.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({
  options: {
    size: { type: 'string' },
    sizes: { type: 'string' },
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    scale: { type: 'boolean', default: false },
    cost: { type: 'boolean', default: false },
  },
});
const size = parseSize(values.size ?? (values.quick ? '256MiB' : '1GiB'));
// `--quick` is one run of everything at 256 MiB (under 5 minutes on 2 cores); the reference is the median of 3.
const runs = Number(values.runs ?? (values.quick ? 1 : 3));
const work = join(ROOT, 'bench', 'work');
/** Debian's awscli where installed (/usr/bin/aws), else whichever `aws` is on PATH (.ci/run installs Debian's when none is). */
const awsCli = (await stat('/usr/bin/aws').then(
  () => true,
  () => false,
))
  ? '/usr/bin/aws'
  : 'aws';
const AWSCLI_UP = 'aws s3 cp up (raw image)';
const AWSCLI_DOWN = 'aws s3 cp down (raw image)';

/** One thing measured: its times (one per run), and what else each run recorded. */
interface Measure {
  name: string;
  group: 'limit' | 'volsnap' | 'peer';
  seconds: number[];
  /** Image bytes the operation covers (for MB/s). */
  bytes: number;
  maxRssKiB: number[];
  storedBytes?: number;
  requests?: number;
  /** The S3 and DynamoDB requests of its last run (volsnap's rows), both regions. */
  counts?: RequestCounts;
  /** CPU seconds of its last run, by process (scripts/bench/cpu.ts): `client` is the CLI or the peer tool. */
  cpu?: CpuSeconds;
  note?: string;
}

const measures = new Map<string, Measure>();
function measure(name: string, group: Measure['group'], bytes = size): Measure {
  let m = measures.get(name);
  if (!m) {
    m = { name, group, seconds: [], bytes, maxRssKiB: [] };
    measures.set(name, m);
  }
  return m;
}

function record(m: Measure, result: { seconds: number; maxRssKiB?: number }, seconds = result.seconds) {
  m.seconds.push(seconds);
  if (result.maxRssKiB !== undefined) m.maxRssKiB.push(result.maxRssKiB);
}

/** Bytes of files under a directory whose path contains `part` (s3rver keeps one file per object). */
async function duBytes(dir: string, part = ''): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile() && entry.name.endsWith('._S3rver_object') && path.includes(part))
      total += (await stat(path)).size;
  }
  return total;
}

/** The emulator's own ceiling: the image's non-zero bytes as objects of `objectSize`, PUT then GET, 16 at a time. */
async function ceiling(
  s3: S3Client,
  bucket: string,
  image: Buffer,
  objectSize: number,
  label: string,
  stateFile: string,
) {
  const pieces: Buffer[] = [];
  for (let at = 0; at < image.length; at += BLOCK) {
    const block = image.subarray(at, at + BLOCK);
    if (block.some((b) => b !== 0)) pieces.push(block);
  }
  const data = Buffer.concat(pieces);
  const objects = Math.ceil(data.length / objectSize);
  const limit = pLimit(16);
  const key = (i: number) => `ceiling/${label}/${objectSize}/${i}`;
  // The client is this process: its CPU is what the `local cloud` kind counts (the cloud is idle meanwhile).
  const watched = () => cloudProcesses(stateFile);
  let started = process.hrtime.bigint();
  const { cpu: putCpu } = await cpuDuring(watched, () =>
    Promise.all(
      Array.from({ length: objects }, (_, i) =>
        limit(() =>
          s3.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key(i),
              Body: data.subarray(i * objectSize, (i + 1) * objectSize),
            }),
          ),
        ),
      ),
    ),
  );
  const put = Number(process.hrtime.bigint() - started) / 1e9;
  started = process.hrtime.bigint();
  const { cpu: getCpu } = await cpuDuring(watched, () =>
    Promise.all(
      Array.from({ length: objects }, (_, i) =>
        limit(async () => {
          const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key(i) }));
          await got.Body?.transformToByteArray();
        }),
      ),
    ),
  );
  const get = Number(process.hrtime.bigint() - started) / 1e9;
  return { put, get, objects, bytes: data.length, putCpu, getCpu };
}

// biome-ignore lint/complexity/noExcessiveLinesPerFunction: one benchmark run read top to bottom; #20 reworks it into measured steps.
async function main() {
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const image = join(work, 'image.raw');
  const changed = join(work, 'image-1pct.raw');
  console.log(`Making ${size / 2 ** 20} MiB test images…`);
  const shape = await makeImages(size, image, changed);
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  const started = Date.now();
  const nonZeroBytes = (size / BLOCK - shape.zeroBlocks) * BLOCK;
  const sparse = join(work, 'sparse.raw');
  const sparseSize = await makeSparseImage(image, sparse);
  const sparseLabel = `${(sparseSize / 2 ** 30).toFixed(0)} GiB sparse holding the image`;
  console.log('Making an ext4 image of /usr/share (compressible data)…');
  const ext4 = join(work, 'ext4.img');
  const ext4Files = await makeExt4Image(ext4, size, join(work, 'ext4-tree'));
  if (ext4Files === undefined)
    console.log('mkfs.ext4 is missing (Debian: e2fsprogs); the ext4 rows are skipped.');
  const ext4Label = `ext4 image of /usr/share (${((ext4Files ?? 0) / 2 ** 20).toFixed(0)} MiB of files)`;
  const ext4Snapshot = `volsnap full snapshot, ${ext4Label}`;
  const ext4Backup = `restic backup (full), ${ext4Label}`;
  const sparseSnapshotName = `volsnap snapshot of a ${sparseLabel}`;
  const sparseRestoreName = `volsnap restore of a ${sparseLabel}`;
  const changedBytes = shape.changedBlocks * BLOCK;

  const peers = {
    restic: await run('restic', ['version']).then(
      (r) => r.stdout.trim().split(' ').slice(0, 2).join(' '),
      () => undefined,
    ),
    rclone: await run('rclone', ['version']).then(
      (r) => r.stdout.split('\n')[0]?.trim(),
      () => undefined,
    ),
    openssl: await run('openssl', ['version']).then(
      (r) => r.stdout.trim(),
      () => undefined,
    ),
    awscli: await run(awsCli, ['--version']).then(
      (r) => `${r.stdout}${r.stderr}`.trim().split(' ')[0],
      () => undefined,
    ),
  };
  for (const [name, version] of Object.entries(peers))
    if (!version)
      console.log(`${name} is not installed (Debian: apt-get install ${name}); its rows are skipped.`);
  const imageSha256 = await sha256(image);

  const cloud = await startLocalCloud({
    dataDir: join(work, 'cloud'),
    portBase: 'auto',
    fresh: true,
    // The reaper on its minute, as on AWS: on a loaded machine a part can time out past its retries
    // and be dead-lettered, and only the reaper sends it again (seen at a load average of 27: the
    // run waited for ever). Its few requests a minute may fall into a row's counts.
    schedules: true,
  });
  // Every S3 and DynamoDB request, the functions' and the CLI's presigned ones, counted where it arrives.
  const counter = new RequestCounter(cloud.regions);
  /** Runs one volsnap operation and keeps what it requested on its row. */
  const stateFile = join(work, 'cloud', 'cloud-state.json');
  const counted = async <T extends { cpuSeconds?: number | undefined }>(
    m: Measure,
    operation: () => Promise<T>,
  ): Promise<T> => {
    const { result: counting, cpu } = await cpuDuring(
      () => cloudProcesses(stateFile),
      () => counter.during(operation),
    );
    const { result, requests } = counting;
    m.counts = requests;
    m.requests = totalOf(requests.s3);
    m.cpu = { client: result.cpuSeconds ?? Number.NaN, ...cpu };
    return result;
  };
  // The peers' S3: the same emulator (s3rver), in its own process, over https (restic needs it).
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    join(work, 'peer-key.pem'),
    '-out',
    join(work, 'peer-cert.pem'),
  ]);
  // It verifies signatures as the cloud's does; restic and rclone sign for us-east-1 when given no region.
  const peerS3 = await startS3Emulator(join(work, 'peer-s3'), 0, {
    regions: ['us-east-1'],
    tls: { keyPath: join(work, 'peer-key.pem'), certPath: join(work, 'peer-cert.pem') },
  });
  const peerEndpoint = `https://127.0.0.1:${peerS3.port}`;
  /** A peer tool's run, recorded on `m` with the CPU it and its s3rver used. */
  const peer = async (m: Measure, command: string, args: string[], env: NodeJS.ProcessEnv) => {
    const s3Pid = peerS3.child.pid;
    const { result, cpu } = await cpuDuring(
      async () => ({ s3: s3Pid === undefined ? [] : [s3Pid] }),
      () => time(command, args, env),
    );
    m.cpu = { client: result.cpuSeconds ?? Number.NaN, ...cpu };
    record(m, result);
    return result;
  };
  const { AWS_CA_BUNDLE: _bundle, ...inherited } = process.env;
  const peerEnv = {
    ...inherited,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    RESTIC_PASSWORD: 'bench',
    RESTIC_CACHE_DIR: join(work, 'restic-cache'),
    RCLONE_CONFIG_PEER_TYPE: 's3',
    RCLONE_CONFIG_PEER_PROVIDER: 'Other',
    RCLONE_CONFIG_PEER_ENDPOINT: peerEndpoint,
    RCLONE_CONFIG_PEER_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    RCLONE_CONFIG_PEER_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    RCLONE_CONFIG_PEER_FORCE_PATH_STYLE: 'true',
    // rclone trusts our certificate through its own option; the Go AWS SDK it uses fails on any
    // AWS_CA_BUNDLE (some machines set one), so that is left out below.
    RCLONE_CA_CERT: join(work, 'peer-cert.pem'),
  };
  // The AWS CLI against the same s3rver: path-style, our certificate, checksums only where required
  // (s3rver answers none of the newer default checksums), no profile of the machine's.
  const awsConfig = join(work, 'aws-config');
  await writeFile(awsConfig, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n');
  const { AWS_PROFILE: _profile, ...noProfile } = inherited;
  const awsEnv = {
    ...noProfile,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_CONFIG_FILE: awsConfig,
    AWS_SHARED_CREDENTIALS_FILE: join(work, 'aws-credentials-none'),
    AWS_CA_BUNDLE: join(work, 'peer-cert.pem'),
    AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
  };
  const awsArgs = ['--endpoint-url', peerEndpoint];
  const region1 = cloud.regions[0];
  if (!region1) throw new Error('the local cloud has no region');
  const cloudS3 = new S3Client(
    s3ClientConfig(
      {
        name: region1.name,
        bucket: region1.bucket,
        table: 'x',
        s3Endpoint: region1.s3,
        s3ForcePathStyle: true,
      },
      LOCAL_CREDENTIALS,
    ),
  );
  const cliEnv = { ...process.env, VOLSNAP_CONFIG: cloud.configPath };
  // The CLI as shipped: one bundled module (npm run build:cli), not the sources through tsx.
  const cliBundle = await buildCli(ROOT, join(work, 'volsnap.mjs'));
  const volsnap = (...args: string[]) => time(process.execPath, [cliBundle, '--json', ...args], cliEnv);
  const ebs = await EbsBench.start({ cloud, volsnap });
  const [home, away] = cloud.regions.map((r) => r.name);
  const imageBytes = await open(image, 'r').then(async (f) => {
    const buffer = Buffer.alloc(size);
    await f.read(buffer, 0, size, 0);
    await f.close();
    return buffer;
  });

  try {
    for (let r = 0; r < runs; r++) {
      console.log(`Run ${r + 1} of ${runs}…`);
      // The machine's limits. Every timed read of an image reads it from the page cache
      // (warmFile just before), whichever tool it is.
      await warmFile(image);
      record(measure('plain read (cat)', 'limit'), await time('sh', ['-c', `cat '${image}' > /dev/null`]));
      await warmFile(image);
      record(measure('sha256sum', 'limit'), await time('sha256sum', [image]));
      await warmFile(image);
      if (peers.openssl)
        record(measure('openssl dgst -sha256', 'limit'), await time('openssl', ['dgst', '-sha256', image]));
      // The emulator's: the same non-zero bytes, 16 requests at a time.
      for (const objectSize of [BLOCK, 16 * 2 ** 20]) {
        const label = objectSize === BLOCK ? '512 KiB' : '16 MiB';
        const c = await ceiling(cloudS3, region1.bucket, imageBytes, objectSize, `run${r}`, stateFile);
        const put = measure(`s3rver PUT ${label} objects ×16`, 'limit', c.bytes);
        put.seconds.push(c.put);
        put.requests = c.objects;
        put.cpu = c.putCpu;
        const get = measure(`s3rver GET ${label} objects ×16`, 'limit', c.bytes);
        get.seconds.push(c.get);
        get.requests = c.objects;
        get.cpu = c.getCpu;
      }

      // volsnap, on fresh state every run: a new volume, so the first snapshot is full.
      const volume = JSON.parse(
        (await volsnap('volume', 'create', '--name', `bench-${r}`, '--size', String(size))).stdout,
      );
      const full = measure('volsnap full snapshot', 'volsnap');
      await warmFile(image);
      const first = await counted(full, () =>
        volsnap('snapshot', 'create', '--volume', volume.volumeId, '--file', image),
      );
      record(full, first);
      const firstOut = JSON.parse(first.stdout);
      full.storedBytes = firstOut.report.newStoredBytes;
      const copy = async (snapshotId: string, m: Measure) => {
        const out = await counted(m, () =>
          volsnap('--region', String(away), 'snapshot', 'copy', snapshotId, '--source-region', String(home)),
        );
        const copied = JSON.parse(out.stdout);
        if (copied.state !== 'completed')
          throw new Error(`copy ${copied.snapshotId} ended ${copied.state}: ${copied.stateReason}`);
        // Written by the destination's workers: the server's time, from createdAt to completedAt.
        m.seconds.push((Date.parse(copied.completedAt) - Date.parse(copied.createdAt)) / 1000);
        m.storedBytes = copied.stats.newBytes;
        return copied;
      };
      await copy(firstOut.snapshotId, measure(`volsnap full copy ${home} → ${away}`, 'volsnap'));
      const incremental = measure('volsnap 1% incremental snapshot', 'volsnap');
      await warmFile(changed);
      const second = await counted(incremental, () =>
        volsnap('snapshot', 'create', '--volume', volume.volumeId, '--file', changed),
      );
      record(incremental, second);
      const secondOut = JSON.parse(second.stdout);
      incremental.storedBytes = secondOut.report.newStoredBytes;
      const snapshotId = secondOut.snapshotId;
      const incrementalCopy = measure(`volsnap 1% incremental copy ${home} → ${away}`, 'volsnap');
      const copied = await copy(snapshotId, incrementalCopy);
      incrementalCopy.note = `moved ${(copied.stats.newBytes / 2 ** 20).toFixed(1)} MiB for ${(changedBytes / 2 ** 20).toFixed(1)} MiB changed (${(copied.stats.newBytes / changedBytes).toFixed(2)}×)`;
      // Every format out of the home region and back in, into the other region and another account.
      for (const format of ['vsnap', 'raw', 'qcow2']) {
        const exportMeasure = measure(`volsnap export (${format})`, 'volsnap');
        const exported = JSON.parse(
          (await counted(exportMeasure, () => volsnap('snapshot', 'export', snapshotId, '--format', format)))
            .stdout,
        );
        exportMeasure.seconds.push(
          (Date.parse(exported.completedAt) - Date.parse(exported.createdAt)) / 1000,
        );
        exportMeasure.note = `${(exported.sizeBytes / 2 ** 20).toFixed(1)} MiB object`;
        const { url } = JSON.parse((await volsnap('export', 'url', exported.exportId)).stdout);
        const importMeasure = measure(`volsnap import (${format}, from ${home} into ${away})`, 'volsnap');
        const imported = JSON.parse(
          (
            await counted(importMeasure, () =>
              volsnap(
                '--account',
                'demo-b',
                '--region',
                String(away),
                'snapshot',
                'import',
                '--url',
                url,
                '--format',
                format,
                ...(format === 'raw' ? ['--size', String(size)] : []),
              ),
            )
          ).stdout,
        );
        if (imported.state !== 'completed')
          throw new Error(`import ended ${imported.state}: ${imported.stateReason}`);
        importMeasure.seconds.push(
          (Date.parse(imported.completedAt) - Date.parse(imported.createdAt)) / 1000,
        );
        await volsnap('export', 'delete', exported.exportId);
      }
      const target = join(work, 'restored.raw');
      await rm(target, { force: true });
      const restore = measure('volsnap restore', 'volsnap');
      record(
        restore,
        await counted(restore, () => volsnap('snapshot', 'restore', snapshotId, '--to', target)),
      );
      if ((await sha256(target)) !== (await sha256(changed)))
        throw new Error('the restored image differs from its source');
      // The EBS direct API: the image up, and the full snapshot down (scripts/bench/ebs.ts).
      await ebs.run(
        { upload: measure(EBS_UPLOAD, 'volsnap'), download: measure(EBS_DOWNLOAD, 'volsnap') },
        { image: imageBytes, fullSnapshotId: firstOut.snapshotId, target, imageSha256, stateFile },
      );
      await rm(target, { force: true });

      // The sparse image: its holes skipped on the way in, left as holes on the way out.
      const sparseVolume = JSON.parse(
        (await volsnap('volume', 'create', '--name', `bench-sparse-${r}`, '--size', String(sparseSize)))
          .stdout,
      );
      const sparseSnapshot = measure(sparseSnapshotName, 'volsnap', size);
      await warmFile(sparse);
      const sparseShot = await counted(sparseSnapshot, () =>
        volsnap('snapshot', 'create', '--volume', sparseVolume.volumeId, '--file', sparse),
      );
      record(sparseSnapshot, sparseShot);
      const sparseTarget = join(work, 'restored-sparse.raw');
      await rm(sparseTarget, { force: true });
      const sparseRestore = measure(sparseRestoreName, 'volsnap', size);
      record(
        sparseRestore,
        await counted(sparseRestore, () =>
          volsnap('snapshot', 'restore', JSON.parse(sparseShot.stdout).snapshotId, '--to', sparseTarget),
        ),
      );
      if (!(await sameSparseContent(sparseTarget, sparse)))
        throw new Error('the restored sparse image differs from its source');
      await rm(sparseTarget, { force: true });

      // restic: a fresh repository per run, the image backed up, then its changed version, then restored.
      if (peers.restic) {
        const repo = ['--cacert', join(work, 'peer-cert.pem'), '-r', `s3:${peerEndpoint}/restic/run${r}`];
        await run('restic', [...repo, 'init'], { env: peerEnv });
        const source = join(work, 'restic-src');
        await rm(source, { recursive: true, force: true });
        await mkdir(source);
        await run('cp', ['--sparse=always', image, join(source, 'disk.raw')]);
        const fullBackup = measure('restic backup (full)', 'peer');
        await warmFile(join(source, 'disk.raw'));
        await peer(fullBackup, 'restic', [...repo, 'backup', source], peerEnv);
        fullBackup.storedBytes = await duBytes(join(work, 'peer-s3'), `restic/run${r}`);
        await run('cp', [changed, join(source, 'disk.raw')]);
        await warmFile(join(source, 'disk.raw'));
        await peer(
          measure('restic backup (1% incremental)', 'peer'),
          'restic',
          [...repo, 'backup', source],
          peerEnv,
        );
        const restoreTo = join(work, 'restic-restore');
        await rm(restoreTo, { recursive: true, force: true });
        await peer(
          measure('restic restore', 'peer'),
          'restic',
          [...repo, 'restore', 'latest', '--target', restoreTo],
          peerEnv,
        );
        if ((await sha256(join(restoreTo, source, 'disk.raw'))) !== (await sha256(changed)))
          throw new Error('restic restored something else');
        await rm(restoreTo, { recursive: true, force: true });
      }
      // Compressible data: the ext4 image, by volsnap and by restic, each into fresh storage.
      if (ext4Files !== undefined) {
        const ext4Volume = JSON.parse(
          (await volsnap('volume', 'create', '--name', `bench-ext4-${r}`, '--size', String(size))).stdout,
        );
        const m = measure(ext4Snapshot, 'volsnap');
        await warmFile(ext4);
        const shot = await counted(m, () =>
          volsnap('snapshot', 'create', '--volume', ext4Volume.volumeId, '--file', ext4),
        );
        record(m, shot);
        m.storedBytes = JSON.parse(shot.stdout).report.newStoredBytes;
        if (peers.restic) {
          const repo = [
            '--cacert',
            join(work, 'peer-cert.pem'),
            '-r',
            `s3:${peerEndpoint}/restic-ext4/run${r}`,
          ];
          await run('restic', [...repo, 'init'], { env: peerEnv });
          const source = join(work, 'restic-ext4-src');
          await rm(source, { recursive: true, force: true });
          await mkdir(source);
          await run('cp', ['--sparse=always', ext4, join(source, 'disk.raw')]);
          const backup = measure(ext4Backup, 'peer');
          await warmFile(join(source, 'disk.raw'));
          await peer(backup, 'restic', [...repo, 'backup', source], peerEnv);
          backup.storedBytes = await duBytes(join(work, 'peer-s3'), `restic-ext4/run${r}`);
          await rm(source, { recursive: true, force: true });
        }
      }
      // rclone: the raw image up and down, as one object.
      if (peers.rclone) {
        const up = measure('rclone copy up (raw image)', 'peer');
        await warmFile(image);
        await peer(up, 'rclone', ['copyto', image, `peer:rclone/run${r}/image.raw`], peerEnv);
        up.storedBytes = size;
        const down = join(work, 'rclone-down.raw');
        await peer(
          measure('rclone copy down (raw image)', 'peer'),
          'rclone',
          ['copyto', `peer:rclone/run${r}/image.raw`, down],
          peerEnv,
        );
        await rm(down, { force: true });
      }
      // The AWS CLI: the raw image up and down with `aws s3 cp` (multipart, its default 10 at a time).
      if (peers.awscli) {
        if (r === 0) await run(awsCli, ['s3', 'mb', 's3://awscli', ...awsArgs], { env: awsEnv });
        const up = measure(AWSCLI_UP, 'peer');
        await warmFile(image);
        await peer(
          up,
          awsCli,
          ['s3', 'cp', '--only-show-errors', image, `s3://awscli/run${r}/image.raw`, ...awsArgs],
          awsEnv,
        );
        up.storedBytes = size;
        const down = join(work, 'awscli-down.raw');
        await peer(
          measure(AWSCLI_DOWN, 'peer'),
          awsCli,
          ['s3', 'cp', '--only-show-errors', `s3://awscli/run${r}/image.raw`, down, ...awsArgs],
          awsEnv,
        );
        if ((await sha256(down)) !== imageSha256) throw new Error('aws s3 cp brought down something else');
        await rm(down, { force: true });
      }
    }
  } finally {
    await peerS3.stop();
    await cloud.stop();
  }

  const seconds = (name: string) => measures.get(name)?.seconds ?? [];
  /** Median over runs of volsnap's time ÷ the peer's in the same run (below 1: volsnap is faster). */
  const ratio = (ours: string, theirs: string) => {
    const a = seconds(ours);
    const b = seconds(theirs);
    if (a.length === 0 || b.length === 0) return undefined;
    return Number(median(a.map((x, i) => x / (b[i] ?? Number.NaN))).toFixed(2));
  };
  const rows = [...measures.values()].map((m) => {
    const s = median(m.seconds);
    return {
      name: m.name,
      group: m.group,
      seconds: Number(s.toFixed(2)),
      mbPerSecond: Number((m.bytes / 1e6 / s).toFixed(1)),
      maxRssMiB: m.maxRssKiB.length ? Math.round(Math.max(...m.maxRssKiB) / 1024) : undefined,
      storedMiB: m.storedBytes === undefined ? undefined : Number((m.storedBytes / 2 ** 20).toFixed(1)),
      requests: m.requests,
      s3PerGiB: m.counts ? Math.round(totalOf(perGiB(m.counts, m.bytes).s3)) : undefined,
      dynamodbPerGiB: m.counts ? Math.round(totalOf(perGiB(m.counts, m.bytes).dynamodb)) : undefined,
      counts: m.counts,
      cpu: m.cpu,
      lastRunSeconds: m.seconds.at(-1),
      note: m.note,
      runs: m.seconds.map((x) => Number(x.toFixed(2))),
    };
  });
  const storedRatio = (ours: string, theirs: string) => {
    const a = measures.get(ours)?.storedBytes;
    const b = measures.get(theirs)?.storedBytes;
    return a === undefined || b === undefined ? undefined : Number((a / b).toFixed(3));
  };
  const fullStored = measures.get('volsnap full snapshot')?.storedBytes ?? Number.NaN;
  const copiedBytes =
    measures.get(`volsnap 1% incremental copy ${home} → ${away}`)?.storedBytes ?? Number.NaN;
  const peakRss =
    Math.max(
      ...['volsnap full snapshot', 'volsnap 1% incremental snapshot', 'volsnap restore'].flatMap(
        (n) => measures.get(n)?.maxRssKiB ?? [],
      ),
    ) / 1024;
  const targets = [
    {
      what: 'full snapshot vs restic full backup (time ratio; target ≤ 0.4)',
      value: ratio('volsnap full snapshot', 'restic backup (full)'),
      target: 0.4,
    },
    {
      what: 'full snapshot vs the emulator PUTting the same bytes in 16 MiB objects ×16 (target ≤ 1.15)',
      value: ratio('volsnap full snapshot', 's3rver PUT 16 MiB objects ×16'),
      target: 1.15,
    },
    {
      what: '1% incremental snapshot vs restic incremental backup (target ≤ 0.33)',
      value: ratio('volsnap 1% incremental snapshot', 'restic backup (1% incremental)'),
      target: 0.33,
    },
    {
      what: '1% incremental snapshot vs openssl dgst -sha256 of the image (target ≤ 1.3)',
      value: ratio('volsnap 1% incremental snapshot', 'openssl dgst -sha256'),
      target: 1.3,
    },
    {
      what: 'restore vs restic restore (target ≤ 0.5, i.e. ≥ 2× faster)',
      value: ratio('volsnap restore', 'restic restore'),
      target: 0.5,
    },
    {
      what: 'restore vs the emulator GETting the same bytes in 16 MiB objects ×16 (target ≤ 1.3)',
      value: ratio('volsnap restore', 's3rver GET 16 MiB objects ×16'),
      target: 1.3,
    },
    {
      what: 'stored bytes ÷ non-zero bytes of the image (target ≤ 1.02)',
      value: Number((fullStored / nonZeroBytes).toFixed(3)),
      target: 1.02,
    },
    {
      what: 'incremental copy: bytes moved ÷ bytes changed (target ≤ 1.05)',
      value: Number((copiedBytes / changedBytes).toFixed(3)),
      target: 1.05,
    },
    {
      what: 'ext4 image of real files: bytes volsnap stores ÷ bytes restic stores (target ≤ 1.02)',
      value: storedRatio(ext4Snapshot, ext4Backup),
      target: 1.02,
    },
    {
      what: 'ext4 image of real files: volsnap full snapshot vs restic backup (time ratio; target ≤ 1)',
      value: ratio(ext4Snapshot, ext4Backup),
      target: 1,
    },
    {
      what: `snapshot of the ${SPARSE_FACTOR}× sparse image vs the full snapshot of the image (target ≤ 1.5)`,
      value: ratio(sparseSnapshotName, 'volsnap full snapshot'),
      target: 1.5,
    },
    {
      what: `restore of the ${SPARSE_FACTOR}× sparse image vs the restore of the image (target ≤ 1.5)`,
      value: ratio(sparseRestoreName, 'volsnap restore'),
      target: 1.5,
    },
    { what: 'client peak RSS, MiB (target ≤ 256)', value: Math.round(peakRss), target: 256 },
    ...[
      `volsnap full copy ${home} → ${away}`,
      ...['vsnap', 'raw', 'qcow2'].flatMap((f) => [
        `volsnap export (${f})`,
        `volsnap import (${f}, from ${home} into ${away})`,
      ]),
    ].map((name) => ({
      what: `${name.replace(/^volsnap /, '')} vs the full snapshot (time ratio; target ≤ 1.5)`,
      value: ratio(name, 'volsnap full snapshot'),
      target: 1.5,
    })),
    ...EbsBench.targets(ratio),
  ].map((t) => ({ ...t, met: isMeasured(t.value) && t.value <= t.target }));
  // A peer that is not installed measures nothing: its targets say so rather than "no".
  const verdict = (t: { value: number | undefined; met: boolean }) =>
    t.met ? 'yes' : isMeasured(t.value) ? 'no' : 'not measured';
  // The raw export and import beside the tools that move the same raw image (no target: for reading).
  const peerRatios = [
    ['volsnap export (raw)', [AWSCLI_UP, 'rclone copy up (raw image)']],
    [`volsnap import (raw, from ${home} into ${away})`, [AWSCLI_DOWN, 'rclone copy down (raw image)']],
  ].flatMap(([ours, theirs]) =>
    (theirs as string[]).map((peer) => ({ what: `${ours} ÷ ${peer}`, value: ratio(ours as string, peer) })),
  );
  const cost = costTable(costInputs(rows, size), US_EAST_1_PRICES);
  const result = {
    date: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    versions: { ...peers, s3rver: 's3rver (the local cloud’s emulator)' },
    image: {
      bytes: size,
      blockSize: BLOCK,
      zeroBlocks: shape.zeroBlocks,
      nonZeroBytes,
      changedBlocks: shape.changedBlocks,
    },
    runs,
    loadAverage: { start: loadAtStart, end: loadavg()[0] },
    minutes: Number(((Date.now() - started) / 60_000).toFixed(1)),
    results: rows,
    targets,
    peerRatios,
    cost: { prices: US_EAST_1_PRICES, rows: cost },
  };
  const cell = (v: unknown) => (v === undefined ? '-' : String(v));
  const table = [
    `volsnap bench: ${size / 2 ** 20} MiB image (${shape.zeroBlocks} of ${size / BLOCK} blocks zero, ${shape.changedBlocks} changed for the incremental), median of ${runs}, ${result.machine.cpus} cores, Node ${process.version}, ${Object.values(peers).filter(Boolean).join(', ')}, ${result.date.slice(0, 10)}. restic, rclone and the AWS CLI talk to their own s3rver over https (restic requires it); volsnap to its local cloud's s3rver over http. Load average (1-minute) ${loadAtStart.toFixed(1)} at the start, ${(loadavg()[0] ?? Number.NaN).toFixed(1)} at the end; ${result.minutes} min in all. S3 and DynamoDB requests are what the local cloud's emulators counted during the row's last run, both regions, the CLI's presigned requests included, per GiB of image.`,
    '',
    '| what | seconds | MB/s of image | client peak RSS | stored | S3 requests | S3 req/GiB | DynamoDB req/GiB | note |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.seconds} | ${r.mbPerSecond} | ${r.maxRssMiB === undefined ? '-' : `${r.maxRssMiB} MiB`} | ${r.storedMiB === undefined ? '-' : `${r.storedMiB} MiB`} | ${cell(r.requests)} | ${cell(r.s3PerGiB)} | ${cell(r.dynamodbPerGiB)} | ${r.note ?? ''} |`,
    ),
    '',
    '| target (ratios are volsnap ÷ peer per run pair, median) | value | met |',
    '|---|---:|:---:|',
    ...targets.map((t) => `| ${t.what} | ${cell(t.value)} | ${verdict(t)} |`),
    '',
    cpuSection(rows),
    '',
    '| raw export and import beside the tools moving the same raw image (time ratio, no target) | value |',
    '|---|---:|',
    ...peerRatios.map((t) => `| ${t.what} | ${cell(t.value)} |`),
    '',
    costSection(cost),
  ].join('\n');
  await mkdir(join(ROOT, 'bench'), { recursive: true });
  const suffix = values.quick ? '-quick' : '';
  await writeFile(join(ROOT, 'bench', `results${suffix}.json`), `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(join(ROOT, 'bench', `results${suffix}.md`), `${table}\n`);
  await writeFile(
    join(ROOT, 'bench', `results${suffix}.svg`),
    chart(rows, `${size / 2 ** 20} MiB image, median of ${runs}, ${result.machine.cpus} cores`),
  );
  console.log(`\n${table}\n\nWritten to bench/results${suffix}.json, .md and .svg.`);
  await rm(work, { recursive: true, force: true });
}

/** Columns of the CPU table: process kinds of scripts/bench/cpu.ts, in this order. */
const CPU_COLUMNS = [
  ['client', 'client (CLI or tool)'],
  ['region', 'functions'],
  ['s3', 's3rver'],
  ['dynamodb', 'DynamoDB Local'],
  ['guard', 'its SigV4 guard'],
  ['local cloud', 'bench and local cloud'],
] as const;

/**
 * Where each operation's CPU went in its last run: seconds of CPU by process, their sum, and the
 * sum ÷ wall time (how many cores were busy: on 2 cores, 2 means the machine was the bound).
 */
function cpuSection(
  rows: { name: string; cpu?: CpuSeconds | undefined; lastRunSeconds?: number | undefined }[],
): string {
  const measured = rows.filter((r) => r.cpu !== undefined);
  const cell = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(2));
  return [
    `CPU seconds by process in each operation's last run (user + system, from /proc and GNU time; scripts/bench/cpu.ts). The peers' s3rver is theirs; for the emulator's own ceilings the client is the bench process. "cores busy" is the sum ÷ the run's wall time, of the ${cpus().length} cores.`,
    '',
    `| what | wall s | ${CPU_COLUMNS.map(([, label]) => label).join(' | ')} | CPU-s in all | cores busy |`,
    `|---|---:|${CPU_COLUMNS.map(() => '---:').join('|')}|---:|---:|`,
    ...measured.map((r) => {
      const cpu = r.cpu ?? {};
      const total = cpuTotal(Object.fromEntries(Object.entries(cpu).filter(([, v]) => Number.isFinite(v))));
      const wall = r.lastRunSeconds ?? Number.NaN;
      return `| ${r.name} | ${cell(wall)} | ${CPU_COLUMNS.map(([kind]) => cell(cpu[kind])).join(' | ')} | ${cell(total)} | ${cell(total / wall)} |`;
    }),
  ].join('\n');
}

/** The bench's rows as bench/results.json keeps them (what the cost table reads). */
interface ResultRow {
  name: string;
  storedMiB?: number | undefined;
  counts?: RequestCounts | undefined;
}

/** What the cost table needs, from the rows of one run on an image of `imageBytes`. */
function costInputs(rows: ResultRow[], imageBytes: number): MeasuredForCost {
  const row = (name: string) => rows.find((r) => r.name === name || r.name.startsWith(`${name} `));
  const requests = (name: string) => perGiB(row(name)?.counts ?? { s3: {}, dynamodb: {} }, imageBytes);
  const perByte = (name: string) => ((row(name)?.storedMiB ?? Number.NaN) * 2 ** 20) / imageBytes;
  return {
    storedPerImageByte: perByte('volsnap full snapshot'),
    fullSnapshot: requests('volsnap full snapshot'),
    incrementalSnapshot: requests('volsnap 1% incremental snapshot'),
    incrementalStoredPerImageByte: perByte('volsnap 1% incremental snapshot'),
    fullCopy: requests('volsnap full copy'),
    incrementalCopy: requests('volsnap 1% incremental copy'),
    fullCopyMovedPerImageByte: perByte('volsnap full copy'),
    incrementalCopyMovedPerImageByte: perByte('volsnap 1% incremental copy'),
    restore: requests('volsnap restore'),
  };
}

const COST_HEADING = 'Cost of a 1 TiB volume shaped like this image';

/** The cost paragraph and table of results.md. */
function costSection(cost: ReturnType<typeof costTable>): string {
  const p = US_EAST_1_PRICES;
  return [
    `${COST_HEADING} (a quarter zero, incompressible), from the requests and bytes above at ${p.region} list prices (S3 Standard $${p.s3StoragePerGBMonth}/GB-month, $${p.s3WritePer1000} per 1,000 PUT/COPY/POST/LIST, $${p.s3ReadPer1000} per 1,000 GET/HEAD, DELETE free; DynamoDB on-demand $${p.dynamodbWritePerMillion} per million write and $${p.dynamodbReadPerMillion} per million read request units, each request counted as one unit, two for a transaction: a lower bound; inter-region transfer $${p.interRegionTransferPerGB}/GB). Snapshot and copy requests are split into a part made once per operation and a part per GiB moved, from the full and the 1% incremental of the same run (scripts/bench/cost.ts, \`scaledRequests\`); the restore's are scaled linearly (an upper bound). Lambda, API Gateway and SQS are not priced. Sources: ${p.sources.join('; ')}.`,
    '',
    costMarkdown(cost, p),
  ].join('\n');
}

/** `--cost`: the cost section of bench/results.md again, from bench/results.json (after a change to the cost model). */
async function rewriteCost(): Promise<void> {
  const json = JSON.parse(await readFile(join(ROOT, 'bench', 'results.json'), 'utf8'));
  const cost = costTable(costInputs(json.results, json.image.bytes), US_EAST_1_PRICES);
  json.cost = { prices: US_EAST_1_PRICES, rows: cost };
  await writeFile(join(ROOT, 'bench', 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  const md = await readFile(join(ROOT, 'bench', 'results.md'), 'utf8');
  const at = md.indexOf(COST_HEADING);
  await writeFile(
    join(ROOT, 'bench', 'results.md'),
    `${at < 0 ? `${md}\n` : md.slice(0, at)}${costSection(cost)}\n`,
  );
  console.log(costSection(cost));
}

/** A horizontal bar chart of seconds per row, coloured by group: people would rather look than read. */
function chart(rows: { name: string; group: string; seconds: number }[], subtitle: string): string {
  const colours: Record<string, string> = { volsnap: '#2563eb', peer: '#f97316', limit: '#9ca3af' };
  const max = Math.max(...rows.map((r) => r.seconds));
  const barHeight = 22;
  const left = 330;
  const width = 900;
  const top = 50;
  const height = top + rows.length * (barHeight + 6) + 30;
  const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = rows
    .map((r, i) => {
      const y = top + i * (barHeight + 6);
      const w = Math.max(1, ((width - left - 80) * r.seconds) / max);
      return `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${xml(r.name)}</text><rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${colours[r.group] ?? '#999'}"/><text x="${left + w + 6}" y="${y + 15}">${r.seconds} s</text>`;
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12" role="img">
<title>volsnap bench: seconds per operation, volsnap beside restic, rclone and the machine's limits</title>
<text x="10" y="20" font-size="15" font-weight="bold">volsnap bench: seconds (shorter is better)</text>
<text x="10" y="38">${xml(subtitle)}; blue volsnap, orange restic/rclone, grey machine and emulator limits</text>
${bars}
</svg>
`;
}

/** Whether a target's ratio was measured (its peer ran, and the ratio is a finite number). */
function isMeasured(value: number | undefined): value is number {
  return value !== undefined && Number.isFinite(value);
}

// --scale: the table-size bench (scripts/bench/scale.ts) instead of the data path.
if (values.scale) await runScaleBench(ROOT);
else if (values.cost) await rewriteCost();
else if (values.sizes) await runSizesBench(ROOT, values.sizes.split(',').map(parseSize), runs);
else await main();
