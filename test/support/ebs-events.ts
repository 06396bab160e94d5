import { SignatureV4 } from '@smithy/signature-v4';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { Caller } from '../../lib/core/identity/identity.ts';
import { VolsnapError } from '../../lib/core/shared/errors.ts';
import type { AwsAuthenticator } from '../../lib/http/ebs/protocol.ts';
import { verifySigV4 } from '../../lib/http/sigv4.ts';
import { NodeSha256 } from './node-sha256.ts';

/** An access key pair of a test caller, as `volsnap admin key create --sigv4` would issue. */
export interface TestSigV4Key {
  accessKeyId: string;
  secretAccessKey: string;
  caller: Caller;
}

let keys = 0;
/** A key pair for `caller` (20-character AKIA id, 40-character secret). */
export function testSigV4Key(caller: Caller): TestSigV4Key {
  keys++;
  return {
    accessKeyId: `AKIATEST${String(keys).padStart(12, '0')}`,
    secretAccessKey: `test-secret-${String(keys).padStart(28, '0')}`,
    caller,
  };
}

/**
 * An authenticator over a fixed set of keys, verifying signatures with lib/http/sigv4.ts (what the
 * deployment's `defaultAuthenticate` stands on): the routes' tests until the SigV4 key store lands.
 */
export function keysAuthenticator(list: readonly TestSigV4Key[], now: () => number): AwsAuthenticator {
  const byId = new Map(list.map((key) => [key.accessKeyId, key]));
  return async (request) => {
    const result = verifySigV4(
      { method: request.method, target: request.target, headers: request.headers },
      {
        service: request.service,
        region: request.region,
        secretFor: (id) => byId.get(id)?.secretAccessKey,
        nowMs: now(),
      },
    );
    if (!result.ok) throw new VolsnapError('aws.signatureInvalid', result.message);
    const key = byId.get(result.accessKeyId);
    if (!key) throw new VolsnapError('aws.unrecognizedClient', 'Unknown key.');
    return key.caller;
  };
}

/** AWS's URI encoding of a query value (as the SDKs send it: `+ / =` escaped, space as %20). */
function uriEscape(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export interface EbsRequest {
  method?: string;
  /** The route key of serverless.yml (`GET /ebs/snapshots/{snapshotId}/blocks`). */
  routeKey: string;
  pathParameters: Record<string, string>;
  query?: Record<string, string | undefined>;
}

/** An HTTP API event for `request`, signed for service `ebs` by @smithy/signature-v4 with `key` at `nowMs`. */
export async function signedEbsEvent(
  request: EbsRequest,
  key: Pick<TestSigV4Key, 'accessKeyId' | 'secretAccessKey'>,
  nowMs: number,
  region = 'eu-west-1',
): Promise<APIGatewayProxyEventV2> {
  const method = request.method ?? 'GET';
  const template = request.routeKey.split(' ')[1] ?? '';
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) =>
    uriEscape(request.pathParameters[name] ?? ''),
  );
  const query = Object.fromEntries(
    Object.entries(request.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const signer = new SignatureV4({
    service: 'ebs',
    region,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    sha256: NodeSha256,
  });
  const signed = await signer.sign(
    { method, protocol: 'https:', hostname: 'api.example', path, query, headers: { host: 'api.example' } },
    { signingDate: new Date(nowMs) },
  );
  const rawQueryString = Object.entries(query)
    .map(([name, value]) => `${uriEscape(name)}=${uriEscape(value)}`)
    .join('&');
  return {
    version: '2.0',
    routeKey: request.routeKey,
    rawPath: path,
    rawQueryString,
    headers: signed.headers as Record<string, string>,
    isBase64Encoded: false,
    pathParameters: request.pathParameters,
    requestContext: {
      accountId: 'test',
      apiId: 'test',
      domainName: 'api.example',
      domainPrefix: 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: `req-${Math.random().toString(36).slice(2)}`,
      routeKey: request.routeKey,
      stage: '$default',
      time: '',
      timeEpoch: nowMs,
    },
  };
}

/** An AWS-protocol answer, its JSON body parsed (when it is JSON) and its bytes (when binary). */
export function answerOf(result: APIGatewayProxyStructuredResultV2) {
  const headers = Object.fromEntries(
    Object.entries(result.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]),
  );
  const isJson = headers['content-type']?.startsWith('application/json');
  return {
    status: result.statusCode ?? 200,
    headers,
    // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever members the answer has.
    json: (isJson && result.body ? JSON.parse(result.body) : undefined) as any,
    bytes: result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : undefined,
  };
}
