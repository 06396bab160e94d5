import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { createTableInput, identityTableDefinition, tableDefinition } from '../../infra/resources.ts';

/**
 * Creates a region's table (key schema, GSIs, TTL), its replica of the identity table and its
 * bucket from the definitions in `infra/`, the ones serverless.yml deploys. Idempotent: existing
 * resources are left as they are, except that an existing table (a data dir from an earlier
 * version) gets the indexes it lacks, as a deploy adds them on AWS.
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
    await addMissingIndexes(dynamodb, input);
  }
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 30 }, { TableName: input.TableName });
}

/** Adds the definition's GSIs an existing table lacks, one update each (as DynamoDB allows), waiting for each. */
async function addMissingIndexes(dynamodb: DynamoDBClient, input: CreateTableCommandInput): Promise<void> {
  const describe = () => dynamodb.send(new DescribeTableCommand({ TableName: input.TableName }));
  const existing = new Set(((await describe()).Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
  for (const index of input.GlobalSecondaryIndexes ?? []) {
    if (existing.has(index.IndexName)) continue;
    const keys = new Set(index.KeySchema?.map((k) => k.AttributeName));
    await dynamodb.send(
      new UpdateTableCommand({
        TableName: input.TableName,
        AttributeDefinitions: input.AttributeDefinitions?.filter((a) => keys.has(a.AttributeName)),
        GlobalSecondaryIndexUpdates: [{ Create: index }],
      }),
    );
    // DynamoDB Local builds an index in seconds alone, far longer beside other test runs: wait up to
    // 3 minutes, and fail rather than go on with an index that cannot be queried yet.
    const deadline = Date.now() + 180_000;
    for (;;) {
      const status = (await describe()).Table?.GlobalSecondaryIndexes?.find(
        (i) => i.IndexName === index.IndexName,
      )?.IndexStatus;
      if (status === 'ACTIVE') break;
      if (Date.now() > deadline)
        throw new Error(`Index ${index.IndexName} of ${input.TableName} is still ${status} after 3 minutes.`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
