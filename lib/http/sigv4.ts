/**
 * AWS Signature Version 4 verification, as an AWS service endpoint does it: header-signed requests
 * (`Authorization: AWS4-HMAC-SHA256 …`) and query-signed (presigned) URLs. The local S3 uses it,
 * and any AWS-compatible API this project serves can (the service name is a parameter).
 *
 * Pure: no clock, no environment, no I/O. The caller passes the time and a secret lookup.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** A request as the server received it. */
export interface SigV4Request {
  /** HTTP method, upper case. */
  method: string;
  /** The request target exactly as received: raw path and query, undecoded (`/b/a%20b?x=1`). */
  target: string;
  /**
   * Headers by name (any case). Repeated headers as arrays, the way node's `req.headersDistinct`
   * gives them; a plain string is one value.
   */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /**
   * Hex SHA-256 of the body, for services whose header-signed requests carry no
   * `x-amz-content-sha256` (S3 always sends it), and for their presigned requests (S3's are
   * `UNSIGNED-PAYLOAD`). Defaults to the hash of an empty body there.
   */
  payloadHash?: string;
}

export interface SigV4Options {
  /** The signing name of the service: `s3`, `ebs`, `dynamodb`. S3 alone does not double-encode the path. */
  service: string;
  /** The region (or regions) this endpoint serves; a credential scoped to another one is refused. */
  region: string | readonly string[];
  /** The secret of an access key id, or undefined when the key does not exist. */
  secretFor(accessKeyId: string): string | undefined;
  /** The server's time, in ms since the epoch. */
  nowMs: number;
}

/** Why a request was refused, named by the error code AWS answers with. */
export type SigV4FailureCode =
  | 'AccessDenied'
  | 'SignatureDoesNotMatch'
  | 'InvalidAccessKeyId'
  | 'RequestTimeTooSkewed'
  | 'AuthorizationQueryParametersError'
  | 'AuthorizationHeaderMalformed'
  | 'InvalidArgument'
  | 'InvalidRequest';

export type SigV4Result =
  | {
      ok: true;
      accessKeyId: string;
      mode: 'header' | 'query';
      /** The `x-amz-content-sha256` the signature covers (`UNSIGNED-PAYLOAD` for presigned requests).
       * When it is a hex digest, the caller must check the body against it. */
      payloadHash: string;
    }
  | { ok: false; code: SigV4FailureCode; status: 400 | 403; message: string };

/** Largest `X-Amz-Expires` AWS accepts: 7 days. */
export const MAX_PRESIGNED_EXPIRES_SECONDS = 604_800;
/** How far a header-signed request's `x-amz-date` may be from the server's clock. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

const ALGORITHM = 'AWS4-HMAC-SHA256';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** The SHA-256 of an empty body, as `x-amz-content-sha256` carries it. */
export const EMPTY_PAYLOAD_SHA256 = createHash('sha256').update('').digest('hex');

const STATUS: Record<SigV4FailureCode, 400 | 403> = {
  AccessDenied: 403,
  SignatureDoesNotMatch: 403,
  InvalidAccessKeyId: 403,
  RequestTimeTooSkewed: 403,
  AuthorizationQueryParametersError: 400,
  AuthorizationHeaderMalformed: 400,
  InvalidArgument: 400,
  InvalidRequest: 400,
};

function fail(code: SigV4FailureCode, message: string): SigV4Result {
  return { ok: false, code, status: STATUS[code], message };
}

/**
 * Verifies a SigV4-signed request (header or query auth). Refuses: no auth at all (`AccessDenied`),
 * both mechanisms at once, a malformed or foreign credential scope, an unknown key, a presigned URL
 * past `X-Amz-Date + X-Amz-Expires` (or with `X-Amz-Expires` over 7 days), a header-signed request
 * more than 15 minutes off the clock, `host` not signed, an `x-amz-*` header present but unsigned,
 * and any signature that differs from the one computed here (compared in constant time).
 *
 * The canonical request is built from the raw target: each path segment and query component is
 * decoded and re-encoded the RFC 3986 way (`+` in a query is a space, as AWS reads it), so a client
 * that encodes differently from the SDK still verifies; non-S3 services get the normalised,
 * double-encoded path SigV4 prescribes. The body is not read: a hex `payloadHash` in the result is
 * only as good as the caller's check of the body against it.
 */
export function verifySigV4(request: SigV4Request, options: SigV4Options): SigV4Result {
  const headers = canonicalHeaderValues(request.headers);
  const { path, query } = splitTarget(request.target);
  const authorization = headers.get('authorization');
  const algorithmParam = query.find((p) => p.name === 'X-Amz-Algorithm');
  if (authorization !== undefined && algorithmParam) {
    return fail(
      'InvalidArgument',
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.',
    );
  }
  if (authorization !== undefined)
    return verifyHeaderAuth(request, options, headers, path, query, authorization);
  if (algorithmParam) return verifyQueryAuth(request, options, headers, path, query);
  if (query.some((p) => p.name === 'X-Amz-Signature' || p.name === 'X-Amz-Credential')) {
    return fail(
      'AuthorizationQueryParametersError',
      'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    );
  }
  return fail('AccessDenied', 'Access Denied: the request carries no signature.');
}

interface Parsed {
  accessKeyId: string;
  scope: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string;
  payloadHash: string;
}

function verifyHeaderAuth(
  request: SigV4Request,
  options: SigV4Options,
  headers: Map<string, string>,
  path: string,
  query: QueryParam[],
  authorization: string,
): SigV4Result {
  const space = authorization.indexOf(' ');
  const algorithm = space < 0 ? authorization : authorization.slice(0, space);
  if (algorithm !== ALGORITHM) {
    return fail('InvalidArgument', `Unsupported Authorization Type: expected ${ALGORITHM}.`);
  }
  const components = new Map<string, string>();
  for (const part of authorization.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) components.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = components.get('Credential');
  const signedHeaders = components.get('SignedHeaders');
  const signature = components.get('Signature');
  if (!credential || !signedHeaders || !signature) {
    return fail(
      'AuthorizationHeaderMalformed',
      'The authorization header is malformed; it requires three components: Credential, SignedHeaders, and Signature.',
    );
  }
  const amzDate = headers.get('x-amz-date');
  if (amzDate === undefined || parseAmzDate(amzDate) === undefined) {
    return fail('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header.');
  }
  const payloadHash = headers.get('x-amz-content-sha256') ?? request.payloadHash;
  if (payloadHash === undefined) {
    if (options.service === 's3') {
      return fail('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256.');
    }
    return fail('SignatureDoesNotMatch', 'The request carries no x-amz-content-sha256 and no body hash.');
  }
  const parsed: Parsed = {
    accessKeyId: '',
    scope: '',
    signedHeaders: signedHeaders.split(';'),
    signature,
    amzDate,
    payloadHash,
  };
  const scopeError = checkCredential(credential, amzDate, options, 'AuthorizationHeaderMalformed', parsed);
  if (scopeError) return scopeError;
  const requestMs = parseAmzDate(amzDate) as number;
  if (Math.abs(options.nowMs - requestMs) > MAX_CLOCK_SKEW_MS) {
    return fail(
      'RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.',
    );
  }
  if (!parsed.signedHeaders.includes('x-amz-date')) {
    return fail('AccessDenied', 'The x-amz-date header must be signed.');
  }
  return checkSignature(request, options, headers, path, query, parsed, 'header');
}

function verifyQueryAuth(
  request: SigV4Request,
  options: SigV4Options,
  headers: Map<string, string>,
  path: string,
  query: QueryParam[],
): SigV4Result {
  const param = (name: string) => {
    const values = query.filter((p) => p.name === name);
    return values.length === 1 ? values[0]?.value : undefined;
  };
  if (param('X-Amz-Algorithm') !== ALGORITHM) {
    return fail('AuthorizationQueryParametersError', `X-Amz-Algorithm only supports "${ALGORITHM}".`);
  }
  const credential = param('X-Amz-Credential');
  const signature = param('X-Amz-Signature');
  const amzDate = param('X-Amz-Date');
  const signedHeaders = param('X-Amz-SignedHeaders');
  const expiresText = param('X-Amz-Expires');
  if (!credential || !signature || !amzDate || !signedHeaders || expiresText === undefined) {
    return fail(
      'AuthorizationQueryParametersError',
      'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    );
  }
  const requestMs = parseAmzDate(amzDate);
  if (requestMs === undefined) {
    return fail(
      'AuthorizationQueryParametersError',
      "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\".",
    );
  }
  if (!/^\d{1,7}$/.test(expiresText)) {
    return fail('AuthorizationQueryParametersError', 'X-Amz-Expires should be a number of seconds.');
  }
  const expires = Number(expiresText);
  if (expires > MAX_PRESIGNED_EXPIRES_SECONDS) {
    return fail(
      'AuthorizationQueryParametersError',
      'X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds.',
    );
  }
  const parsed: Parsed = {
    accessKeyId: '',
    scope: '',
    signedHeaders: signedHeaders.split(';'),
    signature,
    amzDate,
    // The SDK signs the `x-amz-content-sha256` it hoisted into the query; S3 presigns UNSIGNED-PAYLOAD
    // otherwise, other services the body's hash.
    payloadHash:
      param('X-Amz-Content-Sha256') ??
      (options.service === 's3' ? UNSIGNED_PAYLOAD : (request.payloadHash ?? EMPTY_PAYLOAD_SHA256)),
  };
  const scopeError = checkCredential(
    credential,
    amzDate,
    options,
    'AuthorizationQueryParametersError',
    parsed,
  );
  if (scopeError) return scopeError;
  if (options.nowMs > requestMs + expires * 1000) return fail('AccessDenied', 'Request has expired.');
  if (requestMs > options.nowMs + MAX_CLOCK_SKEW_MS) return fail('AccessDenied', 'Request is not valid yet.');
  return checkSignature(request, options, headers, path, query, parsed, 'query');
}

/** Parses `AKID/yyyymmdd/region/service/aws4_request` into `parsed`, or says what is wrong with it. */
function checkCredential(
  credential: string,
  amzDate: string,
  options: SigV4Options,
  code: 'AuthorizationHeaderMalformed' | 'AuthorizationQueryParametersError',
  parsed: Parsed,
): SigV4Result | undefined {
  const parts = credential.split('/');
  const [accessKeyId, date, region, service, terminator] = parts;
  if (parts.length !== 5 || !accessKeyId || terminator !== 'aws4_request') {
    return fail(
      code,
      `The credential is malformed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`,
    );
  }
  if (date !== amzDate.slice(0, 8)) {
    return fail(
      code,
      `The credential date "${date}" does not match the request date "${amzDate.slice(0, 8)}".`,
    );
  }
  const regions = typeof options.region === 'string' ? [options.region] : options.region;
  if (!regions.includes(region ?? '')) {
    return fail(code, `The region '${region}' is wrong; expecting '${regions.join("' or '")}'.`);
  }
  if (service !== options.service) {
    return fail(code, `The service '${service}' is wrong; this endpoint belongs to '${options.service}'.`);
  }
  parsed.accessKeyId = accessKeyId;
  parsed.scope = parts.slice(1).join('/');
  return undefined;
}

function checkSignature(
  request: SigV4Request,
  options: SigV4Options,
  headers: Map<string, string>,
  path: string,
  query: QueryParam[],
  parsed: Parsed,
  mode: 'header' | 'query',
): SigV4Result {
  const signed = parsed.signedHeaders;
  if (!signed.includes('host')) return fail('AccessDenied', 'The host header must be signed.');
  if (signed.some((name) => name === '' || name !== name.toLowerCase())) {
    return fail('AccessDenied', 'SignedHeaders must be lower-case header names separated by ";".');
  }
  const unsigned = [...headers.keys()].filter((name) => name.startsWith('x-amz-') && !signed.includes(name));
  if (unsigned.length > 0) {
    return fail(
      'AccessDenied',
      `There were headers present in the request which were not signed: ${unsigned.join(', ')}.`,
    );
  }
  const secret = options.secretFor(parsed.accessKeyId);
  if (secret === undefined) {
    return fail('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  }
  const canonicalRequest = [
    request.method.toUpperCase(),
    canonicalPath(path, options.service),
    canonicalQuery(query, mode),
    ...signed.map((name) => `${name}:${headers.get(name) ?? ''}`),
    '',
    signed.join(';'),
    parsed.payloadHash,
  ].join('\n');
  const stringToSign = [ALGORITHM, parsed.amzDate, parsed.scope, sha256Hex(canonicalRequest)].join('\n');
  let key: Buffer = Buffer.from(`AWS4${secret}`, 'utf8');
  for (const part of parsed.scope.split('/')) key = createHmac('sha256', key).update(part, 'utf8').digest();
  const expected = Buffer.from(createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex'), 'utf8');
  const provided = Buffer.from(parsed.signature, 'utf8');
  if (provided.length !== expected.length || !timingSafeEqual(provided, expected)) {
    return fail(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    );
  }
  return { ok: true, accessKeyId: parsed.accessKeyId, mode, payloadHash: parsed.payloadHash };
}

interface QueryParam {
  name: string;
  value: string;
}

function splitTarget(target: string): { path: string; query: QueryParam[] } {
  const mark = target.indexOf('?');
  const path = mark < 0 ? target : target.slice(0, mark);
  const raw = mark < 0 ? '' : target.slice(mark + 1);
  const query: QueryParam[] = [];
  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    // AWS reads a `+` in a query as a space, the way forms encode it.
    const decode = (s: string) => decodeComponent(s.replace(/\+/g, ' '));
    query.push(
      eq < 0
        ? { name: decode(pair), value: '' }
        : { name: decode(pair.slice(0, eq)), value: decode(pair.slice(eq + 1)) },
    );
  }
  return { path: path === '' ? '/' : path, query };
}

function canonicalQuery(query: QueryParam[], mode: 'header' | 'query'): string {
  return query
    .filter((p) => !(mode === 'query' && p.name === 'X-Amz-Signature'))
    .map((p) => [uriEncode(p.name), uriEncode(p.value)] as const)
    .sort(([an, av], [bn, bv]) => compare(an, bn) || compare(av, bv))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/**
 * S3 signs the path as sent, encoded once (each segment decoded and re-encoded here, so equivalent
 * encodings agree). Every other service signs the normalised path (no empty, `.` or `..` segments)
 * encoded twice.
 */
function canonicalPath(rawPath: string, service: string): string {
  const once = rawPath.split('/').map((segment) => uriEncode(decodeComponent(segment)));
  if (service === 's3') return once.join('/');
  const normalised: string[] = [];
  for (const segment of once.slice(1)) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') normalised.pop();
    else normalised.push(segment);
  }
  const trailing = normalised.length > 0 && rawPath.endsWith('/') ? '/' : '';
  return `/${normalised.map(uriEncode).join('/')}${trailing}`;
}

/** RFC 3986 encoding as SigV4 wants it: everything but `A-Z a-z 0-9 - _ . ~`, upper-case hex. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Decodes percent-escapes; a malformed escape stays as it is (it then re-encodes to itself, `%` as `%25`). */
function decodeComponent(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Lower-case names; values trimmed, runs of spaces and tabs collapsed, repeats joined by `,`. */
function canonicalHeaderValues(headers: SigV4Request['headers']): Map<string, string> {
  const result = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const values = typeof value === 'string' ? [value] : value;
    const clean = values.map((v) =>
      v
        .replace(/[\r\n]/g, ' ')
        .replace(/[ \t]+/g, ' ')
        .trim(),
    );
    const lower = name.toLowerCase();
    const before = result.get(lower);
    result.set(lower, before === undefined ? clean.join(',') : `${before},${clean.join(',')}`);
  }
  return result;
}

function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  // Date.UTC rolls month 13 or second 61 over; a real timestamp formats back to itself.
  const formatted = Number.isNaN(ms) ? '' : new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
  return formatted === value ? ms : undefined;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}
