import { PolicyService } from '../core/maintenance/policies.ts';
import type { Factory } from './region.ts';

// Policies' CRUD in their own module: the policies function does not carry maintenance, copies, exports.

/** Snapshot policies of this region (their CRUD; the scheduled runner reads the repository). */
export const policyService: Factory<PolicyService> = (region) =>
  new PolicyService({
    policies: region.ports.policies,
    clock: region.ports.clock,
    region: region.name,
    knownRegions: [...region.settings.knownRegions],
  });
