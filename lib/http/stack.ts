import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { type Caller, PERMISSIONS, ROLES } from '../core/identity/identity.ts';
import type { RequestLimiter } from '../core/identity/request-rate.ts';
import type { AuditLog } from '../core/ports/audit.ts';
import { describeError, type ErrorCode, VolsnapError } from '../core/shared/errors.ts';
import { newId } from '../core/shared/ids.ts';
import * as z from '../core/shared/schema.ts';
import { type Logger, logger as rootLogger } from './logger.ts';
import { backendOutageOf } from './outages.ts';

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
  /** For routes that change something: the action the audit trail records (`snapshot.share`). */
  audit?: string;
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

export interface HandlerOptions {
  /** Replaces the audit trail of the composition root (for tests). */
  audit?: AuditLog;
  /** Replaces the request limiter of the composition root (for tests; `null`: no limit). */
  limiter?: RequestLimiter | null;
}

type Event = APIGatewayProxyEventV2 & { body?: unknown };
type Schemas = RouteSchemas<z.ZodMiniType, z.ZodMiniType, z.ZodMiniType>;

/**
 * Builds an authenticated API Gateway HTTP API (v2) Lambda handler: the one middy stack every
 * route uses. The caller comes from the route's Lambda authorizer (functions/http/authorizer.ts),
 * which API Gateway runs first and which resolves the API key; a request it could not resolve, or
 * one that reached the route without it, is a 401 `auth.unauthorized`, the same for every kind of
 * bad key. A request with a caller is first counted against its account's request rate in this
 * region (past it: 429 `request.throttled` with `Retry-After`): here and not in the authorizer,
 * whose refusal API Gateway would answer as a 403 without `Retry-After`. Then headers are normalized, JSON bodies
 * parsed, body/query/path validated with zod, and
 * `route` runs; a route that declares `audit` has every success recorded (who, what, when, which
 * key). Any thrown error maps to `{error, message, requestId}` with the status its code fixes (5xx:
 * generic message, cause logged; `request.throttled` and the 503s `storage.throttled`/`storage.unavailable`
 * carry `Retry-After`). Every response carries `x-request-id`.
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
  const audit = async (): Promise<AuditLog> => options.audit ?? (await defaultAuditLog());
  const limiter = async (): Promise<RequestLimiter | null> =>
    options.limiter !== undefined ? options.limiter : await defaultLimiter();
  return stack(
    schemas,
    route as (input: PublicRouteInput<unknown, unknown, unknown>) => Promise<RouteResult>,
    { audit, limiter },
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

/** A Lambda handler of the HTTP API (payload 2.0), as {@link httpHandler} and {@link publicHttpHandler} build them. */
export type HttpLambda = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

/** One Lambda serving several routes; `routeKeys` names them, for the check against serverless.yml. */
export interface HttpRouter extends HttpLambda {
  readonly routeKeys: readonly string[];
}

/** A route key as API Gateway writes it, and as serverless.yml declares it: `GET /v1/snapshots/{snapshotId}`. */
const ROUTE_KEY = /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY) (\/\S*)$/;

/**
 * One Lambda function for a group of routes (an area: volumes, snapshots…), each route still its own
 * `httpApi` event in serverless.yml and its own handler (its schemas, audit action, stack). Dispatches
 * on the event's `routeKey`, which API Gateway sets to the key of the route it matched (`POST
 * /v1/snapshots/{snapshotId}/shares`), with that route's path parameters already extracted and
 * decoded in `pathParameters`: no path matching here, so a named stage or a custom domain's API
 * mapping (which prefix `rawPath`) changes nothing. A route key the router does not serve means
 * serverless.yml and the router disagree (logged as an error); it answers `route.methodNotAllowed`
 * (405) when the router serves the path with another method, else `route.notFound` (404), in the
 * error shape of every other answer. Stateless and synchronous to build.
 */
export function httpRouter(routes: Record<string, HttpLambda>): HttpRouter {
  const table = new Map<string, HttpLambda>();
  for (const [key, handler] of Object.entries(routes)) {
    if (!ROUTE_KEY.test(key))
      throw new Error(`Route key '${key}' is not 'METHOD /path' as serverless.yml declares routes.`);
    table.set(key, handler);
  }
  const routeKeys = [...table.keys()];
  const router = async (
    event: APIGatewayProxyEventV2,
    context: Context,
  ): Promise<APIGatewayProxyStructuredResultV2> => {
    const handler = table.get(event.routeKey);
    if (handler) return handler(event, context);
    const requestId = requestIdOf(event, context);
    rootLogger.error('route not served by this function: serverless.yml and its router disagree', {
      requestId,
      routeKey: event.routeKey,
      function: context?.functionName,
    });
    return errorResponse(unservedRoute(event, routeKeys), requestId);
  };
  return Object.assign(router, { routeKeys });
}

/** The error for a route key a router does not serve: 405 naming the methods it serves on that path, else 404. */
function unservedRoute(event: APIGatewayProxyEventV2, routeKeys: readonly string[]): VolsnapError {
  const method = event.requestContext?.http?.method ?? event.routeKey.split(' ')[0] ?? '';
  const path = event.rawPath ?? event.requestContext?.http?.path ?? '';
  const template = ROUTE_KEY.exec(event.routeKey)?.[2];
  const allowed = routeKeys
    .map((key) => key.split(' ') as [string, string])
    .filter(([, routePath]) => template !== undefined && routePath === template)
    .map(([routeMethod]) => routeMethod);
  return allowed.length > 0
    ? new VolsnapError(
        'route.methodNotAllowed',
        `${method} is not allowed on ${path}; use ${allowed.join(', ')}.`,
      )
    : new VolsnapError('route.notFound', `No route ${method} ${path}.`);
}

// The composition root is loaded on first use, so public handlers and tests never build AWS clients.
// Only identity's and accounts' ports: every authenticated route counts its request and may audit it.
/** The composition root's audit trail (loaded on first use). */
export async function defaultAuditLog(): Promise<AuditLog> {
  const { provide, requestPorts } = await requestRoot();
  return provide(...requestPorts).region.ports.audit;
}

/** The composition root's per-account request limiter (loaded on first use). */
export async function defaultLimiter(): Promise<RequestLimiter> {
  const [{ provide, requestPorts }, { requestLimiter }] = await Promise.all([
    requestRoot(),
    import('../wiring/identity.ts'),
  ]);
  return provide(...requestPorts).service(requestLimiter);
}

/** The container's root and the ports every authenticated request needs (identity, its account's). */
async function requestRoot() {
  const [{ provide }, { identityPorts }, { accountPorts }] = await Promise.all([
    import('../root.ts'),
    import('../aws/dynamodb.ts'),
    import('../aws/account-records.ts'),
  ]);
  return { provide, requestPorts: [identityPorts, accountPorts] };
}

const CallerSchema = z.object({
  accountId: z.string(),
  userName: z.string(),
  keyId: z.string(),
  role: z.enum(ROLES),
  permissions: z.array(z.enum(PERMISSIONS)),
  operator: z.boolean(),
});

/** The authorizer's context key carrying the caller, as JSON (context values are best kept strings). */
export const CALLER_CONTEXT_KEY = 'caller';

/** The caller the route's Lambda authorizer resolved, or undefined (no authorizer ran, or no valid key). */
export function callerFromEvent(event: APIGatewayProxyEventV2): Caller | undefined {
  const context = (event.requestContext as { authorizer?: { lambda?: Record<string, unknown> } }).authorizer
    ?.lambda;
  const text = context?.[CALLER_CONTEXT_KEY];
  if (typeof text !== 'string') return undefined;
  try {
    const parsed = CallerSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

const UNAUTHORIZED = 'Missing or invalid API key. Send it as `Authorization: Bearer vsk_…`.';

/**
 * The authorizer's context key saying the caller could not be resolved because the identity store
 * failed for now (its value the code, `storage.unavailable` or `storage.throttled`).
 */
export const IDENTITY_OUTAGE_CONTEXT_KEY = 'identityOutage';
const OUTAGE_CODES = new Set<string>(['storage.unavailable', 'storage.throttled']);

/**
 * The context a Lambda authorizer hands the route for `resolve`'s caller. A store that failed for
 * now (storage.unavailable/throttled) is handed on as {@link IDENTITY_OUTAGE_CONTEXT_KEY}, not
 * thrown: API Gateway answers an authorizer that throws with a bare 500 it does not let us change,
 * while the route answers the outage as the 503 (with `Retry-After`) it is. Any other failure is
 * thrown (a bug: API Gateway's 500).
 */
export async function authorizerContext(
  resolve: () => Promise<Caller | undefined>,
): Promise<Record<string, string>> {
  try {
    const caller = await resolve();
    return caller ? { [CALLER_CONTEXT_KEY]: JSON.stringify(caller) } : {};
  } catch (error) {
    if (error instanceof VolsnapError && OUTAGE_CODES.has(error.code))
      return { [IDENTITY_OUTAGE_CONTEXT_KEY]: error.code };
    throw error;
  }
}

/** The identity outage the authorizer handed on, as the error the route answers; undefined if none. */
function identityOutageOf(event: APIGatewayProxyEventV2): VolsnapError | undefined {
  const context = (event.requestContext as { authorizer?: { lambda?: Record<string, unknown> } }).authorizer
    ?.lambda;
  const code = context?.[IDENTITY_OUTAGE_CONTEXT_KEY];
  if (code !== 'storage.unavailable' && code !== 'storage.throttled') return undefined;
  const seconds = code === 'storage.throttled' ? 2 : 1;
  return new VolsnapError(
    code,
    `The service could not check the API key: its table is ${code === 'storage.throttled' ? 'throttling' : 'not answering'} for now; retry in ${seconds} second${seconds === 1 ? '' : 's'}.`,
    { details: { retryAfterSeconds: seconds } },
  );
}

function stack(
  schemas: Schemas,
  route: (input: PublicRouteInput<unknown, unknown, unknown> & { caller?: Caller }) => Promise<RouteResult>,
  auth?: { audit: () => Promise<AuditLog>; limiter: () => Promise<RequestLimiter | null> },
) {
  const core = async (event: Event, context: Context): Promise<APIGatewayProxyStructuredResultV2> => {
    const requestId = requestIdOf(event, context);
    let log = rootLogger.child({ requestId, route: event.routeKey });
    // Authenticated before anything else: a caller without a valid key learns nothing, not even
    // whether its request would have been valid.
    const caller = auth ? callerFromEvent(event) : undefined;
    if (auth && !caller) throw identityOutageOf(event) ?? new VolsnapError('auth.unauthorized', UNAUTHORIZED);
    if (caller)
      log = log.child({ accountId: caller.accountId, userName: caller.userName, keyId: caller.keyId });
    const body = validate('body', schemas.body, event.body);
    const query = validate('query', schemas.query, event.queryStringParameters ?? {});
    const path = validate('path', schemas.path, event.pathParameters ?? {});
    const result = await route({ body, query, path, event, requestId, log, ...(caller ? { caller } : {}) });
    const status = result.status ?? 200;
    if (auth && caller && schemas.audit) {
      await (await auth.audit()).record({
        eventId: newId('request'),
        at: new Date(event.requestContext.timeEpoch || Date.now()).toISOString(),
        accountId: caller.accountId,
        userName: caller.userName,
        keyId: caller.keyId,
        action: schemas.audit,
        target: auditTarget(event.pathParameters ?? {}, result.body),
        requestId,
        status,
      });
    }
    return jsonResponse(status, result.body, requestId, result.headers);
  };

  const chain = middy<Event, APIGatewayProxyStructuredResultV2, Error, Context>();
  // The rate is counted first, before the body is even parsed: a throttled request costs least.
  if (auth) chain.use(throttle(auth.limiter));
  return chain
    .use(httpHeaderNormalizer())
    .use(jsonBodyWhenPresent())
    .use({
      onError: async (request) => {
        request.response = errorResponse(request.error, requestIdOf(request.event, request.context));
      },
    })
    .handler(core);
}

/**
 * Counts the request against its account's rate (the caller is known from the authorizer) and
 * refuses it past that with 429 `request.throttled` and `Retry-After`. A request without a caller
 * passes untouched: the handler answers it 401.
 */
function throttle(
  limiter: () => Promise<RequestLimiter | null>,
): middy.MiddlewareObj<Event, APIGatewayProxyStructuredResultV2, Error, Context> {
  return {
    before: async (request) => {
      const caller = callerFromEvent(request.event);
      if (!caller) return;
      await (await limiter())?.admit(caller.accountId);
    },
  };
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

/** What an audited change acted on: the ids in its path, and the id of what it created. */
function auditTarget(path: Record<string, string | undefined>, body: unknown): Record<string, string> {
  const target: Record<string, string> = {};
  for (const [key, value] of Object.entries(path)) if (value !== undefined) target[key] = value;
  if (body && typeof body === 'object') {
    for (const key of [
      'volumeId',
      'snapshotId',
      'keyId',
      'userName',
      'policyId',
      'exportId',
      'instanceId',
      'imageId',
    ]) {
      const value = (body as Record<string, unknown>)[key];
      if (typeof value === 'string' && !(key in target)) target[key] = value;
    }
  }
  return target;
}

function validate<S extends z.ZodMiniType>(part: string, schema: S | undefined, value: unknown): z.infer<S> {
  // Every string of a request is printable text, whatever the route declares (one rule).
  const parsed = (schema ?? z.unknown()).check(z.printable).safeParse(value);
  if (parsed.success) return parsed.data as z.infer<S>;
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
  const retryAfter = retryAfterOf(mapped);
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
        message: retryAfter
          ? `The service is busy; retry in ${retryAfter} second${retryAfter === '1' ? '' : 's'}.`
          : 'Internal error. Retry later; if it persists, report this request id.',
        requestId,
      };
  const headers: Record<string, string> =
    mapped.code === 'auth.unauthorized'
      ? { 'www-authenticate': 'Bearer' }
      : retryAfter
        ? { 'retry-after': retryAfter }
        : {};
  return jsonResponse(mapped.status, body, requestId, headers);
}

/** Codes a client should retry after waiting: their answers carry `Retry-After` (seconds). */
const RETRY_AFTER_CODES: ReadonlySet<ErrorCode> = new Set([
  'request.throttled',
  'storage.throttled',
  'storage.unavailable',
]);

/** The `Retry-After` of an error (its `retryAfterSeconds` detail, else 1 s), or undefined if it has none. */
function retryAfterOf(error: VolsnapError): string | undefined {
  if (!RETRY_AFTER_CODES.has(error.code)) return undefined;
  const seconds = error.details?.retryAfterSeconds;
  return String(typeof seconds === 'number' && seconds > 0 ? Math.ceil(seconds) : 1);
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
  return backendOutageOf(error) ?? new VolsnapError('internal', 'Internal error.', { cause: error });
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
