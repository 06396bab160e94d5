import type { IncomingMessage, ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { CorsSpec, HttpRoute } from './serverless-spec.ts';

/** A compiled `httpApi` route: `/v1/snapshots/{id}` matches one segment per `{name}`, `{name+}` the rest. */
export interface CompiledRoute<T> {
  route: HttpRoute;
  routeKey: string;
  pattern: RegExp;
  params: string[];
  target: T;
}

export function compileRoute<T>(route: HttpRoute, target: T): CompiledRoute<T> {
  const params: string[] = [];
  const source = route.path
    .split('/')
    .map((part) => {
      const greedy = /^\{(\w+)\+\}$/.exec(part);
      if (greedy?.[1]) {
        params.push(greedy[1]);
        return '(.+)';
      }
      const param = /^\{(\w+)\}$/.exec(part);
      if (param?.[1]) {
        params.push(param[1]);
        return '([^/]+)';
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return {
    route,
    routeKey: `${route.method} ${route.path}`,
    pattern: new RegExp(`^${source}$`),
    params,
    target,
  };
}

export type RouteMatch<T> =
  | { kind: 'match'; route: CompiledRoute<T>; pathParameters: Record<string, string> }
  | { kind: 'methodNotAllowed'; allowed: string[] }
  | { kind: 'notFound' };

/**
 * Matches as API Gateway does: literal routes win over parameterised ones (fewer parameters first),
 * `ANY` matches every method.
 */
export function matchRoute<T>(routes: CompiledRoute<T>[], method: string, path: string): RouteMatch<T> {
  const ordered = [...routes].sort((a, b) => a.params.length - b.params.length);
  const allowed: string[] = [];
  for (const candidate of ordered) {
    const found = candidate.pattern.exec(path);
    if (!found) continue;
    if (candidate.route.method !== method && candidate.route.method !== 'ANY') {
      allowed.push(candidate.route.method);
      continue;
    }
    const pathParameters = Object.fromEntries(
      candidate.params.map((name, i) => [name, decodeURIComponent(found[i + 1] ?? '')]),
    );
    return { kind: 'match', route: candidate, pathParameters };
  }
  return allowed.length > 0 ? { kind: 'methodNotAllowed', allowed } : { kind: 'notFound' };
}

/** Builds the HTTP API v2 event API Gateway would send for this request (payload format 2.0). */
export function toApiGatewayEvent(
  request: IncomingMessage,
  body: Buffer,
  match: { routeKey: string; pathParameters: Record<string, string> },
  requestId: string,
  now: Date,
): APIGatewayProxyEventV2 {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    if (name === 'cookie') cookies.push(...[value].flat().flatMap((v) => v.split(/;\s*/)));
    else headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) query[key] = key in query ? `${query[key]},${value}` : value;
  // As API Gateway HTTP APIs do: the path reaches the function percent-decoded (the query raw).
  const path = decodedPath(url.pathname);
  const isText = body.length === 0 || /json|text|xml|urlencoded/.test(headers['content-type'] ?? '');
  return {
    version: '2.0',
    routeKey: match.routeKey,
    rawPath: path,
    rawQueryString: url.search.slice(1),
    cookies: cookies.length > 0 ? cookies : undefined,
    headers,
    queryStringParameters: Object.keys(query).length > 0 ? query : undefined,
    pathParameters: Object.keys(match.pathParameters).length > 0 ? match.pathParameters : undefined,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0] ?? 'localhost',
      http: {
        method: request.method ?? 'GET',
        path,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: match.routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: body.length === 0 ? undefined : isText ? body.toString('utf8') : body.toString('base64'),
    isBase64Encoded: body.length > 0 && !isText,
    stageVariables: undefined,
  };
}

/** Writes a handler's result as API Gateway would (string results become JSON 200s). */
export function writeResult(
  response: ServerResponse,
  result: APIGatewayProxyStructuredResultV2 | string | undefined,
): void {
  if (typeof result === 'string' || result === undefined || !('statusCode' in result)) {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(typeof result === 'string' ? result : JSON.stringify(result ?? null));
    return;
  }
  const headers: Record<string, string | string[]> = { ...(result.headers as Record<string, string>) };
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  response.writeHead(result.statusCode ?? 200, headers);
  const body = result.body ?? '';
  response.end(result.isBase64Encoded ? Buffer.from(body, 'base64') : body);
}

/** A header's values as one comparison list (`A, b` → `['a', 'b']`). */
const lowerList = (values: string[]) => values.map((v) => v.toLowerCase());

function allowedOrigin(cors: CorsSpec, origin: string | undefined): string | undefined {
  if (!origin) return undefined;
  if (cors.allowedOrigins.includes('*')) return '*';
  return cors.allowedOrigins.includes(origin) ? origin : undefined;
}

/**
 * API Gateway's answer to a CORS preflight (an OPTIONS request with `Origin` and
 * `Access-Control-Request-Method`) when the API has `cors`: it answers itself, whatever the routes,
 * 204 with the allowed origin, methods and headers, or 204 without them for an origin, method or
 * header it does not allow. Undefined for any other request.
 */
export function corsPreflight(
  cors: CorsSpec | undefined,
  method: string,
  headers: IncomingMessage['headers'],
): { status: number; headers: Record<string, string> } | undefined {
  const origin = headers.origin;
  const requested = headers['access-control-request-method'];
  if (!cors || method !== 'OPTIONS' || !origin || typeof requested !== 'string') return undefined;
  const allowOrigin = allowedOrigin(cors, origin);
  const methods = lowerList(cors.allowedMethods);
  const requestedHeaders = String(headers['access-control-request-headers'] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const allowedHeaders = lowerList(cors.allowedHeaders);
  const allowed =
    allowOrigin !== undefined &&
    (methods.includes('*') || methods.includes(requested.toLowerCase())) &&
    (allowedHeaders.includes('*') || requestedHeaders.every((h) => allowedHeaders.includes(h)));
  if (!allowed) return { status: 204, headers: {} };
  return {
    status: 204,
    headers: {
      'access-control-allow-origin': allowOrigin,
      'access-control-allow-methods': cors.allowedMethods.join(','),
      'access-control-allow-headers': cors.allowedHeaders.join(','),
      ...(cors.maxAge !== undefined ? { 'access-control-max-age': String(cors.maxAge) } : {}),
      vary: 'Origin',
    },
  };
}

/** The CORS headers API Gateway adds to every answer to a request from an allowed `Origin`. */
export function corsResponseHeaders(
  cors: CorsSpec | undefined,
  origin: string | undefined,
): Record<string, string> {
  const allowOrigin = cors ? allowedOrigin(cors, origin) : undefined;
  if (!cors || !allowOrigin) return {};
  return {
    'access-control-allow-origin': allowOrigin,
    ...(cors.exposedResponseHeaders.length > 0
      ? { 'access-control-expose-headers': cors.exposedResponseHeaders.join(',') }
      : {}),
    vary: 'Origin',
  };
}

/**
 * The path as API Gateway HTTP APIs hand it to Lambda (payload 2.0 `rawPath`, and
 * `requestContext.http.path`): percent-escapes decoded (a malformed one left as it is).
 */
export function decodedPath(pathname: string): string {
  return pathname.replace(/(?:%[0-9A-Fa-f]{2})+/g, (escapes) => {
    try {
      return decodeURIComponent(escapes);
    } catch {
      return escapes;
    }
  });
}
