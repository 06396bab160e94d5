import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { RequestCounter } from '../../core/identity/request-rate.ts';
import { absentOrBelow, updateItem } from './expressions.ts';
import { rateWindowKey } from './keys.ts';
import { applyUpdate } from './writes.ts';

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
    return applyUpdate(
      this.documents,
      updateItem(
        this.table,
        rateWindowKey(accountId, windowStartMs),
        {
          add: { requests: 1 },
          set: { type: 'requestWindow' },
          setIfAbsent: { expiresAt: Math.ceil((windowStartMs + windowMs) / 1000) + 60 },
        },
        absentOrBelow('requests', limit),
      ),
    );
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
