import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NETWORK_ERROR_CODES, VolsnapError } from '../../core/shared/errors.ts';

/**
 * DynamoDB's exceptions, read in one place. Repositories ask {@link isConditionFailed} and
 * {@link cancellationCodes} for the refusals they expect (a condition, a transaction item); the
 * ones a caller can only wait out (throttling, an unavailable or conflicting service, the network)
 * are translated once, for every command, by {@link translateDynamoErrors} on the client.
 */

/** Whether a single-item write was refused by its `ConditionExpression`. */
export function isConditionFailed(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as { name?: unknown } | null)?.name === 'ConditionalCheckFailedException'
  );
}

/** Whether a `TransactWriteItems` was cancelled (for any reason: a condition, a conflict). */
export function isTransactionCanceled(error: unknown): error is TransactionCanceledException {
  return error instanceof TransactionCanceledException;
}

/**
 * The cancellation reason of each item of a cancelled transaction, in the order the items were
 * sent (`'None'`, `'ConditionalCheckFailed'`, `'TransactionConflict'`, …); empty for any other error.
 */
export function cancellationCodes(error: unknown): readonly (string | undefined)[] {
  if (!isTransactionCanceled(error)) return [];
  return (error.CancellationReasons ?? []).map((reason) => reason.Code);
}

/** Whether item `index` of a cancelled transaction failed its condition. */
export function itemConditionFailed(error: unknown, index: number): boolean {
  return cancellationCodes(error)[index] === 'ConditionalCheckFailed';
}

/**
 * Whether DynamoDB refused a write on its condition: a single item's `ConditionExpression` failed,
 * or a transaction was cancelled (an item's condition failed, or the items could not be applied
 * together). Throttling and conflicts never get here: {@link translateDynamoErrors} turned them
 * into `storage.*` errors first.
 */
export function isRefused(error: unknown): boolean {
  return isConditionFailed(error) || isTransactionCanceled(error);
}

/**
 * Awaits a conditional write (a `send` of an UpdateItem, PutItem, DeleteItem or TransactWriteItems):
 * its output, or `undefined` if DynamoDB refused it on a condition ({@link isRefused}). Every other
 * error is thrown as it is. The one place the repositories catch a failed condition.
 */
export async function unlessRefused<T>(write: Promise<T>): Promise<T | undefined> {
  try {
    return await write;
  } catch (error) {
    if (isRefused(error)) return undefined;
    throw error;
  }
}

/** Whether a conditional write was applied: false if DynamoDB refused it on a condition ({@link unlessRefused}). */
export async function applied(write: Promise<unknown>): Promise<boolean> {
  return (await unlessRefused(write)) !== undefined;
}

/** Seconds a client is told to wait after each kind of refusal (`Retry-After`). */
export const RETRY_AFTER_SECONDS = { throttled: 2, unavailable: 1 } as const;

const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
]);
const UNAVAILABLE = new Set([
  'InternalServerError',
  'ServiceUnavailable',
  'TransactionConflictException',
  'TransactionInProgressException',
  'ReplicatedWriteConflictException',
  'TimeoutError',
]);
/** Cancellation reasons of a transaction that say "try again", not "your condition failed". */
const THROTTLING_REASONS = new Set(['ThrottlingError', 'ProvisionedThroughputExceeded']);
const CONFLICT_REASONS = new Set(['TransactionConflict']);

/**
 * The VolsnapError a DynamoDB failure a caller can only wait out stands for, the SDK's exception
 * kept as `cause`: `storage.throttled` for throttling (after the SDK's own retries), and
 * `storage.unavailable` for a failing service, a write conflicting with a transaction, or the
 * network. `undefined` for every other error (a failed condition, a validation error, a bug),
 * which the repositories handle or let through as they are. A cancelled transaction is translated
 * only when no item failed its condition and some item was throttled or conflicted.
 */
export function translateDynamoError(error: unknown): VolsnapError | undefined {
  if (error instanceof VolsnapError || error === null || typeof error !== 'object') return undefined;
  const { name, code } = error as { name?: unknown; code?: unknown };
  if (isTransactionCanceled(error)) {
    const codes = cancellationCodes(error);
    if (codes.includes('ConditionalCheckFailed')) return undefined;
    if (codes.some((c) => c !== undefined && THROTTLING_REASONS.has(c))) return throttled(error);
    if (codes.some((c) => c !== undefined && CONFLICT_REASONS.has(c))) return unavailable(error);
    return undefined;
  }
  if (typeof name === 'string' && THROTTLING.has(name)) return throttled(error);
  if (typeof name === 'string' && UNAVAILABLE.has(name)) return unavailable(error);
  if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return unavailable(error);
  return undefined;
}

function throttled(cause: unknown): VolsnapError {
  return new VolsnapError(
    'storage.throttled',
    `The table is throttling requests; retry in ${RETRY_AFTER_SECONDS.throttled} seconds.`,
    { cause, details: { retryAfterSeconds: RETRY_AFTER_SECONDS.throttled } },
  );
}

function unavailable(cause: unknown): VolsnapError {
  return new VolsnapError(
    'storage.unavailable',
    `The table did not answer as expected; retry in ${RETRY_AFTER_SECONDS.unavailable} second.`,
    { cause, details: { retryAfterSeconds: RETRY_AFTER_SECONDS.unavailable } },
  );
}

/** The name of the middleware {@link translateDynamoErrors} adds (so tests can place theirs under it). */
export const TRANSLATE_MIDDLEWARE = 'volsnapTranslateDynamoErrors';

/**
 * Translates, on every command the client sends, the errors {@link translateDynamoError} knows;
 * others are rethrown unchanged. Installed once where the clients are built: the document client
 * shares its middleware stack with the client it wraps, so both translate. Outermost (initialize
 * step, high priority), so it sees the error the SDK gives up with after its own retries.
 * Idempotent: installing it twice keeps one.
 */
export function translateDynamoErrors<Client extends DynamoDBDocumentClient | DynamoDBClient>(
  client: Client,
): Client {
  const stack = client.middlewareStack as DynamoDBDocumentClient['middlewareStack'];
  if (stack.identify().some((entry) => entry.startsWith(TRANSLATE_MIDDLEWARE))) return client;
  stack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        throw translateDynamoError(error) ?? error;
      }
    },
    { step: 'initialize', priority: 'high', name: TRANSLATE_MIDDLEWARE },
  );
  return client;
}
