import {
  ConditionalCheckFailedException,
  InternalServerError,
  ProvisionedThroughputExceededException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { createAwsClients } from '../../lib/adapters/aws-clients.ts';
import { ManualClock } from '../../lib/adapters/clock.ts';
import { DynamoIdentityRepository } from '../../lib/adapters/dynamodb/accounts.ts';
import { DynamoVolumeRepository } from '../../lib/adapters/dynamodb/volumes.ts';
import { bootstrapAccount } from '../../lib/core/identity/accounts.ts';
import { newId } from '../../lib/core/shared/ids.ts';
import type { Volume } from '../../lib/core/volumes/volumes.ts';
import { LOCAL_CREDENTIALS } from '../../scripts/local-cloud/cloud.ts';
import { freshRegion } from '../support/emulators.ts';
import { dynamoFaults, injectDynamoFaults } from '../support/faulty-dynamodb.ts';

function volume(): Volume {
  return {
    volumeId: newId('volume'),
    accountId: 'acct-errors',
    name: 'data',
    sizeBytes: 1 << 20,
    tags: {},
    region: 'eu-west-1',
    createdAt: new Date(Date.UTC(2026, 0, 1)).toISOString(),
  };
}

const TRANSACT = 'TransactWriteItemsCommand';

describe('DynamoDB errors, translated once by the clients createAwsClients builds', () => {
  it('a throttled read surfaces as storage.throttled (503) with the SDK exception as cause, and the next read answers', async () => {
    const { entry, clients } = await freshRegion();
    const repo = new DynamoVolumeRepository(clients.documents, entry.table);
    const v = volume();
    await repo.create(v);
    const faults = injectDynamoFaults(clients.documents);
    faults.failNext(1, dynamoFaults.provisionedThroughputExceeded);

    const error = await repo.get(v.accountId, v.volumeId).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'storage.throttled', status: 503 });
    expect((error as Error).message).toMatch(/retry/);
    expect((error as Error).cause).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(faults.failed).toHaveLength(1);
    expect(await repo.get(v.accountId, v.volumeId)).toEqual(v);
  });

  it('each throttling exception of the SDK is storage.throttled; a failing service or a conflict is storage.unavailable', async () => {
    const { entry, clients } = await freshRegion();
    const repo = new DynamoVolumeRepository(clients.documents, entry.table);
    const faults = injectDynamoFaults(clients.documents);
    const cases = [
      [dynamoFaults.provisionedThroughputExceeded, 'storage.throttled'],
      [dynamoFaults.throttling, 'storage.throttled'],
      [dynamoFaults.requestLimitExceeded, 'storage.throttled'],
      [dynamoFaults.internalServerError, 'storage.unavailable'],
      [dynamoFaults.serviceUnavailable, 'storage.unavailable'],
      [dynamoFaults.transactionConflict, 'storage.unavailable'],
    ] as const;
    for (const [fault, code] of cases) {
      faults.failNext(1, fault);
      const error = await repo.create(volume()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, fault().name).toMatchObject({ code, cause: { name: fault().name } });
    }
    expect(faults.failed).toHaveLength(cases.length);
  });

  it('a condition DynamoDB Local refuses is still the repository’s to answer (not translated)', async () => {
    const { entry, clients } = await freshRegion();
    const repo = new DynamoVolumeRepository(clients.documents, entry.table);
    const v = volume();
    await repo.create(v);
    // create is conditional on the volume not existing: the real refusal reaches the caller as the SDK's.
    await expect(repo.create(v)).rejects.toBeInstanceOf(ConditionalCheckFailedException);
  });

  it('a transaction cancelled by a conflict is storage.unavailable; one cancelled by its condition is still account.nameTaken', async () => {
    const { entry, clients } = await freshRegion();
    const identity = new DynamoIdentityRepository(clients.documents, entry.table);
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const faults = injectDynamoFaults(clients.documents);
    faults.failNext(
      1,
      dynamoFaults.transactionCanceled('None', 'TransactionConflict', 'None', 'None'),
      TRANSACT,
    );

    const error = await bootstrapAccount(identity, clock, { name: 'acme' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'storage.unavailable', status: 503 });
    expect((error as Error).cause).toBeInstanceOf(TransactionCanceledException);

    faults.failNext(1, dynamoFaults.transactionCanceled('ThrottlingError', 'None', 'None', 'None'), TRANSACT);
    await expect(bootstrapAccount(identity, clock, { name: 'acme' })).rejects.toMatchObject({
      code: 'storage.throttled',
    });

    // A cancellation naming a failed condition is the repository's: the name item's is account.nameTaken.
    faults.failNext(
      1,
      dynamoFaults.transactionCanceled('ConditionalCheckFailed', 'None', 'None', 'None'),
      TRANSACT,
    );
    await expect(bootstrapAccount(identity, clock, { name: 'acme' })).rejects.toMatchObject({
      code: 'account.nameTaken',
    });

    // Nothing was written by the refused transactions: the account is created now.
    const { account } = await bootstrapAccount(identity, clock, { name: 'acme' });
    expect((await identity.findAccountByName('acme'))?.accountId).toBe(account.accountId);
    expect(faults.failed).toEqual([
      'TransactWriteItemsCommand',
      'TransactWriteItemsCommand',
      'TransactWriteItemsCommand',
    ]);
    faults.failNext(1, dynamoFaults.internalServerError, 'GetItemCommand');
    await expect(identity.getAccount(account.accountId)).rejects.toMatchObject({
      code: 'storage.unavailable',
      cause: expect.any(InternalServerError),
    });
  });

  it('a table that cannot be reached is storage.unavailable after the SDK’s retries, not a generic error', async () => {
    const { entry } = await freshRegion();
    // Port 9 (discard) on the loopback: nothing listens, so every connection is refused.
    const clients = createAwsClients({ ...entry, dynamodbEndpoint: 'http://127.0.0.1:9' }, LOCAL_CREDENTIALS);
    const repo = new DynamoVolumeRepository(clients.documents, entry.table);
    await expect(repo.get('acct-errors', 'vol-none')).rejects.toMatchObject({
      code: 'storage.unavailable',
      cause: { code: 'ECONNREFUSED' },
    });
  });
});
