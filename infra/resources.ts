import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { parse } from 'yaml';

/** The CloudFormation properties of the region table, as `infra/table.yml` gives them. */
export interface TableDefinition {
  BillingMode: 'PAY_PER_REQUEST' | 'PROVISIONED';
  AttributeDefinitions: CreateTableCommandInput['AttributeDefinitions'];
  KeySchema: CreateTableCommandInput['KeySchema'];
  GlobalSecondaryIndexes?: CreateTableCommandInput['GlobalSecondaryIndexes'];
  TimeToLiveSpecification?: { AttributeName: string; Enabled: boolean };
}

function readYaml<T>(name: string): T {
  return parse(readFileSync(fileURLToPath(new URL(name, import.meta.url)), 'utf8')) as T;
}

export function tableDefinition(): TableDefinition {
  return readYaml<TableDefinition>('./table.yml');
}

/** The identity table's properties (`infra/identity-table.yml`), replicated to every region on AWS. */
export function identityTableDefinition(): TableDefinition {
  return readYaml<TableDefinition>('./identity-table.yml');
}

/** The CreateTable request for a table of `infra/table.yml`'s shape, named `tableName`. */
export function createTableInput(tableName: string, definition = tableDefinition()): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: definition.BillingMode,
    AttributeDefinitions: definition.AttributeDefinitions,
    KeySchema: definition.KeySchema,
    GlobalSecondaryIndexes: definition.GlobalSecondaryIndexes,
  };
}

/** Names of a region's resources in the local cloud (on AWS, CloudFormation names them). */
export function localResourceNames(region: string): {
  table: string;
  bucket: string;
  queue: string;
  identityTable: string;
} {
  return {
    table: `volsnap-local-${region}`,
    // One name in every region, as a global table's replicas have.
    identityTable: 'volsnap-local-identity',
    bucket: `volsnap-local-${region}`,
    queue: `volsnap-local-${region}-work`,
  };
}
