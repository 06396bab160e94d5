import {
  CreateTableCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { createTableInput, identityTableDefinition, tableDefinition } from '../../infra/resources.ts';

/**
 * Creates a region's table (key schema, GSIs, TTL), its replica of the identity table and its
 * bucket from the definitions in `infra/`, the ones serverless.yml deploys. Idempotent: existing
 * resources are left as they are.
 */
export async function provisionRegion(
  clients: { dynamodb: DynamoDBClient; s3: S3Client },
  names: { table: string; bucket: string; identityTable?: string },
) {
  const definition = tableDefinition();
  await createTable(clients.dynamodb, createTableInput(names.table, definition));
  if (names.identityTable)
    await createTable(clients.dynamodb, createTableInput(names.identityTable, identityTableDefinition()));
  if (definition.TimeToLiveSpecification?.Enabled) {
    try {
      await clients.dynamodb.send(
        new UpdateTimeToLiveCommand({
          TableName: names.table,
          TimeToLiveSpecification: {
            AttributeName: definition.TimeToLiveSpecification.AttributeName,
            Enabled: true,
          },
        }),
      );
    } catch (error) {
      // Enabling TTL twice is a ValidationException ("TimeToLive is already enabled"): nothing to do.
      if (!/already enabled/i.test((error as Error).message)) throw error;
    }
  }
  try {
    await clients.s3.send(new CreateBucketCommand({ Bucket: names.bucket }));
  } catch (error) {
    const name = (error as Error).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
  }
}

async function createTable(dynamodb: DynamoDBClient, input: CreateTableCommandInput): Promise<void> {
  try {
    await dynamodb.send(new CreateTableCommand(input));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 30 }, { TableName: input.TableName });
}
