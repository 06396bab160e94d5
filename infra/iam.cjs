// The IAM statements of the functions' role: serverless.yml takes them as
// `provider.iam.role.statements: ${file(infra/iam.cjs):statements}` (osls calls the function below
// when it resolves the file). This deployment's table, bucket and queue, and, for every other region
// of the region registry, what the functions do there: copies read its table and bucket, copy rules
// and copies write its table and bucket and ring its queue, and the identity region's table holds
// accounts, users and keys. The registry is the one the functions read: VOLSNAP_REGIONS (JSON) when
// set, else infra/regions.json. The e2e suite records every call the functions make and checks them
// against these statements (scripts/local-cloud/iam-check.ts): what is missing fails the build.
// CommonJS, because osls loads .js/.cjs variable files with require().
'use strict';

const { readFileSync } = require('node:fs');
const { join } = require('node:path');

/**
 * Item reads and writes the repositories make on this region's table (a transaction is authorized
 * per item: PutItem, UpdateItem, DeleteItem, ConditionCheckItem; maintenance queries its sparse
 * indexes and reads what they name with BatchGetItem, and scans the table once to fill them).
 */
const TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
  'dynamodb:Scan',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
];

/** Another region's table: a copy reads the source snapshot there, a copy rule writes the copy (conditional writes). */
const PEER_TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:Query',
  'dynamodb:ConditionCheckItem',
];

/**
 * The identity region's table, from every other region: authentication reads (a key with its user
 * and account in one BatchGetItem), key and user management writes.
 */
const IDENTITY_TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
  'dynamodb:ConditionCheckItem',
];

/** A table's item actions on the table, and Query (the only call made on an index) on its indexes. */
function tableStatements(tableArn, indexesArn, actions) {
  return [
    { Effect: 'Allow', Action: actions, Resource: tableArn },
    { Effect: 'Allow', Action: ['dynamodb:Query'], Resource: indexesArn },
  ];
}

/** This deployment's own table, bucket and queue (CloudFormation references to the stack's resources). */
function ownStatements() {
  const tableArn = { 'Fn::GetAtt': ['Table', 'Arn'] };
  const bucketArn = { 'Fn::GetAtt': ['DataBucket', 'Arn'] };
  return [
    ...tableStatements(tableArn, { 'Fn::Join': ['/', [tableArn, 'index', '*']] }, TABLE_ACTIONS),
    {
      Effect: 'Allow',
      // Multipart uploads (exports) need s3:PutObject; the reaper aborts stale ones.
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
      Resource: { 'Fn::Join': ['', [bucketArn, '/*']] },
    },
    // Listing (GC, the reaper's stale uploads); a missing key answers 404 only with s3:ListBucket.
    { Effect: 'Allow', Action: ['s3:ListBucket', 's3:ListBucketMultipartUploads'], Resource: bucketArn },
    { Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: { 'Fn::GetAtt': ['WorkQueue', 'Arn'] } },
    // The EBS direct API's token key is the MAC of a fixed label under this HMAC key (lib/adapters/token-key.ts).
    { Effect: 'Allow', Action: ['kms:GenerateMac'], Resource: { 'Fn::GetAtt': ['TokenKey', 'Arn'] } },
  ];
}

const tableArnOf = (entry) => ({
  'Fn::Sub': `arn:\${AWS::Partition}:dynamodb:${entry.name}:\${AWS::AccountId}:table/${entry.table}`,
});

/** `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME` (or the local cloud's `http://127.0.0.1:PORT/ACCOUNT/NAME`) as an ARN. */
function queueArnOf(entry) {
  const [, account, name] = new URL(entry.queueUrl).pathname.split('/');
  if (!account || !name) {
    throw new Error(`Region ${entry.name}: queueUrl ${entry.queueUrl} does not end in /ACCOUNT/QUEUE-NAME.`);
  }
  return { 'Fn::Sub': `arn:\${AWS::Partition}:sqs:${entry.name}:${account}:${name}` };
}

/** What this deployment's functions need in another region `entry` (its copy sources and destinations). */
function peerStatements(entry) {
  const table = tableArnOf(entry);
  const statements = [
    ...tableStatements(table, { 'Fn::Sub': `${table['Fn::Sub']}/index/*` }, PEER_TABLE_ACTIONS),
    {
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject'],
      Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${entry.bucket}/*` },
    },
    // A missing key answers 404 only to a caller that may list the bucket (403 otherwise).
    {
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${entry.bucket}` },
    },
  ];
  if (entry.queueUrl)
    statements.push({ Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: queueArnOf(entry) });
  return statements;
}

/**
 * The identity table (`identityTable`, one name in every region): this region's replica is read for
 * every request (and written, when this is the identity region); the identity region's replica takes
 * the writes of account, user and key management. Without an identity table (a deployment from
 * before identity was replicated), the identity region's own table holds identity.
 */
function identityStatements(region, identityEntry, identityTable) {
  const replica = (name) => ({
    'Fn::Sub': `arn:\${AWS::Partition}:dynamodb:${name}:\${AWS::AccountId}:table/${identityTable}`,
  });
  const statementsOf = (table, actions) =>
    tableStatements(table, { 'Fn::Sub': `${table['Fn::Sub']}/index/*` }, actions);
  if (!identityTable)
    return identityEntry ? statementsOf(tableArnOf(identityEntry), IDENTITY_TABLE_ACTIONS) : [];
  if (!identityEntry) return statementsOf(replica(region), IDENTITY_TABLE_ACTIONS);
  return [
    // This region's replica is read only: a key, and a key with its user and account at once.
    ...statementsOf(replica(region), ['dynamodb:GetItem', 'dynamodb:BatchGetItem']),
    ...statementsOf(replica(identityEntry.name), IDENTITY_TABLE_ACTIONS),
  ];
}

/** Buckets the operator lets image-backed volumes read from (`VOLSNAP_IMAGE_BUCKETS`). */
function imageBucketStatements(buckets) {
  if (buckets.length === 0) return [];
  return [
    {
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: buckets.map((bucket) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${bucket}/*` })),
    },
  ];
}

/** Buckets the operator lets exports be written to (`VOLSNAP_EXPORT_BUCKETS`): a multipart upload, then URLs and deletion. */
function exportBucketStatements(buckets) {
  if (buckets.length === 0) return [];
  return [
    {
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
      Resource: buckets.map((bucket) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${bucket}/*` })),
    },
  ];
}

/**
 * The deployment's sealing key (serverless.yml `SealingKey`, in the identity region's stack only):
 * every region seals SigV4 secrets (key creation) and opens them (each AWS-protocol request, once per
 * data key and container) with it. Its ARN is not known to the other regions' stacks, so the grant
 * names the key by its alias (`kms:ResourceAliases`), and only under volsnap's encryption context.
 */
function sealingKeyStatements(identityRegion, alias) {
  if (!alias) return [];
  return [
    {
      Effect: 'Allow',
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:kms:${identityRegion}:\${AWS::AccountId}:key/*` },
      Condition: {
        'ForAnyValue:StringEquals': { 'kms:ResourceAliases': alias },
        StringEquals: { 'kms:EncryptionContext:purpose': 'volsnap-sealed-secret' },
      },
    },
  ];
}

/** `a, b` → `['a', 'b']`, as the runtime configuration reads these lists. */
const list = (text) =>
  (text ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/**
 * The region registry as the functions read it: `VOLSNAP_REGIONS` (JSON) when set, else
 * infra/regions.json. Entries: name → { bucket, table, queueUrl?, … }.
 */
function loadRegistry(env = process.env) {
  const text = env.VOLSNAP_REGIONS || readFileSync(join(__dirname, 'regions.json'), 'utf8');
  const data = JSON.parse(text);
  return Object.entries(data).map(([name, entry]) => {
    if (!entry || typeof entry.table !== 'string' || typeof entry.bucket !== 'string') {
      throw new Error(`Region registry: region ${name} needs a "table" and a "bucket".`);
    }
    return { ...entry, name };
  });
}

/**
 * The statements of the role of the deployment in `region`: its own resources, every other region
 * of `registry`, identity (`identityTable` replicas here and in `identityRegion`, default: this
 * region), and the image and export buckets the operator allows.
 */
function statementsFor(
  region,
  registry,
  identityRegion = region,
  buckets = { images: [], exports: [] },
  identityTable = undefined,
  sealingKeyAlias = undefined,
) {
  const others = registry.filter((entry) => entry.name !== region);
  if (identityRegion !== region && !others.some((entry) => entry.name === identityRegion)) {
    throw new Error(`The identity region ${identityRegion} is not in the region registry.`);
  }
  return [
    ...ownStatements(),
    ...others.flatMap(peerStatements),
    ...identityStatements(
      region,
      others.find((entry) => entry.name === identityRegion),
      identityTable,
    ),
    ...imageBucketStatements(buckets.images),
    ...exportBucketStatements(buckets.exports),
    ...sealingKeyStatements(identityRegion, sealingKeyAlias),
  ];
}

module.exports = {
  /** What serverless.yml resolves: the statements of the region it packages (`--region`). */
  statements: async ({ resolveVariable }) =>
    statementsFor(
      await resolveVariable('self:provider.region'),
      loadRegistry(process.env),
      process.env.VOLSNAP_IDENTITY_REGION || undefined,
      { images: list(process.env.VOLSNAP_IMAGE_BUCKETS), exports: list(process.env.VOLSNAP_EXPORT_BUCKETS) },
      `volsnap-${await resolveVariable('sls:stage')}-identity`,
      `alias/volsnap-${await resolveVariable('sls:stage')}-sealing`,
    ),
  statementsFor,
  loadRegistry,
};
