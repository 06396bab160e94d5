import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { NO_USAGE, type Usage } from '../../core/identity/accounts.ts';
import { usageKey } from './keys.ts';

/**
 * An account's usage item in a region table: one item of counters (snapshots, stored bytes, work in
 * flight), each changed by ADD in the same transaction as the record it counts, and checked there
 * by the write's condition. A counter never written reads 0.
 */
export async function readUsage(
  documents: DynamoDBDocumentClient,
  table: string,
  accountId: string,
): Promise<Usage> {
  const { Item } = await documents.send(
    new GetCommand({ TableName: table, Key: usageKey(accountId), ConsistentRead: true }),
  );
  return Object.fromEntries(
    Object.keys(NO_USAGE).map((counter) => [counter, Number(Item?.[counter] ?? 0)]),
  ) as unknown as Usage;
}
