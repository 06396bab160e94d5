import { DeleteCommand, type DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { UploadSlots } from '../../core/tasks/uploads.ts';
import { applied, unlessRefused } from './errors.ts';
import { any, atMost, deleteItem, equals, notExists, putItem } from './expressions.ts';
import { uploadSlotKey } from './keys.ts';

/** A slot is kept a day past its expiry before the table's TTL removes it (it is free from its expiry on). */
const TTL_MARGIN_SECONDS = 24 * 3600;

/**
 * Upload slots in the region table: items `SLOT#0…SLOT#limit-1` in the account's `UPLOADS#acct`
 * partition. Taking one reads the partition (at most `limit` items, one request) and puts the first
 * free slot with a condition that it is still free, so two racing takes never get the same slot.
 */
export class DynamoUploadSlots implements UploadSlots {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async take(
    accountId: string,
    ref: string,
    limit: number,
    nowMs: number,
    untilMs: number,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const slots = await this.#slots(accountId);
      const live = slots.filter((s) => s.untilMs > nowMs);
      if (live.length >= limit) return false;
      const taken = new Set(live.map((s) => s.slot));
      const free = Array.from({ length: limit }, (_, i) => i).find((i) => !taken.has(i)) as number;
      const put = await applied(
        this.documents.send(
          new PutCommand(
            putItem(
              this.table,
              {
                ...uploadSlotKey(accountId, free),
                type: 'uploadSlot',
                slot: free,
                ref,
                untilMs,
                expiresAt: Math.ceil(untilMs / 1000) + TTL_MARGIN_SECONDS,
              },
              any(notExists('pk'), atMost('untilMs', nowMs)),
            ),
          ),
        ),
      );
      if (put) return true;
    }
    return false;
  }

  async release(accountId: string, ref: string): Promise<void> {
    for (const slot of (await this.#slots(accountId)).filter((s) => s.ref === ref)) {
      // Refused: the slot was freed and taken by another upload meanwhile, which keeps it.
      await unlessRefused(
        this.documents.send(
          new DeleteCommand(deleteItem(this.table, uploadSlotKey(accountId, slot.slot), equals('ref', ref))),
        ),
      );
    }
  }

  async count(accountId: string, nowMs: number): Promise<number> {
    return (await this.#slots(accountId)).filter((s) => s.untilMs > nowMs).length;
  }

  async #slots(accountId: string): Promise<{ slot: number; ref: string; untilMs: number }[]> {
    const { Items = [] } = await this.documents.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': uploadSlotKey(accountId, 0).pk },
        ConsistentRead: true,
      }),
    );
    return Items.map((item) => ({
      slot: Number(item.slot),
      ref: String(item.ref),
      untilMs: Number(item.untilMs),
    }));
  }
}
