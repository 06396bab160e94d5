import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { RequestCounter } from '../../core/identity/request-rate.ts';
import { isConditionFailed } from './errors.ts';
import { rateWindowKey } from './keys.ts';

/**
 * Request windows in the region table: one item per account and window (`RATE#acct`, `W#start`),
 * incremented by one conditional UpdateItem per request and removed by the table's TTL a minute
 * after the window ends.
 */
export class DynamoRequestCounter implements RequestCounter {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async take(accountId: string, windowStartMs: number, windowMs: number, limit: number): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: rateWindowKey(accountId, windowStartMs),
          UpdateExpression:
            'ADD requests :one SET #type = :type, expiresAt = if_not_exists(expiresAt, :expires)',
          ConditionExpression: 'attribute_not_exists(requests) OR requests < :limit',
          ExpressionAttributeNames: { '#type': 'type' },
          ExpressionAttributeValues: {
            ':one': 1,
            ':limit': limit,
            ':type': 'requestWindow',
            ':expires': Math.ceil((windowStartMs + windowMs) / 1000) + 60,
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
  }

  async count(accountId: string, windowStartMs: number): Promise<number> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.table,
        Key: rateWindowKey(accountId, windowStartMs),
        ConsistentRead: true,
      }),
    );
    return Number(Item?.requests ?? 0);
  }
}
