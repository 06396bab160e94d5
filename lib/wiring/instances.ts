import { InstanceService } from '../core/instances/instances.ts';
import type { Factory } from './region.ts';

/** Instances: their volumes, devices and properties. */
export const instanceService: Factory<InstanceService> = (region) =>
  new InstanceService(region.ports.instances, region.ports.volumes, region.ports.clock, region.name);
