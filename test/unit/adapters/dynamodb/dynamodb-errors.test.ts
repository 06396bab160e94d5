import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import {
  cancellationCodes,
  isConditionFailed,
  isRefused,
  itemConditionFailed,
  translateDynamoError,
  unlessRefused,
} from '../../../../lib/adapters/dynamodb/errors.ts';
import { VolsnapError } from '../../../../lib/core/shared/errors.ts';
import { publicHttpHandler } from '../../../../lib/http/stack.ts';
import { httpEvent, lambdaContext } from '../../../support/events.ts';
import { dynamoFaults } from '../../../support/faulty-dynamodb.ts';

async function answer(thrown: unknown) {
  const failing = publicHttpHandler({}, async () => {
    throw thrown;
  });
  const result = (await failing(httpEvent(), lambdaContext)) as APIGatewayProxyStructuredResultV2;
  return { status: result.statusCode, headers: result.headers ?? {}, body: JSON.parse(String(result.body)) };
}

describe('translateDynamoError', () => {
  it('maps the SDK’s throttling exceptions to storage.throttled and failures/conflicts to storage.unavailable, cause kept', () => {
    const cases = [
      [dynamoFaults.provisionedThroughputExceeded(), 'storage.throttled'],
      [dynamoFaults.throttling(), 'storage.throttled'],
      [dynamoFaults.requestLimitExceeded(), 'storage.throttled'],
      [dynamoFaults.transactionCanceled('None', 'ThrottlingError')(), 'storage.throttled'],
      [dynamoFaults.internalServerError(), 'storage.unavailable'],
      [dynamoFaults.serviceUnavailable(), 'storage.unavailable'],
      [dynamoFaults.transactionConflict(), 'storage.unavailable'],
      [dynamoFaults.transactionCanceled('TransactionConflict', 'None')(), 'storage.unavailable'],
      [
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), { code: 'ECONNREFUSED' }),
        'storage.unavailable',
      ],
    ] as const;
    for (const [error, code] of cases) {
      const translated = translateDynamoError(error);
      expect(translated, error.name).toBeInstanceOf(VolsnapError);
      expect(translated?.code, error.name).toBe(code);
      expect(translated?.status).toBe(503);
      expect(translated?.cause).toBe(error);
      expect(translated?.message).toMatch(/retry in \d+ second/);
    }
  });

  it('leaves what the repositories answer themselves: failed conditions, a transaction with a failed condition, other errors', () => {
    const conditional = new ConditionalCheckFailedException({
      message: 'The conditional request failed',
      $metadata: {},
    });
    expect(translateDynamoError(conditional)).toBeUndefined();
    expect(
      translateDynamoError(
        dynamoFaults.transactionCanceled('TransactionConflict', 'ConditionalCheckFailed')(),
      ),
    ).toBeUndefined();
    expect(translateDynamoError(new TypeError('bug'))).toBeUndefined();
    const already = new VolsnapError('volume.notFound', 'No volume.');
    expect(translateDynamoError(already)).toBeUndefined();
  });

  it('reads conditions and cancellation reasons', () => {
    const canceled = dynamoFaults.transactionCanceled('None', 'ConditionalCheckFailed')();
    expect(isConditionFailed(new ConditionalCheckFailedException({ message: 'no', $metadata: {} }))).toBe(
      true,
    );
    expect(isConditionFailed(canceled)).toBe(false);
    expect(cancellationCodes(canceled)).toEqual(['None', 'ConditionalCheckFailed']);
    expect(cancellationCodes(new Error('other'))).toEqual([]);
    expect(itemConditionFailed(canceled, 1)).toBe(true);
    expect(itemConditionFailed(canceled, 0)).toBe(false);
  });

  it('answers a write refused on its condition (one item or a transaction) with undefined, and throws every other error', async () => {
    const refusedItem = new ConditionalCheckFailedException({ message: 'no', $metadata: {} });
    const refusedTransaction = dynamoFaults.transactionCanceled('None', 'ConditionalCheckFailed')();
    expect(isRefused(refusedItem)).toBe(true);
    expect(isRefused(refusedTransaction)).toBe(true);
    await expect(unlessRefused(Promise.reject(refusedItem))).resolves.toBeUndefined();
    await expect(unlessRefused(Promise.reject(refusedTransaction))).resolves.toBeUndefined();
    await expect(unlessRefused(Promise.resolve({ Attributes: { a: 1 } }))).resolves.toEqual({
      Attributes: { a: 1 },
    });
    const throttled = translateDynamoError(dynamoFaults.throttling());
    expect(isRefused(throttled)).toBe(false);
    await expect(unlessRefused(Promise.reject(throttled))).rejects.toBe(throttled);
    await expect(unlessRefused(Promise.reject(new TypeError('bug')))).rejects.toThrow('bug');
  });
});

describe('the HTTP stack, for a translated DynamoDB error', () => {
  it('answers storage.throttled as 503 with Retry-After and the code, the cause logged but not shown', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const response = await answer(translateDynamoError(dynamoFaults.provisionedThroughputExceeded()));
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('2');
    expect(response.body).toEqual({
      error: 'storage.throttled',
      message: 'The service is busy; retry in 2 seconds.',
      requestId: 'req-test',
    });
    const logged = log.mock.calls.map((c) => String(c[0])).join('\n');
    expect(logged).toContain('ProvisionedThroughputExceededException');
    log.mockRestore();
  });

  it('answers storage.unavailable as 503 with Retry-After: 1, with or without a retryAfterSeconds detail', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const fromDynamo = await answer(translateDynamoError(dynamoFaults.internalServerError()));
    expect(fromDynamo.status).toBe(503);
    expect(fromDynamo.headers['retry-after']).toBe('1');
    expect(fromDynamo.body.error).toBe('storage.unavailable');
    const fromS3 = await answer(
      new VolsnapError('storage.unavailable', 'Object storage did not answer; retry shortly.'),
    );
    expect(fromS3.status).toBe(503);
    expect(fromS3.headers['retry-after']).toBe('1');
    log.mockRestore();
  });

  it('still answers an untranslated error as a 500 internal without Retry-After', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const response = await answer(new TypeError('bug'));
    expect(response.status).toBe(500);
    expect(response.body.error).toBe('internal');
    expect(response.headers['retry-after']).toBeUndefined();
    log.mockRestore();
  });
});
