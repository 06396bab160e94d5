import { open } from 'node:fs/promises';
import { VolsnapError } from '../core/errors.ts';
import type { ApiClient } from './api-client.ts';
import { putObject } from './transfer.ts';

/**
 * Uploads a local file for import: asks for presigned part URLs, PUTs the parts (two at a time, so
 * memory stays at about two parts), and returns what the import needs to join them.
 */
export async function uploadFile(
  api: ApiClient,
  path: string,
  bar?: { update: (done: number, total: number) => void; stop: () => void },
): Promise<{ ref: string; uploadId: string; parts: { partNumber: number; etag: string }[] }> {
  const file = await open(path).catch((cause) => {
    throw new VolsnapError('request.invalid', `Cannot read ${path}: ${(cause as Error).message}`);
  });
  try {
    const { size } = await file.stat();
    const upload = await api.createUpload(size);
    const parts: { partNumber: number; etag: string }[] = [];
    let sent = 0;
    const queue = [...upload.parts];
    const worker = async () => {
      for (let part = queue.shift(); part; part = queue.shift()) {
        const start = (part.partNumber - 1) * upload.partSize;
        const length = Math.min(upload.partSize, size - start);
        const body = Buffer.alloc(length);
        await file.read(body, 0, length, start);
        parts.push({ partNumber: part.partNumber, etag: await putObject(part.url, body) });
        sent += length;
        bar?.update(sent, size);
      }
    };
    await Promise.all([worker(), worker()]);
    return {
      ref: upload.ref,
      uploadId: upload.uploadId,
      parts: parts.sort((a, b) => a.partNumber - b.partNumber),
    };
  } finally {
    bar?.stop();
    await file.close();
  }
}
