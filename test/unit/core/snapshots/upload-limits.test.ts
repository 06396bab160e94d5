import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryObjectStore } from '../../../../lib/adapters/memory/objects.ts';
import { createZstdCompressor } from '../../../../lib/adapters/zstd.ts';
import { ApiClient } from '../../../../lib/client/api-client.ts';
import { uploadFile } from '../../../../lib/client/upload.ts';
import { BLOCK_SIZE, MAX_VOLUME_SIZE } from '../../../../lib/core/format/blocks.ts';
import { encodeManifest } from '../../../../lib/core/format/manifest.ts';
import { SnapshotWriter } from '../../../../lib/core/format/snapshot-writer.ts';
import type { Caller } from '../../../../lib/core/identity/identity.ts';
import { multipartPartSize, ObjectLayout, S3_LIMITS } from '../../../../lib/core/ports/objects.ts';
import { type SnapshotImporter, UPLOAD_URLS_PER_REQUEST } from '../../../../lib/core/tasks/imports.ts';
import { testCaller } from '../../../support/callers.ts';
import { memoryRegion } from '../../../support/memory-region.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const zstd = createZstdCompressor();

function region(imports: { uploadPartSize?: number; urlsPerRequest?: number } = {}) {
  const r = memoryRegion('r', { settings: { tuning: { imports } } });
  const { clock, snapshots, volumes, importer, exports } = r;
  return { clock, objects: r.ports.objects, queue: r.ports.queue, snapshots, volumes, importer, exports };
}

let alice: Caller;
beforeEach(() => {
  alice = testCaller();
});

describe("S3's multipart limits", () => {
  it('part sizes stay within 5 MiB–5 GiB and 10,000 parts, in whole blocks, up to 5 TiB; none beyond', () => {
    for (const size of [1, 5 * MiB, 625 * GiB, 626 * GiB, TiB, 5 * TiB]) {
      const part = multipartPartSize(size, 64 * MiB, BLOCK_SIZE) as number;
      expect(part, String(size)).toBeGreaterThanOrEqual(64 * MiB);
      expect(part).toBeLessThanOrEqual(S3_LIMITS.maxPartSize);
      expect(part % BLOCK_SIZE).toBe(0);
      expect(Math.ceil(size / part)).toBeLessThanOrEqual(S3_LIMITS.maxParts);
    }
    expect(multipartPartSize(5 * TiB + 1, 64 * MiB, BLOCK_SIZE)).toBeUndefined();
    expect(multipartPartSize(64 * TiB, 64 * MiB, BLOCK_SIZE)).toBeUndefined();
  });

  it('POST /v1/uploads: 64 TiB is a 400; 5 TiB gets parts within the limits and one page of URLs, the rest on request', async () => {
    const { importer } = region();
    await expect(importer.createUpload(alice, 64 * TiB)).rejects.toMatchObject({
      code: 'request.invalid',
      message: /1 byte to 5 TiB/,
    });
    await expect(importer.createUpload(alice, 5 * TiB + 1)).rejects.toMatchObject({
      code: 'request.invalid',
    });
    const big = await importer.createUpload(alice, 5 * TiB);
    expect(big.partSize).toBeLessThanOrEqual(5 * GiB);
    expect(big.partSize).toBeGreaterThanOrEqual(5 * MiB);
    expect(big.partCount).toBeLessThanOrEqual(10_000);
    expect(big.partCount * big.partSize).toBeGreaterThanOrEqual(5 * TiB);
    expect(big.parts).toHaveLength(UPLOAD_URLS_PER_REQUEST);
    expect(big.nextPart).toBe(UPLOAD_URLS_PER_REQUEST + 1);
    const numbers = big.parts.map((p) => p.partNumber);
    for (let next = big.nextPart; next !== undefined; ) {
      const page = await importer.uploadPartUrls(alice, big.ref, big.uploadId, next, big.partCount);
      expect(page.parts.length).toBeLessThanOrEqual(UPLOAD_URLS_PER_REQUEST);
      numbers.push(...page.parts.map((p) => p.partNumber));
      next = page.nextPart;
    }
    expect(numbers).toEqual(Array.from({ length: big.partCount }, (_, i) => i + 1));
    await expect(importer.uploadPartUrls(alice, big.ref, big.uploadId, 10_001)).rejects.toMatchObject({
      code: 'request.invalid',
    });
    await expect(importer.uploadPartUrls(alice, 'segments/x', big.uploadId, 1)).rejects.toMatchObject({
      code: 'request.invalid',
    });
    // Another account's ref names its own area, never the owner's.
    const bob = testCaller();
    const theirs = await importer.uploadPartUrls(bob, big.ref, big.uploadId, 1);
    expect(theirs.parts[0]?.url).toContain(`uploads/files/${bob.accountId}/`);
    const small = await importer.createUpload(alice, 1000);
    expect(small).toMatchObject({ partCount: 1, parts: [{ partNumber: 1 }] });
    expect(small.nextPart).toBeUndefined();
  });

  it('volumes are at most 64 TiB', async () => {
    const { volumes } = region();
    await expect(
      volumes.register(alice, { name: 'huge', sizeBytes: MAX_VOLUME_SIZE + BLOCK_SIZE }),
    ).rejects.toMatchObject({ code: 'volume.invalidSize', status: 400, message: /at most 64 TiB/ });
    await expect(volumes.register(alice, { name: 'huge', sizeBytes: 2 ** 50 })).rejects.toMatchObject({
      code: 'volume.invalidSize',
    });
    expect((await volumes.register(alice, { name: 'max', sizeBytes: MAX_VOLUME_SIZE })).sizeBytes).toBe(
      64 * TiB,
    );
  });

  it('exports of large volumes grow their parts to stay within 10,000; a raw export above 5 TiB is a 400', async () => {
    const { snapshots, volumes, objects, exports } = region();
    const sparse = async (sizeBytes: number) => {
      const volume = await volumes.register(alice, { name: 'big', sizeBytes });
      const snapshot = await snapshots.create(alice, { volumeId: volume.volumeId });
      const writer = new SnapshotWriter({
        volumeSize: sizeBytes,
        compressor: zstd,
        nextSegmentId: async () =>
          (await snapshots.uploadUrls(alice, snapshot.snapshotId, 1)).segments[0]?.segmentId ?? '',
        store: (id, object) => objects.put(ObjectLayout.segment(alice.accountId, id), object),
      });
      await writer.add(0, randomBytes(BLOCK_SIZE));
      await objects.put(
        ObjectLayout.manifestUpload(snapshot.snapshotId),
        encodeManifest(await writer.finish()),
      );
      return snapshots.complete(alice, snapshot.snapshotId);
    };
    const oneTiB = await sparse(TiB);
    for (const format of ['raw', 'qcow2'] as const) {
      const started = await exports.start(alice, oneTiB.snapshotId, format);
      expect(started.parts, format).toBeLessThanOrEqual(10_000);
      // A raw image is the full terabyte: 16,384 parts of 64 MiB would be too many.
      if (format === 'raw') expect(started.partSize).toBeGreaterThan(64 * MiB);
      expect(started.partSize % BLOCK_SIZE).toBe(0);
      expect(started.parts * started.partSize).toBeGreaterThanOrEqual(started.size);
    }
    const small = await exports.start(alice, oneTiB.snapshotId, 'vsnap');
    expect(small.partSize).toBe(64 * MiB);
    const eightTiB = await sparse(8 * TiB);
    await expect(exports.start(alice, eightTiB.snapshotId, 'raw')).rejects.toMatchObject({
      code: 'request.invalid',
      message: /above S3's 5 TiB object limit.*vsnap or qcow2/,
    });
    expect((await exports.start(alice, eightTiB.snapshotId, 'vsnap')).parts).toBe(1);
  });
});

describe('snapshot import --file (lib/client/upload.ts) with paged part URLs', () => {
  let server: Server;
  let endpoint: string;
  const objects = new MemoryObjectStore();
  const caller = testCaller();
  let importer: SnapshotImporter;
  let pageRequests = 0;

  beforeAll(async () => {
    // The region's upload routes over a memory store whose part URLs point back at this server.
    server = createServer(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const url = new URL(request.url ?? '/', endpoint);
      const send = (status: number, value: unknown, headers: Record<string, string> = {}) => {
        response.writeHead(status, { 'content-type': 'application/json', ...headers });
        response.end(JSON.stringify(value));
      };
      if (request.method === 'PUT' && url.pathname.startsWith('/part/')) {
        const etag = await objects.uploadPart(
          decodeURIComponent(url.pathname.slice('/part/'.length)),
          url.searchParams.get('uploadId') ?? '',
          Number(url.searchParams.get('partNumber')),
          body,
        );
        return send(200, {}, { etag });
      }
      if (url.pathname === '/v1/uploads')
        return send(201, await importer.createUpload(caller, JSON.parse(String(body)).sizeBytes));
      const more = /^\/v1\/uploads\/([^/]+)\/part-urls$/.exec(url.pathname);
      if (more) {
        pageRequests++;
        const { uploadId, fromPart } = JSON.parse(String(body));
        return send(
          200,
          await importer.uploadPartUrls(caller, decodeURIComponent(more[1] ?? ''), uploadId, fromPart),
        );
      }
      send(404, { error: 'x.notFound', message: 'no', requestId: 'r' });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const store = Object.create(objects) as MemoryObjectStore;
    store.presignUploadPart = async (key, uploadId, partNumber) =>
      `${endpoint}/part/${encodeURIComponent(key)}?uploadId=${uploadId}&partNumber=${partNumber}`;
    importer = memoryRegion('r', {
      objects: store,
      settings: { tuning: { imports: { uploadPartSize: 5 * MiB, urlsPerRequest: 2 } } },
    }).importer;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('uploads every part of a file whose part URLs come in several pages, each part once', async () => {
    const data = randomBytes(5 * 5 * MiB + 12345);
    const path = join(mkdtempSync(join(tmpdir(), 'volsnap-upload-')), 'disk.raw');
    writeFileSync(path, data);
    const api = new ApiClient({ endpoint, apiKey: `vsk_key-0123456789abcdef_${'a'.repeat(43)}` });
    const uploaded = await uploadFile(api, path);
    expect(uploaded.parts.map((p) => p.partNumber)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(pageRequests).toBe(2);
    const key = ObjectLayout.fileUpload(caller.accountId, uploaded.ref);
    await objects.completeMultipart(key, uploaded.uploadId, uploaded.parts);
    expect(Buffer.from((await objects.get(key)) ?? []).equals(data)).toBe(true);
  });
});
