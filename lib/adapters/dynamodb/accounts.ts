import { type DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { ApiKeyStore } from '../../core/authenticate.ts';

/** An account (tenant) as stored. */
export interface AccountRecord {
  accountId: string;
  name: string;
  createdAt: string;
}

/** An API key as stored: never the secret, only its hash. */
export interface ApiKeyRecord {
  keyId: string;
  accountId: string;
  role: 'owner' | 'admin' | 'member';
  secretHash: string;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
}

const accountKey = (accountId: string) => ({ pk: `ACCOUNT#${accountId}`, sk: 'ACCOUNT' });
const apiKeyKey = (keyId: string) => ({ pk: `KEY#${keyId}`, sk: 'KEY' });

/**
 * Accounts and their API keys in the region table. Creating is idempotent on the account id
 * (an existing account is kept, not overwritten).
 */
export class AccountRepository implements ApiKeyStore {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async getAccount(accountId: string): Promise<AccountRecord | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.table, Key: accountKey(accountId) }),
    );
    return Item ? { accountId: Item.accountId, name: Item.name, createdAt: Item.createdAt } : undefined;
  }

  async getApiKey(keyId: string): Promise<ApiKeyRecord | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.table, Key: apiKeyKey(keyId) }),
    );
    return Item as ApiKeyRecord | undefined;
  }

  /** Writes an account and its first key in one transaction; fails if either exists. */
  async createAccountWithKey(account: AccountRecord, key: ApiKeyRecord): Promise<void> {
    await this.documents.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: this.table,
              Item: {
                ...accountKey(account.accountId),
                type: 'account',
                ...account,
                gsi1pk: 'ACCOUNTS',
                gsi1sk: account.accountId,
              },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
          {
            Put: {
              TableName: this.table,
              Item: {
                ...apiKeyKey(key.keyId),
                type: 'apiKey',
                ...key,
                gsi1pk: `ACCOUNT#${key.accountId}#KEYS`,
                gsi1sk: key.keyId,
              },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
        ],
      }),
    );
  }
}
