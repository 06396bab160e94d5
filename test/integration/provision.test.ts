import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { createTableInput, tableDefinition } from '../../infra/resources.ts';
import { createAwsClients } from '../../lib/adapters/aws-clients.ts';
import { DynamoSnapshotRepository } from '../../lib/adapters/dynamodb/snapshots.ts';
import { newId } from '../../lib/core/shared/ids.ts';
import { LOCAL_CREDENTIALS } from '../../scripts/local-cloud/cloud.ts';
import { freePort, startDynamoEmulator } from '../../scripts/local-cloud/processes.ts';
import { provisionRegion } from '../../scripts/local-cloud/provision.ts';
import { freshRegion } from '../support/emulators.ts';

describe('provisioning a region from infra/', () => {
  it("creates the table with infra/table.yml's keys, indexes and TTL, and the bucket", async () => {
    const { entry, clients } = await freshRegion();
    const { Table } = await clients.dynamodb.send(new DescribeTableCommand({ TableName: entry.table }));
    const definition = tableDefinition();
    expect(Table?.KeySchema).toEqual(definition.KeySchema);
    expect(Table?.GlobalSecondaryIndexes?.map((i) => [i.IndexName, i.KeySchema]).sort()).toEqual(
      definition.GlobalSecondaryIndexes?.map((i) => [i.IndexName, i.KeySchema]).sort(),
    );
    const ttl = await clients.dynamodb.send(new DescribeTimeToLiveCommand({ TableName: entry.table }));
    expect(ttl.TimeToLiveDescription?.AttributeName).toBe(definition.TimeToLiveSpecification?.AttributeName);
    expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).toBe('ENABLED');
    await expect(clients.s3.send(new HeadBucketCommand({ Bucket: entry.bucket }))).resolves.toBeDefined();
  });

  // Building an index takes DynamoDB Local long beside other test files: a longer timeout.
  it('adds the indexes a table from an earlier version lacks, and maintenance then finds its older items', {
    timeout: 240_000,
  }, async () => {
    // A DynamoDB Local of its own: beside the other test files' traffic on the shared one, an index
    // added to an existing table stayed CREATING for minutes (alone it is ACTIVE in about a second).
    const { entry: shared } = await freshRegion();
    const port = await freePort();
    const dynamo = await startDynamoEmulator(mkdtempSync(join(tmpdir(), 'volsnap-provision-')), port, {
      regions: [shared.name],
    });
    const entry = { ...shared, dynamodbEndpoint: `http://127.0.0.1:${dynamo.port}` };
    const clients = createAwsClients(entry, LOCAL_CREDENTIALS);
    try {
      await provisionOlderTable(entry, clients);
    } finally {
      await dynamo.stop();
    }
  });

  async function provisionOlderTable(
    entry: Awaited<ReturnType<typeof freshRegion>>['entry'],
    clients: Awaited<ReturnType<typeof freshRegion>>['clients'],
  ): Promise<void> {
    const table = `${entry.table}-old`;
    const current = tableDefinition();
    // The table as the version before gsi4 made it, with a queued snapshot past its deadline in it.
    await clients.dynamodb.send(
      new CreateTableCommand(
        createTableInput(table, {
          ...current,
          GlobalSecondaryIndexes: current.GlobalSecondaryIndexes?.filter((i) => i.IndexName !== 'gsi4'),
          AttributeDefinitions: current.AttributeDefinitions?.filter(
            (a) => !a.AttributeName?.startsWith('gsi4'),
          ),
        }),
      ),
    );
    const snapshotId = newId('snapshot');
    await clients.documents.send(
      new PutCommand({
        TableName: table,
        Item: {
          pk: `SNAPSHOT#${snapshotId}`,
          sk: 'SNAPSHOT',
          type: 'snapshot',
          snapshotId,
          state: 'queued',
          deadline: '2026-01-01T00:00:00.000Z',
          createdAt: '2025-12-31T00:00:00.000Z',
        },
      }),
    );
    await provisionRegion(clients, { table, bucket: entry.bucket });
    const { Table } = await clients.dynamodb.send(new DescribeTableCommand({ TableName: table }));
    expect(Table?.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual([
      'gsi1',
      'gsi2',
      'gsi3',
      'gsi4',
    ]);
    const snapshots = new DynamoSnapshotRepository(clients.documents, table, () => 0);
    const due = await snapshots.listInState('queued', { limit: 10 }, '2026-01-02T00:00:00.000Z');
    expect(due.items.map((s) => s.snapshotId)).toEqual([snapshotId]);
  }

  it('is idempotent: provisioning an existing region changes nothing and does not fail', async () => {
    const { entry, clients } = await freshRegion();
    await expect(
      provisionRegion(clients, { table: entry.table, bucket: entry.bucket }),
    ).resolves.toBeUndefined();
  });
});
