// What the local cloud's endpoints (S3, DynamoDB, SQS) record of the calls the functions make: for
// each request signed with a region's role credentials, the IAM actions AWS would authorize and the
// resource ARNs it would authorize them on. Recorded where the request arrives, so presigned URLs
// count too: AWS checks the signer's permissions when the URL is used, whoever uses it. The IAM
// check (./iam-check.ts) holds every recorded call against the statements of the deployed template.
import { appendFileSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The account id the local cloud stands for (its queue URLs and ARNs carry it). */
export const LOCAL_ACCOUNT_ID = '000000000000';

/** The prefix of the access key ids of the regions' roles: `LOCALROLEeuwest1`. */
const ROLE_KEY_PREFIX = 'LOCALROLE';

/** Letters and digits only: DynamoDB Local (2.0 and later) refuses any other access key id. */
const roleKeyId = (region: string) => `${ROLE_KEY_PREFIX}${region.replace(/[^A-Za-z0-9]/g, '')}`;

/**
 * The credentials a region's functions sign with in the local cloud: their execution role's, as
 * Lambda would give them, so that every call (into another region's endpoints too) is attributed
 * to the role of the region whose function made it. Not secret: the emulators run on loopback.
 */
export function localRoleCredentials(region: string): { accessKeyId: string; secretAccessKey: string } {
  return { accessKeyId: roleKeyId(region), secretAccessKey: `local-role-secret-${region}` };
}

/** The region whose role an access key id belongs to, when it is one of `roles`. */
export function roleOfKey(accessKeyId: string, roles: readonly string[]): string | undefined {
  if (!accessKeyId.startsWith(ROLE_KEY_PREFIX)) return undefined;
  return roles.find((region) => roleKeyId(region) === accessKeyId);
}

/**
 * The secret lookup of an endpoint that accepts the operator's credentials (provisioning, seeding,
 * tests) and the roles of `roles`.
 */
export function secretLookup(
  admin: { accessKeyId: string; secretAccessKey: string },
  roles: readonly string[] = [],
): (accessKeyId: string) => string | undefined {
  return (id) => {
    if (id === admin.accessKeyId) return admin.secretAccessKey;
    const role = roleOfKey(id, roles);
    return role === undefined ? undefined : localRoleCredentials(role).secretAccessKey;
  };
}

/** One authorization AWS would make for a call: this action on this resource. */
export interface IamRequirement {
  /** `s3:GetObject`. */
  action: string;
  /** `arn:aws:s3:::bucket/key`. */
  resource: string;
}

/** A call as recorded: which role made it, the API operation, and one authorization it needs. */
export interface RecordedCall extends IamRequirement {
  /** The region whose functions made the call (its role signed it). */
  role: string;
  service: 's3' | 'dynamodb' | 'sqs';
  /** The API operation (`HeadObject`, `TransactWriteItems`, …). */
  operation: string;
  /** Why the requirement holds when it is not the operation's own action. */
  why?: string;
}

/** The headers, decoded path and query of an S3 request, as the emulator sees it. */
export interface S3RequestShape {
  method: string;
  /** `/bucket/key` (path-style), percent-encoded as received. */
  path: string;
  query: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

const s3ObjectArn = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;
const s3BucketArn = (bucket: string) => `arn:aws:s3:::${bucket}`;

/**
 * The S3 operation of a path-style request and the IAM authorizations AWS makes for it (Service
 * Authorization Reference, Amazon S3): HeadObject needs s3:GetObject; the multipart calls need
 * s3:PutObject, except AbortMultipartUpload and ListParts; CopyObject and UploadPartCopy need
 * s3:GetObject on the source as well; ListObjects(V2) and HeadBucket need s3:ListBucket.
 */
export function s3Operation(request: S3RequestShape): { operation: string; needs: IamRequirement[] } {
  const [, rawBucket = '', ...rest] = request.path.split('/');
  const bucket = decodeURIComponent(rawBucket);
  const key = decodeURIComponent(rest.join('/'));
  const has = (name: string) => name in request.query;
  const copySource = request.headers['x-amz-copy-source'];
  const copied = typeof copySource === 'string' ? copySourceArn(copySource) : undefined;
  const object = (operation: string, action: string, ...more: IamRequirement[]) => ({
    operation,
    needs: [{ action, resource: s3ObjectArn(bucket, key) }, ...more],
  });
  const onBucket = (operation: string, action: string) => ({
    operation,
    needs: [{ action, resource: s3BucketArn(bucket) }],
  });
  const method = request.method.toUpperCase();
  if (!bucket) return { operation: 'ListBuckets', needs: [{ action: 's3:ListAllMyBuckets', resource: '*' }] };
  if (!key) {
    if (method === 'GET' && has('uploads'))
      return onBucket('ListMultipartUploads', 's3:ListBucketMultipartUploads');
    if (method === 'GET' && has('location')) return onBucket('GetBucketLocation', 's3:GetBucketLocation');
    if (method === 'GET')
      return onBucket(has('list-type') ? 'ListObjectsV2' : 'ListObjects', 's3:ListBucket');
    if (method === 'HEAD') return onBucket('HeadBucket', 's3:ListBucket');
    if (method === 'PUT') return onBucket('CreateBucket', 's3:CreateBucket');
    // The keys are in the body: the caller adds s3:DeleteObject on each ({@link deleteObjectsNeeds}).
    if (method === 'POST' && has('delete')) return { operation: 'DeleteObjects', needs: [] };
    if (method === 'DELETE') return onBucket('DeleteBucket', 's3:DeleteBucket');
    return onBucket(`${method} bucket`, `s3:${method} bucket (unmapped)`);
  }
  const readSource = copied ? [{ action: 's3:GetObject', resource: copied }] : [];
  if (has('tagging')) {
    const action = {
      GET: 's3:GetObjectTagging',
      PUT: 's3:PutObjectTagging',
      DELETE: 's3:DeleteObjectTagging',
    }[method];
    return object(`${method} tagging`, action ?? `s3:${method} tagging (unmapped)`);
  }
  if (method === 'GET' && has('uploadId')) return object('ListParts', 's3:ListMultipartUploadParts');
  if (method === 'GET') return object('GetObject', 's3:GetObject');
  if (method === 'HEAD') return object('HeadObject', 's3:GetObject');
  if (method === 'PUT' && has('partNumber'))
    return object(copied ? 'UploadPartCopy' : 'UploadPart', 's3:PutObject', ...readSource);
  if (method === 'PUT') return object(copied ? 'CopyObject' : 'PutObject', 's3:PutObject', ...readSource);
  if (method === 'POST' && has('uploads')) return object('CreateMultipartUpload', 's3:PutObject');
  if (method === 'POST' && has('uploadId')) return object('CompleteMultipartUpload', 's3:PutObject');
  if (method === 'DELETE' && has('uploadId'))
    return object('AbortMultipartUpload', 's3:AbortMultipartUpload');
  if (method === 'DELETE') return object('DeleteObject', 's3:DeleteObject');
  return object(`${method} object`, `s3:${method} object (unmapped)`);
}

/**
 * What AWS authorizes for a DeleteObjects request: s3:DeleteObject on every key its body names
 * (`{ Delete: { Object: [{ Key }] } }`, as s3rver parses it; one object parses as an object).
 */
export function deleteObjectsNeeds(path: string, body: unknown): IamRequirement[] {
  const bucket = decodeURIComponent(path.split('/')[1] ?? '');
  const listed = (body as { Delete?: { Object?: unknown } } | undefined)?.Delete?.Object;
  const objects = (Array.isArray(listed) ? listed : listed ? [listed] : []) as { Key?: unknown }[];
  return objects.map((o) => ({
    action: 's3:DeleteObject',
    resource: s3ObjectArn(bucket, String(o.Key ?? '')),
  }));
}

/** `x-amz-copy-source` (`bucket/key` or `/bucket/key`, URL-encoded, maybe `?versionId=`) as an ARN. */
function copySourceArn(header: string): string {
  const [path = ''] = header.split('?');
  const [bucket = '', ...key] = decodeURIComponent(path.replace(/^\//, '')).split('/');
  return s3ObjectArn(bucket, key.join('/'));
}

/**
 * When a GetObject or HeadObject of a missing key answered 404: AWS answers 404 only to a caller
 * with s3:ListBucket on the bucket, and 403 AccessDenied to any other, so code that handles "not
 * found" needs that grant as well.
 */
export function s3NotFoundNeeds(operation: string, path: string): IamRequirement[] {
  if (operation !== 'GetObject' && operation !== 'HeadObject') return [];
  const bucket = decodeURIComponent(path.split('/')[1] ?? '');
  return [{ action: 's3:ListBucket', resource: s3BucketArn(bucket) }];
}

const dynamodbTableArn = (region: string, table: string) =>
  table.startsWith('arn:') ? table : `arn:aws:dynamodb:${region}:${LOCAL_ACCOUNT_ID}:table/${table}`;

/** What a DynamoDB request body names (only the fields the authorization depends on). */
interface DynamoBody {
  TableName?: string;
  IndexName?: string;
  RequestItems?: Record<string, unknown>;
  TransactItems?: Record<string, { TableName?: string } | undefined>[];
}

/** The IAM action of each member of a TransactWriteItems (DynamoDB authorizes the items, not the call). */
const TRANSACT_WRITE_ACTION: Record<string, string> = {
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  ConditionCheck: 'dynamodb:ConditionCheckItem',
};

/**
 * The authorizations of a DynamoDB call in `region` (its `X-Amz-Target` operation and JSON body):
 * the operation's own action on the table (a Query or Scan of an index: on the index's ARN),
 * BatchGetItem and BatchWriteItem on each table they name, and for the transactions the item
 * actions (TransactWriteItems: PutItem, UpdateItem, DeleteItem or ConditionCheckItem per item;
 * TransactGetItems: GetItem), which is what DynamoDB authorizes.
 */
export function dynamodbNeeds(region: string, operation: string, body: DynamoBody): IamRequirement[] {
  if (operation === 'TransactWriteItems' || operation === 'TransactGetItems') {
    return (body.TransactItems ?? []).flatMap((item) =>
      Object.entries(item).map(([kind, member]) => ({
        action: operation === 'TransactGetItems' ? 'dynamodb:GetItem' : (TRANSACT_WRITE_ACTION[kind] ?? kind),
        resource: dynamodbTableArn(region, member?.TableName ?? ''),
      })),
    );
  }
  if (body.RequestItems) {
    return Object.keys(body.RequestItems).map((table) => ({
      action: `dynamodb:${operation}`,
      resource: dynamodbTableArn(region, table),
    }));
  }
  const table = dynamodbTableArn(region, body.TableName ?? '');
  const onIndex = (operation === 'Query' || operation === 'Scan') && body.IndexName;
  return [
    { action: `dynamodb:${operation}`, resource: onIndex ? `${table}/index/${body.IndexName}` : table },
  ];
}

/** The authorization of an SQS call on queue `name` of `region`: SendMessageBatch is sqs:SendMessage. */
export function sqsNeeds(region: string, operation: string, queueName: string): IamRequirement[] {
  const action = operation === 'SendMessageBatch' ? 'sqs:SendMessage' : `sqs:${operation}`;
  return [{ action, resource: `arn:aws:sqs:${region}:${LOCAL_ACCOUNT_ID}:${queueName}` }];
}

/** The access key id and region of a SigV4 credential scope (header-signed or presigned request). */
export function signingScope(
  headers: Record<string, string | string[] | undefined>,
  target: string,
): { accessKeyId: string; region: string } | undefined {
  const authorization = String(headers.authorization ?? '');
  const fromHeader = /Credential=([^,\s]+)/.exec(authorization)?.[1];
  const fromQuery = new URLSearchParams(target.split('?')[1] ?? '').get('X-Amz-Credential') ?? undefined;
  const [accessKeyId, , region] = (fromHeader ?? fromQuery ?? '').split('/');
  return accessKeyId && region ? { accessKeyId, region } : undefined;
}

/**
 * Appends recorded calls to one JSON-lines file of `dir` per process (`COMPONENT-PID.jsonl`), each
 * distinct call once: the file stays as small as the set of distinct calls. Written synchronously,
 * so a process killed later has lost nothing it recorded.
 */
export class CallRecorder {
  readonly #seen = new Set<string>();
  readonly #file: string;
  readonly #countsFile: string;
  readonly #counts: Record<string, number> = {};

  constructor(dir: string, component: string) {
    mkdirSync(dir, { recursive: true });
    const base = `${component.replace(/[^\w.-]/g, '_')}-${process.pid}`;
    this.#file = join(dir, `${base}.jsonl`);
    this.#countsFile = join(dir, `${base}.counts.json`);
  }

  /**
   * Counts one request a role made (`eu-west-1 s3 GetObject`), every one and not only distinct
   * ones: what the bench reports as requests per GiB. The counts file is replaced at once.
   */
  count(role: string, service: RecordedCall['service'], operation: string): void {
    const key = `${role} ${service} ${operation}`;
    this.#counts[key] = (this.#counts[key] ?? 0) + 1;
    // Whole or not at all: a reader never sees half a file.
    writeFileSync(`${this.#countsFile}.tmp`, JSON.stringify(this.#counts));
    renameSync(`${this.#countsFile}.tmp`, this.#countsFile);
  }

  record(calls: RecordedCall[]): void {
    const lines: string[] = [];
    for (const call of calls) {
      const line = JSON.stringify(call);
      if (this.#seen.has(line)) continue;
      this.#seen.add(line);
      lines.push(line);
    }
    if (lines.length > 0) appendFileSync(this.#file, `${lines.join('\n')}\n`);
  }
}

/** Every call recorded in `dir` (all processes), each distinct call once. */
export function readRecordedCalls(dir: string): RecordedCall[] {
  const distinct = new Map<string, RecordedCall>();
  let files: string[];
  try {
    files = readdirSync(dir).filter((name) => name.endsWith('.jsonl'));
  } catch {
    return [];
  }
  for (const name of files) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line.trim()) distinct.set(line, JSON.parse(line) as RecordedCall);
    }
  }
  return [...distinct.values()];
}

/**
 * Where the local S3 and the local DynamoDB's SigV4 proxy answer how many requests of each operation
 * they served so far (unsigned, loopback only; in memory, so cheap enough for the bench's every row).
 */
export const REQUEST_COUNTS_PATH = '/_volsnap/request-counts';

/** How many requests of each kind (`eu-west-1 s3 GetObject`) the processes recording in `dir` counted so far. */
export function readCallCounts(dir: string): Record<string, number> {
  const total: Record<string, number> = {};
  let files: string[];
  try {
    files = readdirSync(dir).filter((name) => name.endsWith('.counts.json'));
  } catch {
    return total;
  }
  for (const name of files) {
    const counts = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Record<string, number>;
    for (const [key, n] of Object.entries(counts)) total[key] = (total[key] ?? 0) + n;
  }
  return total;
}
