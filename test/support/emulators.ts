import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { type AwsClients, createAwsClients } from '../../lib/adapters/aws-clients.ts';
import type { RegionEntry } from '../../lib/config/regions.ts';
import { LOCAL_CREDENTIALS } from '../../scripts/local-cloud/cloud.ts';
import { provisionRegion } from '../../scripts/local-cloud/provision.ts';

/** Refuses to point a test at anything but this machine: integration tests never touch real AWS. */
export function assertLoopback(endpoint: string): string {
  const host = new URL(endpoint).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
    throw new Error(`Integration tests run against local emulators only, not ${endpoint}.`);
  }
  return endpoint;
}

/** A region entry on the shared emulators, with its own fresh table and bucket. */
export async function freshRegion(name = 'eu-west-1'): Promise<{ entry: RegionEntry; clients: AwsClients }> {
  const suffix = randomBytes(4).toString('hex');
  const entry: RegionEntry = {
    name,
    bucket: `it-${suffix}`,
    table: `it-${suffix}`,
    s3Endpoint: assertLoopback(inject('s3Endpoint')),
    dynamodbEndpoint: assertLoopback(inject('dynamodbEndpoint')),
    s3ForcePathStyle: true,
  };
  const clients = createAwsClients(entry, LOCAL_CREDENTIALS);
  await provisionRegion(clients, { table: entry.table, bucket: entry.bucket });
  return { entry, clients };
}
