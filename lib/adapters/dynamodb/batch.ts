import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';

type WriteRequest = NonNullable<BatchWriteCommandInput['RequestItems']>[string][number];

/**
 * Writes every request, 25 at a time, resending what DynamoDB leaves unprocessed (throttling) with
 * exponential backoff. Idempotent requests only (puts of fixed items, deletes by key).
 */
export async function batchWriteAll(
  documents: DynamoDBDocumentClient,
  table: string,
  requests: WriteRequest[],
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<void> {
  for (let i = 0; i < requests.length; i += 25) {
    let pending = requests.slice(i, i + 25);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) {
        if (attempt > 8)
          throw new Error(`DynamoDB left ${pending.length} writes unprocessed after ${attempt} attempts.`);
        await sleep(Math.min(2000, 50 * 2 ** attempt));
      }
      const result = await documents.send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
      pending = result.UnprocessedItems?.[table] ?? [];
    }
  }
}
