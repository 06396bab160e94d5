import { createHash } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { Caller } from '../../lib/core/identity/identity.ts';
import { VolsnapError } from '../../lib/core/shared/errors.ts';
import type { AwsAuthenticator } from '../../lib/http/ebs/protocol.ts';
import { verifySigV4 } from '../../lib/http/sigv4.ts';
import type { HttpLambda } from '../../lib/http/stack.ts';
import { lambdaContext } from './events.ts';

/** An access key of a test: its secret, and whom it signs for. */
export interface TestKey {
  accessKeyId: string;
  secretAccessKey: string;
  caller: Caller;
}

/**
 * An authenticator for tests of AWS-protocol routes until SigV4 keys are issued: verifies the
 * signature (lib/http/sigv4.ts) against the given keys, at the real time (the SDKs sign with it).
 */
export function testAuthenticator(keys: readonly TestKey[]): AwsAuthenticator {
  return async (request) => {
    const result = verifySigV4(
      {
        method: request.method,
        target: request.target,
        headers: request.headers,
        payloadHash: createHash('sha256').update(request.body).digest('hex'),
      },
      {
        service: request.service,
        region: request.region,
        secretFor: (id) => keys.find((k) => k.accessKeyId === id)?.secretAccessKey,
        nowMs: Date.now(),
      },
    );
    if (!result.ok) {
      throw new VolsnapError(
        result.code === 'InvalidAccessKeyId' ? 'aws.unrecognizedClient' : 'aws.signatureInvalid',
        result.message,
      );
    }
    return (keys.find((k) => k.accessKeyId === result.accessKeyId) as TestKey).caller;
  };
}

/** RFC 3986 escaping, as the SDKs' signers escape query names and values. */
function uriEscape(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

interface SdkRequest {
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/**
 * An SDK `requestHandler` that hands each request, as an API Gateway v2 event, to the handlers of
 * `routes` (route keys as in serverless.yml), in process: the unmodified SDK clients against the
 * routes without a local cloud.
 */
export function lambdaRequestHandler(routes: Record<string, HttpLambda>) {
  const table = Object.entries(routes).map(([key, handler]) => {
    const [method, template = ''] = key.split(' ');
    const names: string[] = [];
    const pattern = new RegExp(
      `^${template.replace(/\{(\w+)\}/g, (_, name: string) => {
        names.push(name);
        return '([^/]+)';
      })}$`,
    );
    return { key, method, pattern, names, handler };
  });
  return {
    async handle(request: SdkRequest) {
      const rawQueryString = Object.entries(request.query ?? {})
        .flatMap(([name, value]) =>
          value === null
            ? [uriEscape(name)]
            : [value].flat().map((v) => `${uriEscape(name)}=${uriEscape(v)}`),
        )
        .join('&');
      const route = table.find((r) => r.method === request.method && r.pattern.test(request.path));
      if (!route) throw new Error(`no route for ${request.method} ${request.path}`);
      const match = route.pattern.exec(request.path) as RegExpExecArray;
      const body = await bodyBytes(request.body);
      const event = {
        version: '2.0',
        routeKey: route.key,
        rawPath: request.path,
        rawQueryString,
        headers: request.headers,
        pathParameters: Object.fromEntries(
          route.names.map((n, i) => [n, decodeURIComponent(match[i + 1] ?? '')]),
        ),
        isBase64Encoded: true,
        body: body.toString('base64'),
        requestContext: {
          http: { method: request.method, path: request.path },
          requestId: `req-${Math.random().toString(36).slice(2)}`,
          timeEpoch: Date.now(),
        },
      } as unknown as APIGatewayProxyEventV2;
      const result = (await route.handler(event, lambdaContext)) as APIGatewayProxyStructuredResultV2;
      const raw = result.body ?? '';
      return {
        response: {
          statusCode: result.statusCode ?? 200,
          headers: Object.fromEntries(
            Object.entries(result.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]),
          ),
          body: result.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8'),
        },
      };
    },
  };
}
