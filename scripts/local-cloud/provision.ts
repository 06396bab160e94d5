import {
  CreateTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { createTableInput, tableDefinition } from '../../infra/resources.ts';

/**
 * Creates a region's table (key schema, GSIs, TTL) and bucket from the definitions in `infra/`,
 * the ones serverless.yml deploys. Idempotent: existing resources are left as they are.
 */
export async function provisionRegion(
  clients: { dynamodb: DynamoDBClient; s3: S3Client },
  names: { table: string; bucket: string },
) {
  const definition = tableDefinition();
  try {
    await clients.dynamodb.send(new CreateTableCommand(createTableInput(names.table, definition)));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  await waitUntilTableExists({ client: clients.dynamodb, maxWaitTime: 30 }, { TableName: names.table });
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
