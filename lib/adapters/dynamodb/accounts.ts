import { type DynamoDBDocumentClient, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type {
  Account,
  AccountChanges,
  ApiKeyRecord,
  IdentityRepository,
  KeyWithOwner,
  User,
} from '../../core/identity/accounts.ts';
import type { Permission, Role } from '../../core/identity/identity.ts';
import { VolsnapError } from '../../core/shared/errors.ts';
import type { Page } from '../../core/shared/pagination.ts';
import { itemConditionFailed } from './errors.ts';
import {
  type Change,
  changesAnything,
  checkItem,
  exists,
  notExists,
  putItem,
  updateItem,
} from './expressions.ts';
import { accountKey, accountNameKey, apiKeyKey, createdOrder, pickFields, userKey } from './keys.ts';
import { batchGetConsistent, getItem, gsi1Page, queryAll } from './query.ts';
import { updateReturning } from './writes.ts';

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
  'kind',
  'accessKeyId',
  'sealedSecret',
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
  // A string set cannot be empty: no permissions is no attribute (putItem leaves an empty set out).
  permissions: new Set(user.permissions),
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
    return gsi1Page(this.documents, this.table, 'ACCOUNTS', page, toAccount);
  }

  async createAccount(account: Account, owner: User, key: ApiKeyRecord): Promise<void> {
    const put = (item: Record<string, unknown>) => ({ Put: putItem(this.table, item, notExists('pk')) });
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
    const { blockPublicSharing, recycleBinDays, quota } = changes;
    const change = {
      set: {
        blockPublicSharing,
        recycleBinDays,
        // null: back to the deployment's defaults; a limit left undefined is not stored.
        quota: quota ? Object.fromEntries(Object.entries(quota).filter(([, v]) => v !== undefined)) : quota,
      },
    };
    if (!changesAnything(change)) return this.getAccount(accountId);
    const updated = await this.#update(accountKey(accountId), change);
    return updated ? toAccount(updated) : undefined;
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
            { ConditionCheck: checkItem(this.table, accountKey(user.accountId), exists('pk')) },
            { Put: putItem(this.table, userItem(user), notExists('pk')) },
          ],
        }),
      );
    } catch (error) {
      if (itemConditionFailed(error, 1)) {
        throw new VolsnapError('user.exists', `A user named ${user.userName} exists in this account.`, {
          details: { userName: user.userName },
        });
      }
      if (itemConditionFailed(error, 0)) {
        throw new VolsnapError('account.notFound', `No account ${user.accountId}.`);
      }
      throw error;
    }
  }

  async updateUser(
    accountId: string,
    userName: string,
    changes: { role?: Role; permissions?: Permission[] },
  ): Promise<User | undefined> {
    // No permissions is an empty set: no attribute (see expressions.ts).
    const { role, permissions } = changes;
    const change = { set: { role, permissions: permissions ? new Set(permissions) : undefined } };
    if (!changesAnything(change)) return this.getUser(accountId, userName);
    const updated = await this.#update(userKey(accountId, userName), change);
    return updated ? toUser(updated) : undefined;
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

  async getKeyWithOwner(keyId: string, accountId: string, userName: string): Promise<KeyWithOwner> {
    const wanted = {
      key: apiKeyKey(keyId),
      user: userKey(accountId, userName),
      account: accountKey(accountId),
    };
    const items = await batchGetConsistent(this.documents, this.table, Object.values(wanted));
    const at = ({ pk, sk }: { pk: string; sk: string }) => items.find((i) => i.pk === pk && i.sk === sk);
    const [key, user, account] = [at(wanted.key), at(wanted.user), at(wanted.account)];
    return {
      ...(key ? { key: toKey(key) } : {}),
      ...(user ? { user: toUser(user) } : {}),
      ...(account ? { account: toAccount(account) } : {}),
    };
  }

  async listApiKeys(accountId: string): Promise<ApiKeyRecord[]> {
    const keys: ApiKeyRecord[] = [];
    let nextToken: string | undefined;
    do {
      const page = await gsi1Page(
        this.documents,
        this.table,
        `ACCOUNT#${accountId}#KEYS`,
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
            { ConditionCheck: checkItem(this.table, userKey(key.accountId, key.userName), exists('pk')) },
            { Put: putItem(this.table, keyItem(key), notExists('pk')) },
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
      new UpdateCommand(
        updateItem(this.table, apiKeyKey(keyId), { setIfAbsent: { revokedAt } }, exists('pk')),
      ),
    );
  }

  /** Applies `change` to an existing item; its new attributes, or undefined if there is no such item. */
  async #update(
    key: { pk: string; sk: string },
    change: Change,
  ): Promise<Record<string, unknown> | undefined> {
    return updateReturning(this.documents, updateItem(this.table, key, change, exists('pk')));
  }

  async #get(key: { pk: string; sk: string }): Promise<Record<string, unknown> | undefined> {
    return getItem(this.documents, this.table, key);
  }
}
