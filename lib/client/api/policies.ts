import { allPages, listQuery, type PageRequest, type Requester, withQuery } from './transport.ts';
import type { CreatePolicyInput, Policy, PolicyChanges } from './types.ts';

const policyPath = (policyId: string) => `/v1/policies/${encodeURIComponent(policyId)}`;

/** Snapshot policies. */
export function policyRequests<Base extends Requester>(base: Base) {
  return class PolicyRequests extends base {
    createPolicy(input: CreatePolicyInput): Promise<Policy> {
      return this.request('POST', '/v1/policies', input);
    }

    listPolicies(page: PageRequest = {}): Promise<{ policies: Policy[]; nextToken?: string }> {
      return this.request('GET', withQuery('/v1/policies', listQuery(page)));
    }

    /** Every policy of the account in this region, following pages. */
    allPolicies(): AsyncGenerator<Policy> {
      return allPages('policies', (page) => this.listPolicies(page));
    }

    getPolicy(policyId: string): Promise<Policy> {
      return this.request('GET', policyPath(policyId));
    }

    updatePolicy(policyId: string, changes: PolicyChanges): Promise<Policy> {
      return this.request('PATCH', policyPath(policyId), changes);
    }

    async deletePolicy(policyId: string): Promise<void> {
      await this.request<void>('DELETE', policyPath(policyId));
    }
  };
}
