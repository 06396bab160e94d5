import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type {
  Account,
  AccountChanges,
  ApiKeyRecord,
  IdentityRepository,
  User,
} from '../../core/identity/accounts.ts';
import type { Permission, Role } from '../../core/identity/identity.ts';
import { VolsnapError } from '../../core/shared/errors.ts';
import type { Page } from '../../core/shared/pagination.ts';
import {
  cancellationCodes,
  isConditionFailed,
  isTransactionCanceled,
  itemConditionFailed,
} from './errors.ts';
import { accountKey, accountNameKey, apiKeyKey, createdOrder, pickFields, userKey } from './keys.ts';
import { Filters, queryAll, queryPage } from './query.ts';

const ACCOUNT_FIELDS = [
  'accountId',
  'name',
  'createdAt',
  'operator',
  'blockPublicSharing',
  'recycleBinDays',
  'quota',
] as const;
const USER_FIELDS = ['accountId', 'userName', 'role', 'permissions', 'createdAt'] as const;
const KEY_FIELDS = [
  'keyId',
  'accountId',
  'userName',
  'secretHash',
  'createdAt',
  'description',
  'expiresAt',
  'revokedAt',
] as const;

const toAccount = (item: Record<string, unknown>): Account => ({
  ...pickFields<Account>(item, ACCOUNT_FIELDS),
  blockPublicSharing: item.blockPublicSharing === true,
});
const toUser = (item: Record<string, unknown>): User => ({
  ...pickFields<User>(item, USER_FIELDS),
  permissions: [...((item.permissions as Iterable<Permission> | undefined) ?? [])].sort(),
});
const toKey = (item: Record<string, unknown>): ApiKeyRecord => pickFields<ApiKeyRecord>(item, KEY_FIELDS);

const accountItem = (account: Account) => ({
  ...accountKey(account.accountId),
  type: 'account',
  ...account,
  gsi1pk: 'ACCOUNTS',
  gsi1sk: createdOrder(account.createdAt, account.accountId),
});
const userItem = (user: User) => ({
  ...userKey(user.accountId, user.userName),
  type: 'user',
  ...user,
  // A string set cannot be empty: no permissions is no attribute.
  permissions: user.permissions.length > 0 ? new Set(user.permissions) : undefined,
});
const keyItem = (key: ApiKeyRecord) => ({
  ...apiKeyKey(key.keyId),
  type: 'apiKey',
  ...key,
  gsi1pk: `ACCOUNT#${key.accountId}#KEYS`,
  gsi1sk: createdOrder(key.createdAt, key.keyId),
});

/**
 * Accounts, users and API keys in the identity region's table (key design in keys.ts). Reads are
 * strongly consistent: a revoked key or a changed permission applies to the very next request.
 */
export class DynamoIdentityRepository implements IdentityRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async getAccount(accountId: string): Promise<Account | undefined> {
    const item = await this.#get(accountKey(accountId));
    return item ? toAccount(item) : undefined;
  }

  async findAccountByName(name: string): Promise<Account | undefined> {
    const item = await this.#get(accountNameKey(name));
    return item ? this.getAccount(String(item.accountId)) : undefined;
  }

  listAccounts(page: { limit: number; nextToken?: string }): Promise<Page<Account>> {
    return queryPage(
      this.documents,
      {
        table: this.table,
        index: 'gsi1',
        partitionKey: 'gsi1pk',
        partition: 'ACCOUNTS',
        filters: new Filters(),
      },
      page,
      toAccount,
    );
  }

  async createAccount(account: Account, owner: User, key: ApiKeyRecord): Promise<void> {
    const put = (Item: Record<string, unknown>) => ({
      Put: { TableName: this.table, Item, ConditionExpression: 'attribute_not_exists(pk)' },
    });
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            put({ ...accountNameKey(account.name), type: 'accountName', accountId: account.accountId }),
            put(accountItem(account)),
            put(userItem(owner)),
            put(keyItem(key)),
          ],
        }),
      );
    } catch (error) {
      if (itemConditionFailed(error, 0)) {
        throw new VolsnapError(
          'account.nameTaken',
          `An account named ${account.name} exists: choose another name.`,
          {
            details: { name: account.name },
          },
        );
      }
      throw error;
    }
  }

  async updateAccount(accountId: string, changes: AccountChanges): Promise<Account | undefined> {
    const set: string[] = [];
    const remove: string[] = [];
    const values: Record<string, unknown> = {};
    if (changes.blockPublicSharing !== undefined) {
      set.push('#block = :block');
      values[':block'] = changes.blockPublicSharing;
    }
    if (changes.recycleBinDays !== undefined) {
      set.push('#recycle = :recycle');
      values[':recycle'] = changes.recycleBinDays;
    }
    if (changes.quota === null) remove.push('#quota');
    else if (changes.quota !== undefined) {
      set.push('#quota = :quota');
      values[':quota'] = Object.fromEntries(Object.entries(changes.quota).filter(([, v]) => v !== undefined));
    }
    if (set.length === 0 && remove.length === 0) return this.getAccount(accountId);
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: accountKey(accountId),
          UpdateExpression: updateExpression(set, remove),
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: {
            ...(changes.blockPublicSharing !== undefined ? { '#block': 'blockPublicSharing' } : {}),
            ...(changes.recycleBinDays !== undefined ? { '#recycle': 'recycleBinDays' } : {}),
            ...(changes.quota !== undefined ? { '#quota': 'quota' } : {}),
          },
          ExpressionAttributeValues: Object.keys(values).length ? values : undefined,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? toAccount(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw error;
    }
  }

  async getUser(accountId: string, userName: string): Promise<User | undefined> {
    const item = await this.#get(userKey(accountId, userName));
    return item ? toUser(item) : undefined;
  }

  async listUsers(accountId: string): Promise<User[]> {
    const items = await queryAll(this.documents, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :user)',
      ExpressionAttributeValues: { ':pk': accountKey(accountId).pk, ':user': 'USER#' },
      ConsistentRead: true,
    });
    return items.map(toUser);
  }

  async createUser(user: User): Promise<void> {
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              ConditionCheck: {
                TableName: this.table,
                Key: accountKey(user.accountId),
                ConditionExpression: 'attribute_exists(pk)',
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: userItem(user),
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
    } catch (error) {
      if (isTransactionCanceled(error)) {
        const reasons = cancellationCodes(error);
        if (reasons[1] === 'ConditionalCheckFailed') {
          throw new VolsnapError('user.exists', `A user named ${user.userName} exists in this account.`, {
            details: { userName: user.userName },
          });
        }
        if (reasons[0] === 'ConditionalCheckFailed') {
          throw new VolsnapError('account.notFound', `No account ${user.accountId}.`);
        }
      }
      throw error;
    }
  }

  async updateUser(
    accountId: string,
    userName: string,
    changes: { role?: Role; permissions?: Permission[] },
  ): Promise<User | undefined> {
    const set: string[] = [];
    const remove: string[] = [];
    const values: Record<string, unknown> = {};
    if (changes.role) {
      set.push('#role = :role');
      values[':role'] = changes.role;
    }
    if (changes.permissions) {
      if (changes.permissions.length === 0) remove.push('#permissions');
      else {
        set.push('#permissions = :permissions');
        values[':permissions'] = new Set(changes.permissions);
      }
    }
    if (set.length === 0 && remove.length === 0) return this.getUser(accountId, userName);
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: userKey(accountId, userName),
          UpdateExpression: updateExpression(set, remove),
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: {
            ...(changes.role ? { '#role': 'role' } : {}),
            ...(changes.permissions ? { '#permissions': 'permissions' } : {}),
          },
          ExpressionAttributeValues: Object.keys(values).length ? values : undefined,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? toUser(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw error;
    }
  }

  async deleteUser(accountId: string, userName: string): Promise<void> {
    await this.documents.send(
      new TransactWriteCommand({
        TransactItems: [{ Delete: { TableName: this.table, Key: userKey(accountId, userName) } }],
      }),
    );
  }

  async getApiKey(keyId: string): Promise<ApiKeyRecord | undefined> {
    const item = await this.#get(apiKeyKey(keyId));
    return item ? toKey(item) : undefined;
  }

  async listApiKeys(accountId: string): Promise<ApiKeyRecord[]> {
    const keys: ApiKeyRecord[] = [];
    let nextToken: string | undefined;
    do {
      const page = await queryPage(
        this.documents,
        {
          table: this.table,
          index: 'gsi1',
          partitionKey: 'gsi1pk',
          partition: `ACCOUNT#${accountId}#KEYS`,
          filters: new Filters(),
        },
        { limit: 1000, nextToken },
        toKey,
      );
      keys.push(...page.items);
      nextToken = page.nextToken;
    } while (nextToken);
    return keys;
  }

  async createApiKey(key: ApiKeyRecord): Promise<void> {
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              ConditionCheck: {
                TableName: this.table,
                Key: userKey(key.accountId, key.userName),
                ConditionExpression: 'attribute_exists(pk)',
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: keyItem(key),
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
    } catch (error) {
      if (itemConditionFailed(error, 0)) {
        throw new VolsnapError('user.notFound', `No user ${key.userName} in this account.`);
      }
      throw error;
    }
  }

  async revokeApiKey(keyId: string, revokedAt: string): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.table,
        Key: apiKeyKey(keyId),
        UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :at)',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':at': revokedAt },
      }),
    );
  }

  async #get(key: { pk: string; sk: string }): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }),
    );
    return Item;
  }
}

function updateExpression(set: string[], remove: string[]): string {
  return [set.length ? `SET ${set.join(', ')}` : '', remove.length ? `REMOVE ${remove.join(', ')}` : '']
    .join(' ')
    .trim();
}
