import { parseArgs } from 'node:util';
import { createAwsClients } from '../lib/adapters/aws-clients.ts';
import { systemClock } from '../lib/adapters/clock.ts';
import { DynamoIdentityRepository } from '../lib/adapters/dynamodb/accounts.ts';
import { bootstrapAccount } from '../lib/core/identity/accounts.ts';

/**
 * `npm run bootstrap -- --region eu-west-1 --table <TableName> [--name operator]`: creates the
 * service operator's account in a deployment's identity table (or issues its owner a new key if it
 * exists) and prints the key, once. Runs with your AWS credentials, against DynamoDB directly: it is
 * how the first key comes to exist. Everything after goes through the API (`volsnap admin …`).
 */
const { values } = parseArgs({
  options: {
    region: { type: 'string' },
    table: { type: 'string' },
    name: { type: 'string', default: 'operator' },
    endpoint: { type: 'string' },
  },
});
if (!values.region || !values.table) {
  console.error(
    'usage: npm run bootstrap -- --region <region> --table <identity table name> [--name operator]',
  );
  process.exit(2);
}
const clients = createAwsClients({
  name: values.region,
  table: values.table,
  bucket: 'unused-by-bootstrap',
  dynamodbEndpoint: values.endpoint,
});
const identity = new DynamoIdentityRepository(clients.documents, values.table);
const { account, key } = await bootstrapAccount(identity, systemClock, { name: values.name, operator: true });
console.log(
  `operator account ${account.name} (${account.accountId})\nkey ${key.token}\nStore the key now: it cannot be shown again.`,
);
