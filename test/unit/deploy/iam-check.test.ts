import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  deleteObjectsNeeds,
  dynamodbNeeds,
  type RecordedCall,
  s3NotFoundNeeds,
  s3Operation,
  sqsNeeds,
} from '../../../scripts/local-cloud/aws-calls.ts';
import {
  checkCalls,
  formatReport,
  localRegistry,
  localTemplateValues,
  type ResolvedStatement,
  resolveStatements,
  type TemplateStatement,
} from '../../../scripts/local-cloud/iam-check.ts';
import { ROOT } from '../../support/processes.ts';

/** infra/iam.cjs, the statements serverless.yml resolves (`${file(infra/iam.cjs):statements}`). */
const iam = createRequire(import.meta.url)('../../../infra/iam.cjs') as {
  statementsFor(
    region: string,
    registry: unknown[],
    identityRegion?: string,
    buckets?: { images: string[]; exports: string[] },
    identityTable?: string,
    sealingKeyAlias?: string,
  ): TemplateStatement[];
  loadRegistry(env: Record<string, string | undefined>): unknown[];
};

const REGIONS = ['eu-west-1', 'us-east-1'];
const IDENTITY = 'eu-west-1';
const IDENTITY_TABLE = 'volsnap-local-identity';
const SEALING_ALIAS = 'alias/volsnap-local-sealing';
const registryEnv = { VOLSNAP_REGIONS: JSON.stringify(localRegistry(REGIONS)) };

function statementsOf(region: string): TemplateStatement[] {
  return iam.statementsFor(
    region,
    iam.loadRegistry(registryEnv),
    IDENTITY,
    { images: [], exports: [] },
    IDENTITY_TABLE,
    SEALING_ALIAS,
  );
}

function resolvedRoles(edit: (region: string, s: TemplateStatement[]) => TemplateStatement[] = (_, s) => s) {
  return new Map<string, ResolvedStatement[]>(
    REGIONS.map((region) => [
      region,
      resolveStatements(edit(region, statementsOf(region)), localTemplateValues(region)),
    ]),
  );
}

/** Calls the e2e suite recorded (copy, policies-crud, snapshots), kept as a fixture. */
const recorded: RecordedCall[] = readFileSync(join(ROOT, 'test/fixtures/recorded-aws-calls.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line));

describe('the IAM check', () => {
  it('allows every recorded call under the generated statements, cross-region ones included', () => {
    expect(recorded.some((call) => call.role === 'us-east-1' && call.resource.includes(':eu-west-1:'))).toBe(
      true,
    );
    const result = checkCalls(recorded, resolvedRoles());
    expect(result.denied).toEqual([]);
    expect(formatReport(result)).toContain('Every recorded call is allowed.');
  });

  it('fails, naming the call, when one statement is removed', () => {
    // Without its own-queue statement, eu-west-1 may not ring its work queue.
    const withoutQueue = resolvedRoles((region, statements) =>
      region === 'eu-west-1'
        ? statements.filter((s) => !JSON.stringify(s.Resource).includes('WorkQueue'))
        : statements,
    );
    const result = checkCalls(recorded, withoutQueue);
    expect(result.denied.map((call) => `${call.role} ${call.action} ${call.resource}`)).toEqual([
      'eu-west-1 sqs:SendMessage arn:aws:sqs:eu-west-1:000000000000:volsnap-local-eu-west-1-work',
    ]);
    const report = formatReport(result);
    expect(report).toContain(
      'DENIED eu-west-1: sqs:SendMessage on arn:aws:sqs:eu-west-1:000000000000:volsnap-local-eu-west-1-work (sqs SendMessage)',
    );
  });

  it('allows what maintenance does on its table: the sparse indexes queried, what they name batch-read, the one-time pass', () => {
    const table = 'volsnap-local-eu-west-1';
    const maintenance: RecordedCall[] = [
      { operation: 'Query', body: { TableName: table, IndexName: 'gsi4' } },
      { operation: 'Query', body: { TableName: table, IndexName: 'gsi3' } },
      { operation: 'BatchGetItem', body: { RequestItems: { [table]: {} } } },
      { operation: 'Scan', body: { TableName: table } },
      { operation: 'PutItem', body: { TableName: table } },
    ].flatMap(({ operation, body }) =>
      dynamodbNeeds('eu-west-1', operation, body).map((need) => ({
        ...need,
        role: 'eu-west-1',
        service: 'dynamodb' as const,
        operation,
      })),
    );
    expect(maintenance.map((call) => call.resource)).toContain(
      `arn:aws:dynamodb:eu-west-1:000000000000:table/${table}/index/gsi4`,
    );
    expect(checkCalls(maintenance, resolvedRoles()).denied).toEqual([]);
  });

  it('grants another region only what the registry names, and the identity table only in its region', () => {
    const roles = resolvedRoles();
    const resources = (region: string) => roles.get(region)?.flatMap((s) => s.resources) ?? [];
    expect(resources('us-east-1')).toContain(
      'arn:aws:dynamodb:eu-west-1:000000000000:table/volsnap-local-eu-west-1/index/*',
    );
    expect(resources('us-east-1')).toContain(
      'arn:aws:sqs:eu-west-1:000000000000:volsnap-local-eu-west-1-work',
    );
    const identityDeletes = (region: string) =>
      roles
        .get(region)
        ?.filter((s) => s.actions.includes('dynamodb:DeleteItem'))
        .flatMap((s) => s.resources)
        .filter((r) => !r.includes(`:${region}:`));
    // Identity is written in the identity region's replica; every region reads its own.
    expect(identityDeletes('us-east-1')).toEqual([
      `arn:aws:dynamodb:eu-west-1:000000000000:table/${IDENTITY_TABLE}`,
    ]);
    expect(resources('us-east-1')).toContain(
      `arn:aws:dynamodb:us-east-1:000000000000:table/${IDENTITY_TABLE}`,
    );
    expect(identityDeletes('eu-west-1')).toEqual([]);
    // One region alone: its own table and indexes, bucket objects, bucket, queue, token key.
    expect(iam.statementsFor('eu-west-1', [])).toHaveLength(6);
    // The token key: GenerateMac on the stack's HMAC key (the local cloud makes no KMS calls, so
    // the check of recorded calls leaves KMS statements out: read them from the template).
    expect(
      statementsOf('eu-west-1').filter((s) => [s.Action ?? []].flat().includes('kms:GenerateMac')),
    ).toEqual([
      { Effect: 'Allow', Action: ['kms:GenerateMac'], Resource: { 'Fn::GetAtt': ['TokenKey', 'Arn'] } },
    ]);
  });

  it('grants the sealing key (identity region, by alias, under volsnap’s encryption context) in every region', () => {
    for (const region of REGIONS) {
      // The sealing key's statement (the token key's GenerateMac is another: see above).
      const kms = statementsOf(region).filter((s) =>
        [s.Action ?? []].flat().some((a) => a.startsWith('kms:') && a !== 'kms:GenerateMac'),
      );
      expect(kms).toEqual([
        {
          Effect: 'Allow',
          Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
          Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:kms:${IDENTITY}:\${AWS::AccountId}:key/*` },
          Condition: {
            'ForAnyValue:StringEquals': { 'kms:ResourceAliases': SEALING_ALIAS },
            StringEquals: { 'kms:EncryptionContext:purpose': 'volsnap-sealed-secret' },
          },
        },
      ]);
    }
    // The IAM check, which evaluates the calls the local cloud records (no KMS there), leaves it out.
    expect(
      resolvedRoles()
        .get('eu-west-1')
        ?.some((s) => s.actions.some((a) => a.startsWith('kms:'))),
    ).toBe(false);
  });

  it('is what osls resolves serverless.yml to', { timeout: 60_000 }, () => {
    const printed = execFileSync(
      'npx',
      ['--no-install', 'osls', 'print', '--stage', 'local', '--region', 'us-east-1', '--format', 'json'],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: {
          ...process.env,
          ...registryEnv,
          VOLSNAP_IDENTITY_REGION: IDENTITY,
          SLS_TELEMETRY_DISABLED: '1',
        },
      },
    );
    const config = JSON.parse(printed.slice(printed.indexOf('{')));
    expect(config.provider.iam.role.statements).toEqual(statementsOf('us-east-1'));
    expect(config.provider.environment.VOLSNAP_IDENTITY_REGION).toBe(IDENTITY);
    // SigV4 secrets are sealed with the identity region's KMS key, which every region names by alias.
    expect(config.provider.environment.VOLSNAP_SEALING_KMS_KEY).toEqual({
      'Fn::Sub': `arn:\${AWS::Partition}:kms:${IDENTITY}:\${AWS::AccountId}:${SEALING_ALIAS}`,
    });
    expect(config.resources.Resources.SealingKey).toMatchObject({
      Type: 'AWS::KMS::Key',
      Condition: 'IsIdentityRegion',
      Properties: { EnableKeyRotation: true },
    });
    expect(config.resources.Resources.SealingKeyAlias.Properties.AliasName).toBe(SEALING_ALIAS);
  });
});

describe('IAM policy evaluation', () => {
  it('holds wildcards as IAM does, and a Deny over an Allow', () => {
    const call: RecordedCall = {
      role: 'r',
      service: 's3',
      operation: 'GetObject',
      action: 's3:GetObject',
      resource: 'arn:aws:s3:::b/segments/a/1',
    };
    const allowAll: ResolvedStatement = {
      label: '#1',
      effect: 'Allow',
      actions: ['S3:Get*'],
      resources: ['arn:aws:s3:::b/*'],
    };
    const deny: ResolvedStatement = {
      ...allowAll,
      label: '#2',
      effect: 'Deny',
      resources: ['arn:aws:s3:::b/segments/?/*'],
    };
    expect(checkCalls([call], new Map([['r', [allowAll]]])).denied).toEqual([]);
    expect(checkCalls([call], new Map([['r', [allowAll, deny]]])).denied).toEqual([call]);
    expect(
      checkCalls([{ ...call, resource: 'arn:aws:s3:::bb/x' }], new Map([['r', [allowAll]]])).denied,
    ).toHaveLength(1);
  });

  it('reports the actions and resources of a statement that no call used', () => {
    const call: RecordedCall = {
      role: 'r',
      service: 's3',
      operation: 'HeadObject',
      action: 's3:GetObject',
      resource: 'arn:aws:s3:::a/k',
    };
    const statement: ResolvedStatement = {
      label: '#2',
      effect: 'Allow',
      actions: ['s3:GetObject', 's3:DeleteObject', 'logs:PutLogEvents'],
      resources: ['arn:aws:s3:::a/*', 'arn:aws:s3:::b/*'],
    };
    const result = checkCalls([call], new Map([['r', [statement]]]));
    expect(result.unused).toEqual([
      {
        role: 'r',
        statement: '#2',
        on: ['arn:aws:s3:::a/*', 'arn:aws:s3:::b/*'],
        actions: ['s3:DeleteObject'],
        resources: ['arn:aws:s3:::b/*'],
      },
    ]);
    expect(formatReport(result)).toContain(
      'r statement #2 on arn:aws:s3:::a/*, arn:aws:s3:::b/*: unused s3:DeleteObject; nothing used arn:aws:s3:::b/*',
    );
  });
});

describe('what a call needs from IAM', () => {
  const s3 = (method: string, path: string, query: Record<string, string> = {}, headers = {}) =>
    s3Operation({ method, path, query, headers });

  it('maps S3 requests to the actions AWS authorizes', () => {
    expect(s3('HEAD', '/b/segments/a%20b')).toEqual({
      operation: 'HeadObject',
      needs: [{ action: 's3:GetObject', resource: 'arn:aws:s3:::b/segments/a b' }],
    });
    expect(s3('PUT', '/b/k', {}, { 'x-amz-copy-source': 'src/manifests/m%201' }).needs).toEqual([
      { action: 's3:PutObject', resource: 'arn:aws:s3:::b/k' },
      { action: 's3:GetObject', resource: 'arn:aws:s3:::src/manifests/m 1' },
    ]);
    expect(s3('POST', '/b/k', { uploads: '' }).operation).toBe('CreateMultipartUpload');
    expect(s3('PUT', '/b/k', { partNumber: '1', uploadId: 'u' }).needs[0]?.action).toBe('s3:PutObject');
    expect(s3('POST', '/b/k', { uploadId: 'u' }).needs[0]?.action).toBe('s3:PutObject');
    expect(s3('DELETE', '/b/k', { uploadId: 'u' }).needs[0]?.action).toBe('s3:AbortMultipartUpload');
    expect(s3('GET', '/b', { 'list-type': '2' })).toEqual({
      operation: 'ListObjectsV2',
      needs: [{ action: 's3:ListBucket', resource: 'arn:aws:s3:::b' }],
    });
    expect(s3('GET', '/b', { uploads: '' }).needs[0]?.action).toBe('s3:ListBucketMultipartUploads');
    // DeleteObjects (POST /b?delete) names its keys in the body: s3:DeleteObject on each.
    expect(s3('POST', '/b', { delete: '' })).toEqual({ operation: 'DeleteObjects', needs: [] });
    expect(
      deleteObjectsNeeds('/b', { Delete: { Object: [{ Key: 'uploads/blocks/s/1' }, { Key: 'a b' }] } }),
    ).toEqual([
      { action: 's3:DeleteObject', resource: 'arn:aws:s3:::b/uploads/blocks/s/1' },
      { action: 's3:DeleteObject', resource: 'arn:aws:s3:::b/a b' },
    ]);
    expect(deleteObjectsNeeds('/b', { Delete: { Object: { Key: 'one' } } })).toEqual([
      { action: 's3:DeleteObject', resource: 'arn:aws:s3:::b/one' },
    ]);
    expect(s3NotFoundNeeds('HeadObject', '/b/k')).toEqual([
      { action: 's3:ListBucket', resource: 'arn:aws:s3:::b' },
    ]);
  });

  it('maps DynamoDB and SQS requests to the actions AWS authorizes', () => {
    const table = 'arn:aws:dynamodb:us-east-1:000000000000:table/t';
    expect(dynamodbNeeds('us-east-1', 'Query', { TableName: 't', IndexName: 'gsi2' })).toEqual([
      { action: 'dynamodb:Query', resource: `${table}/index/gsi2` },
    ]);
    expect(
      dynamodbNeeds('us-east-1', 'TransactWriteItems', {
        TransactItems: [
          { Put: { TableName: 't' } },
          { ConditionCheck: { TableName: 't' } },
          { Delete: { TableName: 't' } },
        ],
      }).map((need) => need.action),
    ).toEqual(['dynamodb:PutItem', 'dynamodb:ConditionCheckItem', 'dynamodb:DeleteItem']);
    expect(dynamodbNeeds('us-east-1', 'BatchWriteItem', { RequestItems: { t: [] } })).toEqual([
      { action: 'dynamodb:BatchWriteItem', resource: table },
    ]);
    expect(sqsNeeds('eu-west-1', 'SendMessageBatch', 'q')).toEqual([
      { action: 'sqs:SendMessage', resource: 'arn:aws:sqs:eu-west-1:000000000000:q' },
    ]);
  });
});
