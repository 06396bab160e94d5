import type {
  Policy,
  PolicyRepository,
  PolicyRunReport,
  PolicyUpdate,
} from '../../core/maintenance/policies.ts';
import type { Page } from '../../core/shared/pagination.ts';
import { pageOf } from './paging.ts';

const byNextRun = (a: Policy, b: Policy) =>
  `${a.nextRunAt}#${a.policyId}`.localeCompare(`${b.nextRunAt}#${b.policyId}`);

/** Policies in memory, for unit tests. */
export class MemoryPolicyRepository implements PolicyRepository {
  readonly #policies = new Map<string, Policy>();

  async create(policy: Policy): Promise<void> {
    if (this.#policies.has(policy.policyId)) throw new Error(`policy ${policy.policyId} exists`);
    this.#policies.set(policy.policyId, structuredClone(policy));
  }

  async get(policyId: string): Promise<Policy | undefined> {
    return structuredClone(this.#policies.get(policyId));
  }

  async list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Policy>> {
    const mine = [...this.#policies.values()]
      .filter((p) => p.accountId === accountId)
      .sort((a, b) => `${b.createdAt}#${b.policyId}`.localeCompare(`${a.createdAt}#${a.policyId}`));
    return pageOf(mine, page);
  }

  async update(policyId: string, changes: PolicyUpdate): Promise<Policy | undefined> {
    const policy = this.#policies.get(policyId);
    if (!policy) return undefined;
    const defined = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
    const next = { ...policy, ...structuredClone(defined) };
    this.#policies.set(policyId, next);
    return structuredClone(next);
  }

  async delete(policyId: string): Promise<boolean> {
    return this.#policies.delete(policyId);
  }

  async listDue(nowIso: string): Promise<Policy[]> {
    return [...this.#policies.values()]
      .filter((p) => p.enabled && p.nextRunAt <= nowIso)
      .sort(byNextRun)
      .map((p) => structuredClone(p));
  }

  async listEnabled(): Promise<Policy[]> {
    return [...this.#policies.values()]
      .filter((p) => p.enabled)
      .sort(byNextRun)
      .map((p) => structuredClone(p));
  }

  async claimRun(
    policyId: string,
    expectedNextRunAt: string,
    nextRunAt: string,
    lastRunAt: string,
    expectedLastRunAt?: string | null,
  ): Promise<boolean> {
    const policy = this.#policies.get(policyId);
    if (!policy?.enabled || policy.nextRunAt !== expectedNextRunAt) return false;
    if (expectedLastRunAt !== undefined && (policy.lastRunAt ?? null) !== expectedLastRunAt) return false;
    this.#policies.set(policyId, { ...policy, nextRunAt, lastRunAt });
    return true;
  }

  async recordRun(policyId: string, report: PolicyRunReport): Promise<void> {
    const policy = this.#policies.get(policyId);
    if (policy) this.#policies.set(policyId, { ...policy, lastRun: structuredClone(report) });
  }
}
