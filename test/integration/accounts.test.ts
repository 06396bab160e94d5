import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { AccountRepository } from '../../lib/adapters/dynamodb/accounts.ts';
import { issueApiKey, parseApiKey, secretMatches } from '../../lib/core/api-keys.ts';
import { newId } from '../../lib/core/ids.ts';
import { freshRegion } from '../support/emulators.ts';

describe('accounts and API keys in DynamoDB', () => {
  it('stores the hash of a key, never the key or its secret', async () => {
    const { entry, clients } = await freshRegion();
    const repo = new AccountRepository(clients.documents, entry.table);
    const accountId = newId('account');
    const key = issueApiKey();
    const createdAt = '2026-01-01T00:00:00.000Z';
    await repo.createAccountWithKey(
      { accountId, name: 'demo', createdAt },
      { keyId: key.keyId, accountId, role: 'owner', secretHash: key.secretHash, createdAt },
    );
    const { Items = [] } = await clients.documents.send(new ScanCommand({ TableName: entry.table }));
    const everything = JSON.stringify(Items);
    const { secret } = parseApiKey(key.token) ?? { secret: 'unparseable' };
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(key.token);
    const stored = await repo.getApiKey(key.keyId);
    expect(stored?.accountId).toBe(accountId);
    expect(secretMatches(secret, stored?.secretHash ?? '')).toBe(true);
  });

  it('refuses to create an account twice, leaving the first one as it was', async () => {
    const { entry, clients } = await freshRegion();
    const repo = new AccountRepository(clients.documents, entry.table);
    const accountId = newId('account');
    const first = issueApiKey();
    const createdAt = '2026-01-01T00:00:00.000Z';
    await repo.createAccountWithKey(
      { accountId, name: 'first', createdAt },
      { keyId: first.keyId, accountId, role: 'owner', secretHash: first.secretHash, createdAt },
    );
    const second = issueApiKey();
    await expect(
      repo.createAccountWithKey(
        { accountId, name: 'second', createdAt },
        { keyId: second.keyId, accountId, role: 'owner', secretHash: second.secretHash, createdAt },
      ),
    ).rejects.toThrow();
    expect((await repo.getAccount(accountId))?.name).toBe('first');
    expect(await repo.getApiKey(second.keyId)).toBeUndefined();
  });
});
