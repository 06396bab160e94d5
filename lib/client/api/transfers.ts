import { snapshotPath } from './snapshots.ts';
import { listQuery, type PageRequest, type Requester, withQuery } from './transport.ts';
import type { DiskFormat, Export, Snapshot, UploadStart } from './types.ts';

const exportPath = (exportId: string, below = '') => `/v1/exports/${encodeURIComponent(exportId)}${below}`;

/** Imports (and the uploads they read) and exports: a snapshot's bytes into and out of the service. */
export function transferRequests<Base extends Requester>(base: Base) {
  return class TransferRequests extends base {
    /** Starts uploading a file of `sizeBytes` to import: its part size and count, and the first parts' URLs. */
    createUpload(sizeBytes: number): Promise<UploadStart> {
      return this.request('POST', '/v1/uploads', { sizeBytes });
    }

    /** More part URLs of an upload, from part `fromPart` (a page of them; `nextPart` when more remain). */
    uploadPartUrls(
      ref: string,
      uploadId: string,
      fromPart: number,
    ): Promise<{
      parts: { partNumber: number; url: string }[];
      nextPart?: number;
      expiresInSeconds: number;
    }> {
      return this.request(
        'POST',
        `/v1/uploads/${encodeURIComponent(ref)}/part-urls`,
        { uploadId, fromPart },
        { idempotent: true },
      );
    }

    /** Starts an import from a URL serving ranged GETs; workers write it (poll `getSnapshot`). */
    importSnapshot(input: {
      url?: string;
      upload?: { ref: string; uploadId: string; parts: { partNumber: number; etag: string }[] };
      format: DiskFormat;
      sizeBytes?: number;
      name?: string;
      description?: string;
      tags?: Record<string, string>;
      clientToken?: string;
    }): Promise<Snapshot> {
      return this.request<Snapshot>('POST', '/v1/snapshots/import', input);
    }

    exportSnapshot(
      snapshotId: string,
      format: DiskFormat,
      target: { bucket?: string; prefix?: string; keepForSeconds?: number } = {},
    ): Promise<Export> {
      return this.request('POST', snapshotPath(snapshotId, '/export'), { format, ...target });
    }

    listExports(page: PageRequest = {}): Promise<{ exports: Export[]; nextToken?: string }> {
      return this.request('GET', withQuery('/v1/exports', listQuery(page)));
    }

    getExport(exportId: string): Promise<Export> {
      return this.request('GET', exportPath(exportId));
    }

    async deleteExport(exportId: string): Promise<void> {
      await this.request<void>('DELETE', exportPath(exportId));
    }

    exportUrl(
      exportId: string,
      expiresInSeconds?: number,
    ): Promise<{ url: string; expiresInSeconds: number; size: number; format: DiskFormat }> {
      return this.request(
        'POST',
        exportPath(exportId, '/url'),
        { expiresInSeconds },
        { idempotent: true, readsOnly: true },
      );
    }
  };
}
