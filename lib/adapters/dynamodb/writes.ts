import {
  type DynamoDBDocumentClient,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { applied, unlessRefused } from './errors.ts';
import type { UpdateParams } from './expressions.ts';

/** One item of a TransactWriteItems (its Put, Update, Delete or ConditionCheck built by expressions.ts). */
export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/**
 * Sends an update built by `updateItem` (expressions.ts): the item's attributes after it (`ALL_NEW`), or only
 * those it changed (`UPDATED_NEW`); undefined if its condition refused it.
 */
export async function updateReturning(
  documents: DynamoDBDocumentClient,
  params: UpdateParams,
  returnValues: 'ALL_NEW' | 'UPDATED_NEW' = 'ALL_NEW',
): Promise<Record<string, unknown> | undefined> {
  const output = await unlessRefused(
    documents.send(new UpdateCommand({ ...params, ReturnValues: returnValues })),
  );
  return output ? (output.Attributes ?? {}) : undefined;
}

/** Sends an update built by `updateItem`; false if its condition refused it. */
export function applyUpdate(documents: DynamoDBDocumentClient, params: UpdateParams): Promise<boolean> {
  return applied(documents.send(new UpdateCommand(params)));
}

/** Runs a transaction; false if it was refused (an item's condition failed: nothing was written). */
export function transact(documents: DynamoDBDocumentClient, items: TransactItem[]): Promise<boolean> {
  return applied(documents.send(new TransactWriteCommand({ TransactItems: items })));
}
