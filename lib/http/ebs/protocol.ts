/**
 * The AWS wire protocols volsnap speaks besides its own API: the EBS direct APIs (rest-json, service
 * `ebs`) and the one EC2 Query call coldsnap waits with (`DescribeSnapshots`, service `ec2`). One
 * Lambda stack for their routes: SigV4 authentication first, raw bytes in and out, and every error in
 * the shape the AWS SDKs parse, so unmodified clients (the SDKs, the AWS CLI, coldsnap) work.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { prefetchReads, withRequestReads } from '../../adapters/dynamodb/request-reads.ts';
import type { Caller } from '../../core/identity/identity.ts';
import type { RequestClass, RequestLimiter } from '../../core/identity/request-rate.ts';
import type { AuditLog } from '../../core/ports/audit.ts';
import { describeError, type ErrorCode, VolsnapError } from '../../core/shared/errors.ts';
import { newId } from '../../core/shared/ids.ts';
import { runtime } from '../../root.ts';
import { type Logger, logger as rootLogger } from '../logger.ts';
import { backendOutageOf } from '../outages.ts';
import { defaultAuditLog, defaultLimiter, type HttpLambda } from '../stack.ts';
import type { AwsAuthenticator, AwsService } from './signed-request.ts';

export type { AwsAuthenticator, AwsService, AwsSignedRequest } from './signed-request.ts';

/** What an AWS-protocol route receives. */
export interface AwsRouteInput {
  caller: Caller;
  /** The request body's bytes (base64-decoded when API Gateway sent it so). */
  body: Buffer;
  /** Query parameters percent-decoded from the raw query; a `+` stays a `+` (tokens are base64). */
  query: Readonly<Record<string, string>>;
  /** API Gateway's path parameters (decoded). */
  path: Readonly<Record<string, string>>;
  /** Header names in lower case. */
  headers: Readonly<Record<string, string | undefined>>;
  event: APIGatewayProxyEventV2;
  requestId: string;
  log: Logger;
}

/** A route's answer: one of a JSON body, raw bytes or an XML document; 200 unless said. */
export interface AwsRouteResult {
  status?: number;
  json?: unknown;
  bytes?: Uint8Array;
  xml?: string;
  headers?: Record<string, string>;
}

export interface AwsHandlerOptions {
  /** Replaces {@link defaultAuthenticate} (for tests). */
  authenticate?: AwsAuthenticator;
  audit?: AuditLog;
  /** `null`: no request rate limit (tests). */
  limiter?: RequestLimiter | null;
  /** The region a credential must be scoped to (tests; else the runtime configuration's). */
  region?: string;
}

export interface AwsRouteSchema {
  service: AwsService;
  /** For routes that change something: the action the audit trail records (`ebs.startSnapshot`). */
  audit?: string;
  /** What the request counts as against the account's rate (`blocks`: a block moved; `api` unless said). */
  requestClass?: RequestClass;
  /**
   * Reads the route will make whatever the caller (the snapshot a block route names), started
   * alongside the authentication's so that both go in one DynamoDB request (request-reads.ts).
   * Nothing is answered from them before the caller is authenticated and authorized.
   */
  prefetch?: (path: Readonly<Record<string, string>>) => Promise<unknown>;
}

/**
 * Builds the Lambda handler of one AWS-protocol route: authenticates the request (SigV4, before
 * anything else is looked at), counts it against the account's request rate, runs `route`, records
 * an audited success, and answers; any error becomes the service's error shape
 * ({@link ebsErrorResponse}, {@link ec2ErrorResponse}). Every answer carries `x-amzn-RequestId` and
 * `Date` (the SDKs correct their clock skew from it).
 */
export function awsHandler(
  schema: AwsRouteSchema,
  route: (input: AwsRouteInput) => Promise<AwsRouteResult>,
  options: AwsHandlerOptions = {},
): HttpLambda {
  return (event: APIGatewayProxyEventV2, context: Context) => withRequestReads(() => handle(event, context));

  async function handle(event: APIGatewayProxyEventV2, context: Context) {
    const requestId = event.requestContext?.requestId ?? context?.awsRequestId ?? newId('request');
    try {
      const headers = lowerCaseHeaders(event.headers);
      const body = bodyOf(event);
      const path = (event.pathParameters ?? {}) as Record<string, string>;
      const prefetch = schema.prefetch;
      if (prefetch) prefetchReads(() => prefetch(path));
      const authenticate = options.authenticate ?? (await import('./authenticate.ts')).defaultAuthenticate;
      const caller = await authenticate({
        method: event.requestContext.http.method.toUpperCase(),
        target: event.rawQueryString ? `${event.rawPath}?${event.rawQueryString}` : event.rawPath,
        headers,
        body,
        service: schema.service,
        region: options.region ?? runtime().config.region.name,
      });
      const limiter = options.limiter !== undefined ? options.limiter : await defaultLimiter();
      await limiter?.admit(caller.accountId, schema.requestClass ?? 'api');
      const log = rootLogger.child({ requestId, route: event.routeKey, accountId: caller.accountId });
      const query = parseQuery(event.rawQueryString ?? '');
      const result = await route({ caller, body, query, path, headers, event, requestId, log });
      if (schema.audit) await recordSuccess(schema.audit, caller, event, requestId, result, options);
      return awsResponse(result, requestId);
    } catch (error) {
      return schema.service === 'ec2'
        ? ec2ErrorResponse(error, requestId)
        : ebsErrorResponse(error, requestId);
    }
  }
}

async function recordSuccess(
  action: string,
  caller: Caller,
  event: APIGatewayProxyEventV2,
  requestId: string,
  result: AwsRouteResult,
  options: AwsHandlerOptions,
): Promise<void> {
  const audit = options.audit ?? (await defaultAuditLog());
  const target: Record<string, string> = {};
  for (const [key, value] of Object.entries(event.pathParameters ?? {})) if (value) target[key] = value;
  const created = (result.json as { SnapshotId?: unknown } | undefined)?.SnapshotId;
  if (typeof created === 'string' && !target.snapshotId) target.snapshotId = created;
  await audit.record({
    eventId: newId('request'),
    at: new Date(event.requestContext.timeEpoch || Date.now()).toISOString(),
    accountId: caller.accountId,
    userName: caller.userName,
    keyId: caller.keyId,
    action,
    target,
    requestId,
    status: result.status ?? 200,
  });
}

function awsResponse(result: AwsRouteResult, requestId: string): APIGatewayProxyStructuredResultV2 {
  const base = { 'x-amzn-requestid': requestId, date: new Date().toUTCString() };
  const status = result.status ?? 200;
  if (result.bytes) {
    return {
      statusCode: status,
      headers: { 'content-type': 'application/octet-stream', ...base, ...result.headers },
      body: Buffer.from(result.bytes.buffer, result.bytes.byteOffset, result.bytes.byteLength).toString(
        'base64',
      ),
      isBase64Encoded: true,
    };
  }
  if (result.xml !== undefined) {
    return {
      statusCode: status,
      headers: { 'content-type': 'text/xml;charset=UTF-8', ...base, ...result.headers },
      body: result.xml,
    };
  }
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', ...base, ...result.headers },
    body: result.json === undefined ? '' : JSON.stringify(result.json),
  };
}

function lowerCaseHeaders(headers: APIGatewayProxyEventV2['headers'] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {}))
    if (value !== undefined) out[name.toLowerCase()] = value;
  return out;
}

function bodyOf(event: APIGatewayProxyEventV2): Buffer {
  if (!event.body) return Buffer.alloc(0);
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

/**
 * The query of a raw query string: names and values percent-decoded, a `+` kept as `+` (the AWS
 * SDKs encode spaces as `%20`, and block and page tokens are base64). A repeated name keeps its
 * first value. A malformed escape is a `request.invalid`.
 */
export function parseQuery(rawQuery: string): Record<string, string> {
  const query: Record<string, string> = {};
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const at = pair.indexOf('=');
    const name = decodePart(at < 0 ? pair : pair.slice(0, at));
    const value = at < 0 ? '' : decodePart(pair.slice(at + 1));
    if (!(name in query)) query[name] = value;
  }
  return query;
}

function decodePart(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new VolsnapError('request.invalid', `The query holds a malformed escape: '${text.slice(0, 40)}'.`);
  }
}

/**
 * The header names a SigV4 `Authorization` header says it signed (lower case), or an empty list
 * when there is none. For PutSnapshotBlock, whose body is unsigned, `x-amz-checksum` must be among
 * them: it is what protects the body.
 */
export function signedHeadersOf(headers: Readonly<Record<string, string | undefined>>): string[] {
  const match = /SignedHeaders=([^,\s]+)/.exec(headers.authorization ?? '');
  return match?.[1] ? match[1].toLowerCase().split(';') : [];
}

/** An EBS error: its `__type`, the status the EBS model gives it, and its `Reason`. */
interface AwsErrorShape {
  type: string;
  status: number;
  reason?: string;
}

const THROTTLED: AwsErrorShape = {
  type: 'RequestThrottledException',
  status: 400,
  reason: 'ACCOUNT_THROTTLED',
};
const INTERNAL: AwsErrorShape = { type: 'InternalServerException', status: 500 };
const VALIDATION: AwsErrorShape = {
  type: 'ValidationException',
  status: 400,
  reason: 'INVALID_PARAMETER_VALUE',
};

/** How each volsnap error code reads in the EBS direct API (reference §1.8); others by their status. */
const EBS_ERRORS: Partial<Record<ErrorCode, AwsErrorShape>> = {
  'aws.signatureInvalid': { type: 'InvalidSignatureException', status: 403 },
  'aws.requestExpired': { type: 'RequestExpired', status: 400 },
  'aws.unrecognizedClient': { type: 'UnrecognizedClientException', status: 403 },
  'aws.incompleteSignature': { type: 'IncompleteSignature', status: 400 },
  'aws.missingAuthentication': { type: 'MissingAuthenticationToken', status: 403 },
  'aws.accessDenied': { type: 'AccessDeniedException', status: 403, reason: 'UNAUTHORIZED_ACCOUNT' },
  'auth.unauthorized': { type: 'UnrecognizedClientException', status: 403 },
  'auth.forbidden': { type: 'AccessDeniedException', status: 403, reason: 'UNAUTHORIZED_ACCOUNT' },
  'snapshot.notFound': { type: 'ResourceNotFoundException', status: 404, reason: 'SNAPSHOT_NOT_FOUND' },
  'volume.notFound': {
    type: 'ResourceNotFoundException',
    status: 404,
    reason: 'DEPENDENCY_RESOURCE_NOT_FOUND',
  },
  'volume.invalidSize': { type: 'ValidationException', status: 400, reason: 'INVALID_VOLUME_SIZE' },
  'idempotency.conflict': { type: 'ConflictException', status: 409 },
  'quota.exceeded': {
    type: 'ServiceQuotaExceededException',
    status: 402,
    reason: 'DEPENDENCY_SERVICE_QUOTA_EXCEEDED',
  },
  'quota.inFlight': { type: 'ConcurrentLimitExceededException', status: 400 },
  'request.throttled': THROTTLED,
  throttled: THROTTLED,
  'storage.throttled': { ...THROTTLED, reason: 'DEPENDENCY_REQUEST_THROTTLED' },
  // A 503 the SDKs retry as a transient server error.
  'storage.unavailable': { type: 'InternalServerException', status: 503 },
};

function toVolsnapError(error: unknown): VolsnapError {
  if (error instanceof VolsnapError) return error;
  return backendOutageOf(error) ?? new VolsnapError('internal', 'Internal error.', { cause: error });
}

/** The EBS shape of an error: explicit `details.awsType`/`details.reason` first, then the code's table entry. */
function ebsShapeOf(error: VolsnapError): AwsErrorShape {
  const known = EBS_ERRORS[error.code] ?? (error.status >= 500 ? INTERNAL : VALIDATION);
  const awsType = error.details?.awsType;
  const reason = error.details?.reason;
  return {
    ...known,
    ...(typeof awsType === 'string' ? { type: awsType } : {}),
    ...(typeof reason === 'string' ? { reason } : {}),
  };
}

/** ErrorMessage is at most 256 characters in the EBS model. */
function clientMessage(error: VolsnapError): string {
  const text = error.exposed
    ? error.message
    : 'Internal error. Retry later; if it persists, report this request id.';
  return text.length > 256 ? `${text.slice(0, 253)}...` : text;
}

function logFailure(error: unknown, mapped: VolsnapError, requestId: string): void {
  if (!mapped.exposed)
    rootLogger.error('request failed', { requestId, code: mapped.code, error: describeError(error) });
}

/**
 * An error in the EBS direct API's shape: header `x-amzn-ErrorType` and body `{__type, Message,
 * Reason}` (the JS SDK reads the header first, then `__type`), with the status the EBS model gives
 * the type. 5xx answers say nothing of the cause, which is logged.
 */
export function ebsErrorResponse(error: unknown, requestId: string): APIGatewayProxyStructuredResultV2 {
  const mapped = toVolsnapError(error);
  logFailure(error, mapped, requestId);
  const shape = ebsShapeOf(mapped);
  const body = {
    __type: shape.type,
    Message: clientMessage(mapped),
    ...(shape.reason ? { Reason: shape.reason } : {}),
  };
  return awsResponse(
    { status: shape.status, json: body, headers: { 'x-amzn-errortype': shape.type, ...retryAfter(mapped) } },
    requestId,
  );
}

function retryAfter(error: VolsnapError): Record<string, string> {
  const seconds = error.details?.retryAfterSeconds;
  return typeof seconds === 'number' && seconds > 0 ? { 'retry-after': String(Math.ceil(seconds)) } : {};
}

/** How each volsnap error code reads in EC2's Query protocol (its codes are in the response body). */
const EC2_ERRORS: Partial<Record<ErrorCode, { code: string; status: number }>> = {
  'aws.signatureInvalid': { code: 'SignatureDoesNotMatch', status: 403 },
  'aws.requestExpired': { code: 'RequestExpired', status: 400 },
  'aws.unrecognizedClient': { code: 'AuthFailure', status: 401 },
  'aws.incompleteSignature': { code: 'IncompleteSignature', status: 400 },
  'aws.missingAuthentication': { code: 'MissingAuthenticationToken', status: 401 },
  'aws.accessDenied': { code: 'UnauthorizedOperation', status: 403 },
  'auth.unauthorized': { code: 'AuthFailure', status: 401 },
  'auth.forbidden': { code: 'UnauthorizedOperation', status: 403 },
  'snapshot.notFound': { code: 'InvalidSnapshot.NotFound', status: 400 },
  'request.throttled': { code: 'RequestLimitExceeded', status: 503 },
  'storage.throttled': { code: 'RequestLimitExceeded', status: 503 },
  'storage.unavailable': { code: 'Unavailable', status: 503 },
};

/** An error in EC2's Query-protocol XML (`<Response><Errors><Error><Code>…`); `details.awsType` overrides the code. */
export function ec2ErrorResponse(error: unknown, requestId: string): APIGatewayProxyStructuredResultV2 {
  const mapped = toVolsnapError(error);
  logFailure(error, mapped, requestId);
  const known =
    EC2_ERRORS[mapped.code] ??
    (mapped.status >= 500
      ? { code: 'InternalError', status: 500 }
      : { code: 'InvalidParameterValue', status: 400 });
  const awsType = mapped.details?.awsType;
  const code = typeof awsType === 'string' ? awsType : known.code;
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Response><Errors><Error><Code>${escapeXml(code)}</Code><Message>${escapeXml(clientMessage(mapped))}</Message></Error></Errors>` +
    `<RequestID>${escapeXml(requestId)}</RequestID></Response>`;
  return awsResponse({ status: known.status, xml, headers: retryAfter(mapped) }, requestId);
}

/** Text made safe inside an XML element or attribute. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
