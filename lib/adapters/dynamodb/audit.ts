import { type DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { AuditEntry, AuditLog } from '../../core/ports/audit.ts';
import { decodeListingPosition, encodePageToken, type Page } from '../../core/shared/pagination.ts';
import { pickFields } from './keys.ts';

/** Audit entries are kept a year, then DynamoDB's TTL removes them. */
const RETENTION_SECONDS = 366 * 86_400;
const FIELDS = [
  'eventId',
  'at',
  'accountId',
  'userName',
  'keyId',
  'action',
  'target',
  'requestId',
  'status',
] as const;

/** The audit trail in the region table: one partition per account, sorted by time. */
export class DynamoAuditLog implements AuditLog {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly nowSeconds: () => number,
  ) {}

  async record(entry: AuditEntry): Promise<void> {
    await this.documents.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: `AUDIT#${entry.accountId}`,
          sk: `${entry.at}#${entry.eventId}`,
          type: 'audit',
          ...entry,
          expiresAt: this.nowSeconds() + RETENTION_SECONDS,
        },
      }),
    );
  }

  async list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<AuditEntry>> {
    const result = await this.documents.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `AUDIT#${accountId}` },
        ScanIndexForward: false,
        Limit: page.limit,
        // A position in this account's partition only: another account's token is a 400.
        ExclusiveStartKey: decodeListingPosition(page.nextToken, {
          attributes: ['pk', 'sk'],
          fixed: { pk: `AUDIT#${accountId}` },
        }),
      }),
    );
    const items = (result.Items ?? []).map((item) => pickFields<AuditEntry>(item, FIELDS));
    return result.LastEvaluatedKey
      ? { items, nextToken: encodePageToken(result.LastEvaluatedKey) }
      : { items };
  }
}
