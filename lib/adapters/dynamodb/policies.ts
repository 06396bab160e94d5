import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type {
  Policy,
  PolicyRepository,
  PolicyRunReport,
  PolicyUpdate,
} from '../../core/maintenance/policies.ts';
import type { Page } from '../../core/shared/pagination.ts';
import { isConditionFailed } from './errors.ts';
import {
  createdOrder,
  ENABLED_POLICIES,
  pickFields,
  policyKey,
  policyOwnerIndex,
  policyRunOrder,
} from './keys.ts';
import { Filters, queryAll, queryPage } from './query.ts';

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
      new PutCommand({
        TableName: this.table,
        Item: {
          ...policyKey(policy.policyId),
          type: 'policy',
          ...policy,
          gsi1pk: policyOwnerIndex(policy.accountId),
          gsi1sk: createdOrder(policy.createdAt, policy.policyId),
          ...(policy.enabled ? { gsi2pk: ENABLED_POLICIES } : {}),
          gsi2sk: policyRunOrder(policy.nextRunAt, policy.policyId),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async get(policyId: string): Promise<Policy | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.table, Key: policyKey(policyId), ConsistentRead: true }),
    );
    return Item ? toPolicy(Item) : undefined;
  }

  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Policy>> {
    return queryPage(
      this.documents,
      {
        table: this.table,
        index: 'gsi1',
        partitionKey: 'gsi1pk',
        partition: policyOwnerIndex(accountId),
        filters: new Filters(),
      },
      page,
      toPolicy,
    );
  }

  async update(policyId: string, changes: PolicyUpdate): Promise<Policy | undefined> {
    const set: Record<string, unknown> = Object.fromEntries(
      Object.entries(changes).filter(([, v]) => v !== undefined),
    );
    const remove: string[] = [];
    if (changes.nextRunAt !== undefined) set.gsi2sk = policyRunOrder(changes.nextRunAt, policyId);
    if (changes.enabled === true) set.gsi2pk = ENABLED_POLICIES;
    if (changes.enabled === false) remove.push('gsi2pk');
    const names = Object.keys(set);
    const clauses = [
      ...(names.length > 0 ? [`SET ${names.map((_, i) => `#s${i} = :s${i}`).join(', ')}`] : []),
      ...(remove.length > 0 ? [`REMOVE ${remove.map((_, i) => `#r${i}`).join(', ')}`] : []),
    ];
    if (clauses.length === 0) return this.get(policyId);
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: policyKey(policyId),
          UpdateExpression: clauses.join(' '),
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: {
            ...Object.fromEntries(names.map((k, i) => [`#s${i}`, k])),
            ...Object.fromEntries(remove.map((k, i) => [`#r${i}`, k])),
          },
          ...(names.length > 0
            ? { ExpressionAttributeValues: Object.fromEntries(names.map((k, i) => [`:s${i}`, set[k]])) }
            : {}),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? toPolicy(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw error;
    }
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
    const lastCondition =
      expectedLastRunAt === undefined
        ? ''
        : expectedLastRunAt === null
          ? ' AND attribute_not_exists(lastRunAt)'
          : ' AND lastRunAt = :expectedLast';
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: policyKey(policyId),
          UpdateExpression: 'SET nextRunAt = :next, lastRunAt = :last, gsi2sk = :order',
          ConditionExpression: `nextRunAt = :expected AND enabled = :enabled${lastCondition}`,
          ExpressionAttributeValues: {
            ':next': nextRunAt,
            ':last': lastRunAt,
            ':order': policyRunOrder(nextRunAt, policyId),
            ':expected': expectedNextRunAt,
            ':enabled': true,
            ...(typeof expectedLastRunAt === 'string' ? { ':expectedLast': expectedLastRunAt } : {}),
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
  }

  async recordRun(policyId: string, report: PolicyRunReport): Promise<void> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: policyKey(policyId),
          UpdateExpression: 'SET lastRun = :report',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':report': report },
        }),
      );
    } catch (error) {
      // The policy was deleted while it ran: there is nothing to report on.
      if (!isConditionFailed(error)) throw error;
    }
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
