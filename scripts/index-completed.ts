import { parseArgs } from 'node:util';
import { createAwsClients } from '../lib/adapters/aws-clients.ts';
import { indexForMaintenance } from '../lib/adapters/dynamodb/maintenance-index.ts';
import { DynamoSnapshotRepository } from '../lib/adapters/dynamodb/snapshots.ts';

/**
 * `npm run index-completed -- --region eu-west-1 --table <TableName>`: once per region, after
 * upgrading a deployment made before the `gsi3` index: puts its completed snapshots into the index
 * of completed snapshots, so each volume's next snapshot finds its parent (and is incremental); and
 * after upgrading a deployment made before the `gsi4` index: puts its snapshots and exports into the
 * maintenance indexes (the reaper, expiry and GC read those), then marks the table done. Without it
 * the first maintenance run does the same pass itself (see lib/adapters/dynamodb/maintenance-index.ts).
 * Idempotent; runs with your AWS credentials against the region's table.
 */
const { values } = parseArgs({
  options: { region: { type: 'string' }, table: { type: 'string' }, endpoint: { type: 'string' } },
});
if (!values.region || !values.table) {
  console.error('usage: npm run index-completed -- --region <region> --table <region table name>');
  process.exit(2);
}
const clients = createAwsClients({
  name: values.region,
  table: values.table,
  bucket: 'unused-by-index-completed',
  dynamodbEndpoint: values.endpoint,
});
const snapshots = new DynamoSnapshotRepository(clients.documents, values.table, () => 0);
let total = 0;
let nextToken: string | undefined;
do {
  const page = await snapshots.indexCompleted({ limit: 500, nextToken });
  total += page.indexed;
  nextToken = page.nextToken;
} while (nextToken);
console.log(`indexed ${total} completed snapshots in ${values.table} (${values.region})`);
const maintained = await indexForMaintenance(clients.documents, values.table);
console.log(`wrote ${maintained} maintenance index entries in ${values.table} (${values.region})`);
