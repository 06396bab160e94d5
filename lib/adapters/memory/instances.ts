import type { Instance, InstanceRepository } from '../../core/instances/instances.ts';
import type { Page } from '../../core/shared/pagination.ts';
import { pageOf } from './paging.ts';

/** Instances in memory, for unit tests: the same contract as the DynamoDB repository. */
export class MemoryInstanceRepository implements InstanceRepository {
  readonly #instances = new Map<string, Instance>();
  /** Volume id → the instance it is attached to. */
  readonly #attachments = new Map<string, string>();

  async create(instance: Instance): Promise<boolean> {
    if (this.#instances.has(instance.instanceId)) return false;
    if (instance.volumes.some((v) => this.#attachments.has(v.volumeId))) return false;
    for (const v of instance.volumes) this.#attachments.set(v.volumeId, instance.instanceId);
    this.#instances.set(instance.instanceId, structuredClone(instance));
    return true;
  }

  async get(instanceId: string): Promise<Instance | undefined> {
    return structuredClone(this.#instances.get(instanceId));
  }

  async list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Instance>> {
    const mine = [...this.#instances.values()]
      .filter((i) => i.accountId === accountId)
      .sort((a, b) => `${b.createdAt}#${b.instanceId}`.localeCompare(`${a.createdAt}#${a.instanceId}`));
    return pageOf(mine, page);
  }

  async replace(previous: Instance, next: Instance): Promise<boolean> {
    const stored = this.#instances.get(previous.instanceId);
    if (stored?.revision !== previous.revision) return false;
    const before = new Set(stored.volumes.map((v) => v.volumeId));
    const after = new Set(next.volumes.map((v) => v.volumeId));
    const added = [...after].filter((id) => !before.has(id));
    const removed = [...before].filter((id) => !after.has(id));
    if (added.some((id) => (this.#attachments.get(id) ?? next.instanceId) !== next.instanceId)) return false;
    for (const id of added) this.#attachments.set(id, next.instanceId);
    for (const id of removed) this.#attachments.delete(id);
    this.#instances.set(next.instanceId, structuredClone(next));
    return true;
  }

  async delete(instance: Instance): Promise<boolean> {
    const stored = this.#instances.get(instance.instanceId);
    if (stored?.revision !== instance.revision) return false;
    for (const v of stored.volumes) this.#attachments.delete(v.volumeId);
    this.#instances.delete(instance.instanceId);
    return true;
  }

  async attachedTo(volumeId: string): Promise<string | undefined> {
    return this.#attachments.get(volumeId);
  }
}
