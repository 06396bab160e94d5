import { DeleteCommand, type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type {
  Policy,
  PolicyRepository,
  PolicyRunReport,
  PolicyUpdate,
} from '../../core/maintenance/policies.ts';
import type { Page } from '../../core/shared/pagination.ts';
import { all, changesAnything, equals, exists, notExists, putItem, updateItem } from './expressions.ts';
import {
  createdOrder,
  ENABLED_POLICIES,
  pickFields,
  policyKey,
  policyOwnerIndex,
  policyRunOrder,
} from './keys.ts';
import { getItem, gsi1Page, queryAll } from './query.ts';
import { applyUpdate, updateReturning } from './writes.ts';

const FIELDS = [
  'policyId',
  'accountId',
  'name',
  'description',
  'targetTags',
  'schedule',
  'retention',
  'copyRules',
  'agentTimeoutMs',
  'enabled',
  'region',
  'createdAt',
  'nextRunAt',
  'lastRunAt',
  'lastRun',
] as const;

const toPolicy = (item: Record<string, unknown>): Policy => pickFields<Policy>(item, FIELDS);

/**
 * Policies in the region table: `POLICY#id`, listed per account through gsi1, and (only while
 * enabled) in the sparse gsi2 partition `POLICIES#ENABLED` ordered by next run, which the scheduler
 * reads. `gsi2sk` follows `nextRunAt` always; `gsi2pk` is there exactly when the policy is enabled.
 */
export class DynamoPolicyRepository implements PolicyRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async create(policy: Policy): Promise<void> {
    await this.documents.send(
      new PutCommand(
        putItem(
          this.table,
          {
            ...policyKey(policy.policyId),
            type: 'policy',
            ...policy,
            gsi1pk: policyOwnerIndex(policy.accountId),
            gsi1sk: createdOrder(policy.createdAt, policy.policyId),
            ...(policy.enabled ? { gsi2pk: ENABLED_POLICIES } : {}),
            gsi2sk: policyRunOrder(policy.nextRunAt, policy.policyId),
          },
          notExists('pk'),
        ),
      ),
    );
  }

  async get(policyId: string): Promise<Policy | undefined> {
    const Item = await getItem(this.documents, this.table, policyKey(policyId));
    return Item ? toPolicy(Item) : undefined;
  }

  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Policy>> {
    return gsi1Page(this.documents, this.table, policyOwnerIndex(accountId), page, toPolicy);
  }

  async update(policyId: string, changes: PolicyUpdate): Promise<Policy | undefined> {
    const change = {
      set: {
        ...changes,
        // The sparse index follows: its order always, its partition exactly while enabled.
        gsi2sk: changes.nextRunAt !== undefined ? policyRunOrder(changes.nextRunAt, policyId) : undefined,
        gsi2pk: changes.enabled === undefined ? undefined : changes.enabled ? ENABLED_POLICIES : null,
      },
    };
    if (!changesAnything(change)) return this.get(policyId);
    const updated = await updateReturning(
      this.documents,
      updateItem(this.table, policyKey(policyId), change, exists('pk')),
    );
    return updated ? toPolicy(updated) : undefined;
  }

  async delete(policyId: string): Promise<boolean> {
    const { Attributes } = await this.documents.send(
      new DeleteCommand({ TableName: this.table, Key: policyKey(policyId), ReturnValues: 'ALL_OLD' }),
    );
    return Attributes !== undefined;
  }

  listDue(nowIso: string): Promise<Policy[]> {
    // Ids sort before '~', so every `nextRunAt#id` with nextRunAt <= nowIso sorts before `nowIso#~`.
    return this.#enabled(`${nowIso}#~`);
  }

  listEnabled(): Promise<Policy[]> {
    return this.#enabled();
  }

  async claimRun(
    policyId: string,
    expectedNextRunAt: string,
    nextRunAt: string,
    lastRunAt: string,
    expectedLastRunAt?: string | null,
  ): Promise<boolean> {
    return applyUpdate(
      this.documents,
      updateItem(
        this.table,
        policyKey(policyId),
        { set: { nextRunAt, lastRunAt, gsi2sk: policyRunOrder(nextRunAt, policyId) } },
        all(
          equals('nextRunAt', expectedNextRunAt),
          equals('enabled', true),
          expectedLastRunAt === undefined
            ? undefined
            : expectedLastRunAt === null
              ? notExists('lastRunAt')
              : equals('lastRunAt', expectedLastRunAt),
        ),
      ),
    );
  }

  async recordRun(policyId: string, report: PolicyRunReport): Promise<void> {
    // A policy deleted while it ran has nothing to report on: a refusal is the answer.
    await applyUpdate(
      this.documents,
      updateItem(this.table, policyKey(policyId), { set: { lastRun: report } }, exists('pk')),
    );
  }

  /** The enabled policies (up to `upTo` in gsi2sk order), every page. */
  async #enabled(upTo?: string): Promise<Policy[]> {
    const items = await queryAll(this.documents, {
      TableName: this.table,
      IndexName: 'gsi2',
      KeyConditionExpression: upTo === undefined ? 'gsi2pk = :pk' : 'gsi2pk = :pk AND gsi2sk <= :upTo',
      ExpressionAttributeValues: {
        ':pk': ENABLED_POLICIES,
        ...(upTo === undefined ? {} : { ':upTo': upTo }),
      },
    });
    return items.map(toPolicy);
  }
}
