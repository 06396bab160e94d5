import { DescribeTableCommand, DescribeTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { tableDefinition } from '../../infra/resources.ts';
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

  it('is idempotent: provisioning an existing region changes nothing and does not fail', async () => {
    const { entry, clients } = await freshRegion();
    await expect(
      provisionRegion(clients, { table: entry.table, bucket: entry.bucket }),
    ).resolves.toBeUndefined();
  });
});
