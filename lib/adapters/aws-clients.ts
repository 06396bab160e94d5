import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { RegionEntry } from '../config/regions.ts';
import { translateDynamoErrors } from './dynamodb/errors.ts';

/** The SDK clients of one region. Created once per region and reused (connections are kept alive). */
export interface AwsClients {
  region: RegionEntry;
  s3: S3Client;
  dynamodb: DynamoDBClient;
  documents: DynamoDBDocumentClient;
  sqs: SQSClient;
}

/** Static credentials, for the local cloud and tests; on AWS the SDK's default chain applies. */
export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * S3 client settings every volsnap S3 client uses, the presigner's included. Checksums only when
 * an operation requires them: the SDK's default CRC32 breaks streamed uploads to S3-compatible
 * stores and bakes the CRC32 of an empty body into presigned PUT URLs.
 */
export function s3ClientConfig(region: RegionEntry, credentials?: StaticCredentials) {
  return {
    region: region.name,
    endpoint: region.s3Endpoint,
    forcePathStyle: region.s3ForcePathStyle ?? false,
    requestChecksumCalculation: 'WHEN_REQUIRED' as const,
    responseChecksumValidation: 'WHEN_REQUIRED' as const,
    credentials,
    requestHandler: keepAliveHandler(),
  };
}

/** Keep-alive connections (one TLS handshake per connection, not per request), as plain options so the
 * SDK builds its own handler and bundles need nothing from @smithy. */
function keepAliveHandler() {
  return {
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 64 }),
    connectionTimeout: 5_000,
    requestTimeout: 120_000,
  };
}

/** A region's S3 client (keep-alive, checksums only where required). */
export function createS3Client(region: RegionEntry, credentials?: StaticCredentials): S3Client {
  return withoutLogging(new S3Client(s3ClientConfig(region, credentials)));
}

/**
 * The client without the SDK's logger middleware. volsnap gives its clients no logger (it logs
 * itself), yet with the SDK's no-op logger that middleware still copies every input and output
 * through the schema's sensitive-data filter before handing it to the no-op: a walk over every
 * DynamoDB item and S3 answer, on every call, for nothing.
 */
function withoutLogging<T extends { middlewareStack: { remove(name: string): boolean } }>(client: T): T {
  client.middlewareStack.remove('loggerMiddleware');
  return client;
}

/**
 * A region's DynamoDB document client. Throttling and unavailability become `storage.throttled`/
 * `storage.unavailable` (503 with Retry-After) here, once for every repository, instead of a 500.
 */
export function createDocumentClient(
  region: RegionEntry,
  credentials?: StaticCredentials,
): { dynamodb: DynamoDBClient; documents: DynamoDBDocumentClient } {
  const dynamodb = withoutLogging(
    new DynamoDBClient({
      region: region.name,
      endpoint: region.dynamodbEndpoint,
      credentials,
      requestHandler: keepAliveHandler(),
    }),
  );
  const documents = translateDynamoErrors(
    DynamoDBDocumentClient.from(dynamodb, {
      // The marshaller tells a map from a class instance by `value.constructor`: a record with a key
      // `constructor` (a tag, a property) would be refused as a class instance ("Unsupported type
      // passed"). Items here are plain data, so every object is marshalled as a map of its own keys.
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
    }),
  );
  return { dynamodb, documents };
}

/** A region's SQS client. */
export function createSqsClient(region: RegionEntry, credentials?: StaticCredentials): SQSClient {
  return new SQSClient({ region: region.name, endpoint: region.sqsEndpoint, credentials });
}

/**
 * All the SDK clients of a region, for scripts and the local cloud. Functions make each client in
 * its own module (lib/aws), so a bundle carries only the SDK clients its services use.
 */
export function createAwsClients(region: RegionEntry, credentials?: StaticCredentials): AwsClients {
  return {
    region,
    s3: createS3Client(region, credentials),
    ...createDocumentClient(region, credentials),
    sqs: createSqsClient(region, credentials),
  };
}
