import { open } from 'node:fs/promises';
import { VolsnapError } from '../core/shared/errors.ts';
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
    // The first page of part URLs comes with the upload; the rest are asked for a page at a time,
    // when the queue runs dry (URLs live hours: asking as we go keeps them fresh and answers small).
    const queue = [...upload.parts];
    let nextPart = upload.nextPart;
    let asking: Promise<void> | undefined;
    const refill = async () => {
      if (nextPart === undefined || nextPart > upload.partCount) return;
      const page = await api.uploadPartUrls(upload.ref, upload.uploadId, nextPart);
      queue.push(...page.parts.filter((p) => p.partNumber <= upload.partCount));
      nextPart = page.nextPart;
    };
    const take = async () => {
      while (queue.length === 0 && nextPart !== undefined && nextPart <= upload.partCount) {
        asking ??= refill().finally(() => {
          asking = undefined;
        });
        await asking;
      }
      return queue.shift();
    };
    const worker = async () => {
      for (let part = await take(); part; part = await take()) {
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
