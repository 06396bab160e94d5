import { allPages, listQuery, type PageRequest, type Requester, withQuery } from './transport.ts';
import type { Instance, InstanceState } from './types.ts';

const instancePath = (instanceId: string, below = '') =>
  `/v1/instances/${encodeURIComponent(instanceId)}${below}`;

/** Instances and their attached volumes. */
export function instanceRequests<Base extends Requester>(base: Base) {
  return class InstanceRequests extends base {
    registerInstance(input: {
      name: string;
      volumes?: { volumeId: string; device: string; bootIndex?: number }[];
      properties?: Record<string, string>;
      state?: InstanceState;
    }): Promise<Instance> {
      return this.request('POST', '/v1/instances', input);
    }

    listInstances(page: PageRequest = {}): Promise<{ instances: Instance[]; nextToken?: string }> {
      return this.request('GET', withQuery('/v1/instances', listQuery(page)));
    }

    /** Every instance of the account in this region, following pages. */
    allInstances(): AsyncGenerator<Instance> {
      return allPages('instances', (page) => this.listInstances(page));
    }

    getInstance(instanceId: string): Promise<Instance> {
      return this.request('GET', instancePath(instanceId));
    }

    updateInstance(
      instanceId: string,
      changes: { name?: string; state?: InstanceState; properties?: Record<string, string> },
    ): Promise<Instance> {
      return this.request('PATCH', instancePath(instanceId), changes);
    }

    async deleteInstance(instanceId: string): Promise<void> {
      await this.request<void>('DELETE', instancePath(instanceId));
    }

    attachVolume(
      instanceId: string,
      volumeId: string,
      attachment: { device: string; bootIndex?: number },
    ): Promise<Instance> {
      return this.request(
        'PUT',
        instancePath(instanceId, `/volumes/${encodeURIComponent(volumeId)}`),
        attachment,
      );
    }

    detachVolume(instanceId: string, volumeId: string): Promise<Instance> {
      return this.request('DELETE', instancePath(instanceId, `/volumes/${encodeURIComponent(volumeId)}`));
    }
  };
}
