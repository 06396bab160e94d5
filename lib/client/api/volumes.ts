import { allPages, listQuery, type Requester, withQuery } from './transport.ts';
import type { Volume, VolumeDeletion } from './types.ts';

export interface HealthResponse {
  region: string;
  version: string;
  status: string;
  /** The runtime of the function that answered (the Lambda runtime's Node major, locally too). */
  runtime?: { node: string };
}

export interface VolumeListFilter {
  name?: string;
  tags?: Record<string, string>;
  limit?: number;
  nextToken?: string;
}

const volumePath = (volumeId: string) => `/v1/volumes/${encodeURIComponent(volumeId)}`;

/** The API's health and volumes. */
export function volumeRequests<Base extends Requester>(base: Base) {
  return class VolumeRequests extends base {
    health(): Promise<HealthResponse> {
      return this.request<HealthResponse>('GET', '/v1/health');
    }

    createVolume(input: {
      name: string;
      sizeBytes?: number;
      tags?: Record<string, string>;
      imageUri?: string;
      sourceSnapshotId?: string;
    }): Promise<Volume> {
      return this.request<Volume>('POST', '/v1/volumes', input);
    }

    listVolumes(filter: VolumeListFilter = {}): Promise<{ volumes: Volume[]; nextToken?: string }> {
      const qs = listQuery(
        { name: filter.name, limit: filter.limit, nextToken: filter.nextToken },
        filter.tags,
      );
      return this.request('GET', withQuery('/v1/volumes', qs));
    }

    /** Every volume matching `filter`, page after page. */
    allVolumes(filter: Omit<VolumeListFilter, 'nextToken'> = {}): AsyncGenerator<Volume> {
      return allPages('volumes', (page) => this.listVolumes({ ...filter, ...page }));
    }

    getVolume(volumeId: string): Promise<Volume> {
      return this.request<Volume>('GET', volumePath(volumeId));
    }

    /** Deletes a volume; answers its snapshots in the recycle bin, which stay there after it. */
    async deleteVolume(volumeId: string): Promise<{ recycledSnapshots: VolumeDeletion['recycled'] }> {
      const answer = await this.request<{ recycledSnapshots?: VolumeDeletion['recycled'] } | undefined>(
        'DELETE',
        volumePath(volumeId),
      );
      return { recycledSnapshots: answer?.recycledSnapshots ?? [] };
    }
  };
}
