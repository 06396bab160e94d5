import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { describeError, VolsnapError } from '../core/errors.ts';
import type { Caller } from '../core/identity.ts';
import * as z from '../core/schema.ts';
import { type Logger, logger as rootLogger } from './logger.ts';

/** The JSON body of every error response. */
export interface ErrorBody {
  error: string;
  message: string;
  requestId: string;
  details?: Record<string, unknown>;
}

/** What a route declares it accepts; each part is validated before the route runs. */
export interface RouteSchemas<B extends z.ZodMiniType, Q extends z.ZodMiniType, P extends z.ZodMiniType> {
  body?: B;
  query?: Q;
  path?: P;
}

/** What a route's implementation receives: validated input, the raw event, a request-scoped logger. */
export interface PublicRouteInput<B, Q, P> {
  body: B;
  query: Q;
  path: P;
  event: APIGatewayProxyEventV2;
  requestId: string;
  log: Logger;
}

/** What an authenticated route receives: the same, and who is calling. */
export interface RouteInput<B, Q, P> extends PublicRouteInput<B, Q, P> {
  caller: Caller;
}

/** A route's answer: a status (200 unless said) and a JSON body. */
export interface RouteResult {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Resolves the `Authorization` header to a caller, or throws `auth.unauthorized`. */
export type Authenticator = (authorization: string | undefined) => Promise<Caller>;

export interface HandlerOptions {
  /** Replaces the API-key authenticator of the composition root (for tests). */
  authenticate?: Authenticator;
}

type Event = APIGatewayProxyEventV2 & { body?: unknown };
type Schemas = RouteSchemas<z.ZodMiniType, z.ZodMiniType, z.ZodMiniType>;

/**
 * Builds an authenticated API Gateway HTTP API (v2) Lambda handler: the one middy stack every
 * route uses. Authenticates the API key (401 `auth.unauthorized`, the same answer for a missing,
 * malformed, unknown, revoked or expired key), normalizes headers, parses JSON bodies, validates
 * body/query/path with zod, runs `route`, and maps any thrown error to `{error, message, requestId}`
 * with the status its code fixes (5xx: generic message, cause logged). Every response carries
 * `x-request-id`.
 */
export function httpHandler<
  B extends z.ZodMiniType = z.ZodMiniUnknown,
  Q extends z.ZodMiniType = z.ZodMiniUnknown,
  P extends z.ZodMiniType = z.ZodMiniUnknown,
>(
  schemas: RouteSchemas<B, Q, P>,
  route: (input: RouteInput<z.infer<B>, z.infer<Q>, z.infer<P>>) => Promise<RouteResult>,
  options: HandlerOptions = {},
) {
  const authenticate: Authenticator = async (header) =>
    (options.authenticate ?? (await defaultAuthenticator()))(header);
  return stack(
    schemas,
    route as (input: PublicRouteInput<unknown, unknown, unknown>) => Promise<RouteResult>,
    authenticate,
  );
}

/** A handler that needs no API key (`GET /v1/health`). */
export function publicHttpHandler<
  B extends z.ZodMiniType = z.ZodMiniUnknown,
  Q extends z.ZodMiniType = z.ZodMiniUnknown,
  P extends z.ZodMiniType = z.ZodMiniUnknown,
>(
  schemas: RouteSchemas<B, Q, P>,
  route: (input: PublicRouteInput<z.infer<B>, z.infer<Q>, z.infer<P>>) => Promise<RouteResult>,
) {
  return stack(
    schemas,
    route as (input: PublicRouteInput<unknown, unknown, unknown>) => Promise<RouteResult>,
  );
}

// The composition root is loaded on first use, so public handlers and tests never build AWS clients.
async function defaultAuthenticator(): Promise<Authenticator> {
  const { runtime } = await import('../root.ts');
  return runtime().authenticate;
}

function stack(
  schemas: Schemas,
  route: (input: PublicRouteInput<unknown, unknown, unknown> & { caller?: Caller }) => Promise<RouteResult>,
  authenticate?: Authenticator,
) {
  const core = async (event: Event, context: Context): Promise<APIGatewayProxyStructuredResultV2> => {
    const requestId = requestIdOf(event, context);
    let log = rootLogger.child({ requestId, route: event.routeKey });
    // Authenticate before anything else: a caller without a valid key learns nothing, not even
    // whether its request would have been valid.
    const caller = authenticate ? await authenticate(event.headers.authorization) : undefined;
    if (caller) log = log.child({ accountId: caller.accountId, keyId: caller.keyId });
    const body = validate('body', schemas.body, event.body);
    const query = validate('query', schemas.query, event.queryStringParameters ?? {});
    const path = validate('path', schemas.path, event.pathParameters ?? {});
    const result = await route({ body, query, path, event, requestId, log, ...(caller ? { caller } : {}) });
    return jsonResponse(result.status ?? 200, result.body, requestId, result.headers);
  };

  return middy<Event, APIGatewayProxyStructuredResultV2, Error, Context>()
    .use(httpHeaderNormalizer())
    .use(jsonBodyWhenPresent())
    .use({
      onError: async (request) => {
        request.response = errorResponse(request.error, requestIdOf(request.event, request.context));
      },
    })
    .handler(core);
}

/** Parses JSON bodies (415 for another content type); requests without a body (GET, DELETE) pass untouched. */
function jsonBodyWhenPresent(): middy.MiddlewareObj<
  Event,
  APIGatewayProxyStructuredResultV2,
  Error,
  Context
> {
  const parser = httpJsonBodyParser<Event>();
  return {
    before: async (request) => {
      const body = request.event.body;
      if (body === undefined || body === null || body === '') {
        request.event.body = undefined;
        return;
      }
      await parser.before?.(request as never);
    },
  };
}

function validate<S extends z.ZodMiniType>(part: string, schema: S | undefined, value: unknown): z.infer<S> {
  if (!schema) return value as z.infer<S>;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new VolsnapError('request.invalid', `Invalid ${part}: ${z.describeIssues(parsed.error)}.`, {
    details: {
      part,
      issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    },
  });
}

function requestIdOf(
  event: Partial<APIGatewayProxyEventV2> | undefined,
  context: Partial<Context> | undefined,
): string {
  return event?.requestContext?.requestId ?? context?.awsRequestId ?? 'unknown';
}

export function jsonResponse(
  status: number,
  body: unknown,
  requestId: string,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...headers },
    body: body === undefined ? '' : JSON.stringify(body),
  };
}

/**
 * Maps any thrown value to an HTTP response: a VolsnapError by its code; an HTTP error raised by a
 * middy middleware (bad JSON, wrong content type) to `request.malformed`/`request.unsupportedMediaType`;
 * anything else to a generic 500 whose cause goes to the log only.
 */
export function errorResponse(error: unknown, requestId: string): APIGatewayProxyStructuredResultV2 {
  const mapped = toVolsnapError(error);
  if (!mapped.exposed) {
    rootLogger.error('request failed', {
      requestId,
      code: mapped.code,
      error: describeError(error),
      cause: causeChain(error),
    });
  }
  const body: ErrorBody = mapped.exposed
    ? {
        error: mapped.code,
        message: mapped.message,
        requestId,
        ...(mapped.details ? { details: mapped.details } : {}),
      }
    : {
        error: mapped.code,
        message: 'Internal error. Retry later; if it persists, report this request id.',
        requestId,
      };
  const headers: Record<string, string> =
    mapped.code === 'auth.unauthorized' ? { 'www-authenticate': 'Bearer' } : {};
  return jsonResponse(mapped.status, body, requestId, headers);
}

function toVolsnapError(error: unknown): VolsnapError {
  if (error instanceof VolsnapError) return error;
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  const message = (error as { message?: unknown } | null)?.message;
  if (status === 415 && message === 'Unsupported Media Type') {
    return new VolsnapError(
      'request.unsupportedMediaType',
      'Send the request body as JSON with content-type: application/json.',
      { cause: error },
    );
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new VolsnapError('request.malformed', 'The request body is not valid JSON.', { cause: error });
  }
  return new VolsnapError('internal', 'Internal error.', { cause: error });
}

function causeChain(error: unknown): string[] {
  const chain: string[] = [];
  let current = (error as { cause?: unknown } | null)?.cause;
  while (current !== undefined && chain.length < 5) {
    chain.push(describeError(current));
    current = (current as { cause?: unknown } | null)?.cause;
  }
  return chain;
}
