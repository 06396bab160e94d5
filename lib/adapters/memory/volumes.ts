import { VolsnapError } from '../../core/shared/errors.ts';
import type { Page } from '../../core/shared/pagination.ts';
import { matchesTags } from '../../core/shared/tags.ts';
import type { Snapshot } from '../../core/snapshots/snapshots.ts';
import type { Volume, VolumeDeletion, VolumeFilter, VolumeRepository } from '../../core/volumes/volumes.ts';
import { pageOf } from './paging.ts';

/** Volumes in memory, for unit tests: the same contract as the DynamoDB repository. */
export class MemoryVolumeRepository implements VolumeRepository {
  readonly #volumes = new Map<string, Volume>();
  /** Snapshot ids per volume, kept by the (in-memory) snapshot store. */
  readonly snapshotsOf = new Map<string, Set<string>>();
  /** The snapshot store's record of one, for its state (set by the in-memory snapshot store). */
  snapshotRecord: (snapshotId: string) => Snapshot | undefined = () => undefined;

  async create(volume: Volume): Promise<void> {
    if (this.#volumes.has(volume.volumeId)) throw new Error(`volume ${volume.volumeId} exists`);
    this.#volumes.set(volume.volumeId, structuredClone(volume));
  }

  async get(accountId: string, volumeId: string): Promise<Volume | undefined> {
    const volume = this.#volumes.get(volumeId);
    return volume && volume.accountId === accountId ? structuredClone(volume) : undefined;
  }

  async list(
    accountId: string,
    filter: VolumeFilter,
    page: { limit: number; nextToken?: string },
  ): Promise<Page<Volume>> {
    const all = [...this.#volumes.values()]
      .filter((v) => v.accountId === accountId)
      .filter((v) => !filter.name || v.name.startsWith(filter.name))
      .filter((v) => matchesTags(v.tags, filter.tags))
      .sort((a, b) => `${b.createdAt}#${b.volumeId}`.localeCompare(`${a.createdAt}#${a.volumeId}`));
    return pageOf(all, page);
  }

  async deleteUnlessSnapshots(accountId: string, volumeId: string): Promise<VolumeDeletion> {
    const volume = this.#volumes.get(volumeId);
    if (!volume || volume.accountId !== accountId) {
      throw new VolsnapError('volume.notFound', `No volume ${volumeId} in this account and region.`, {
        details: { volumeId },
      });
    }
    const holding: string[] = [];
    const recycled: VolumeDeletion['recycled'] = [];
    for (const snapshotId of this.snapshotsOf.get(volumeId) ?? []) {
      const record = this.snapshotRecord(snapshotId);
      if (record?.state === 'recycled')
        recycled.push({ snapshotId, ...(record.purgeAt ? { purgeAt: record.purgeAt } : {}) });
      else if (record?.state !== 'deleting') holding.push(snapshotId);
    }
    if (holding.length > 0) return { holding, recycled: [] };
    this.#volumes.delete(volumeId);
    this.snapshotsOf.delete(volumeId);
    return { holding, recycled };
  }
}
