import {
  DynamoDBServiceException,
  InternalServerError,
  ProvisionedThroughputExceededException,
  RequestLimitExceeded,
  ThrottlingException,
  TransactionCanceledException,
  TransactionConflictException,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** A fault the table would answer with, built as the SDK's deserializer builds it. */
export type DynamoFault = () => Error;

const metadata = (httpStatusCode: number) => ({
  httpStatusCode,
  requestId: 'fault-injected',
  attempts: 1,
  totalRetryDelay: 0,
});

/** The SDK's own exception classes, constructed as its deserializer does (message, `$metadata`). */
export const dynamoFaults = {
  provisionedThroughputExceeded: () =>
    new ProvisionedThroughputExceededException({
      message: 'The level of configured provisioned throughput for the table was exceeded.',
      $metadata: metadata(400),
    }),
  throttling: () =>
    new ThrottlingException({
      message: 'Rate of requests exceeds the allowed throughput.',
      $metadata: metadata(400),
    }),
  requestLimitExceeded: () =>
    new RequestLimitExceeded({
      message: 'Throughput exceeds the current throughput limit for your account.',
      $metadata: metadata(400),
    }),
  internalServerError: () =>
    new InternalServerError({ message: 'Internal server error', $metadata: metadata(500) }),
  /** Not modelled by the SDK: its deserializer answers an unknown code with the base class named after it. */
  serviceUnavailable: () =>
    new DynamoDBServiceException({
      name: 'ServiceUnavailable',
      message: 'Service unavailable',
      $fault: 'server',
      $metadata: metadata(503),
    }),
  transactionConflict: () =>
    new TransactionConflictException({
      message: 'Transaction is ongoing for the item',
      $metadata: metadata(400),
    }),
  /** A transaction cancelled with `codes` as the reasons of its items, in order. */
  transactionCanceled:
    (...codes: string[]) =>
    () =>
      new TransactionCanceledException({
        message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes.join(', ')}]`,
        $metadata: metadata(400),
        CancellationReasons: codes.map((Code) => ({ Code })),
      }),
} satisfies Record<string, DynamoFault | ((...codes: string[]) => DynamoFault)>;

/** Controls a client {@link injectDynamoFaults} was applied to. */
export interface DynamoFaultInjector {
  /**
   * The next `count` commands the client sends (only those named `command`, if given) fail with
   * `fault()` (a fresh error each); then it answers again.
   */
  failNext(count: number, fault: DynamoFault, command?: string): void;
  /** Commands that were failed so far, by command name (`GetCommand`, `TransactWriteCommand`, …). */
  readonly failed: string[];
}

/**
 * Makes a REAL document client (one `createAwsClients` built, talking to DynamoDB Local) fail its
 * next commands with the SDK's own exceptions, for what no emulator produces (throttling, a failing
 * service, transaction conflicts). The fault is a middleware at the build step: under the
 * production error translation (initialize step) so it sees these errors as it would from AWS,
 * and above the SDK's retry (finalizeRequest step) so each failed command is one `send`, not
 * retried with backoff. Commands not failed go to the table unchanged.
 */
export function injectDynamoFaults(documents: DynamoDBDocumentClient): DynamoFaultInjector {
  const queue: { fault: DynamoFault; command: string | undefined }[] = [];
  const failed: string[] = [];
  documents.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName);
      const index = queue.findIndex((f) => f.command === undefined || f.command === name);
      if (index < 0) return next(args);
      const [{ fault }] = queue.splice(index, 1) as [{ fault: DynamoFault; command: string | undefined }];
      failed.push(name);
      throw fault();
    },
    { step: 'build', priority: 'high', name: 'testInjectDynamoFaults' },
  );
  return {
    failNext(count, fault, command) {
      for (let i = 0; i < count; i++) queue.push({ fault, command });
    },
    failed,
  };
}
