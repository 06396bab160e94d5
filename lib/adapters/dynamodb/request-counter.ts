import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { RequestCounter } from '../../core/identity/request-rate.ts';
import { absentOrAtMost, updateItem } from './expressions.ts';
import { rateWindowKey } from './keys.ts';
import { applyUpdate } from './writes.ts';

/**
 * Request windows in the region table: one item per counter (an account, `RATE#acct`, or a class of
 * its requests, `RATE#acct#blocks`) and window (`W#start`), incremented by one conditional
 * UpdateItem per take and removed by the table's TTL a minute after the window ends.
 */
export class DynamoRequestCounter implements RequestCounter {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async take(
    counterId: string,
    windowStartMs: number,
    windowMs: number,
    limit: number,
    count = 1,
  ): Promise<boolean> {
    if (count > limit) return false;
    return applyUpdate(
      this.documents,
      updateItem(
        this.table,
        rateWindowKey(counterId, windowStartMs),
        {
          add: { requests: count },
          set: { type: 'requestWindow' },
          setIfAbsent: { expiresAt: Math.ceil((windowStartMs + windowMs) / 1000) + 60 },
        },
        absentOrAtMost('requests', limit - count),
      ),
    );
  }

  async count(counterId: string, windowStartMs: number): Promise<number> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.table,
        Key: rateWindowKey(counterId, windowStartMs),
        ConsistentRead: true,
      }),
    );
    return Number(Item?.requests ?? 0);
  }
}
