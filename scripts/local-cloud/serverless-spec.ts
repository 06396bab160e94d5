import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import * as z from '../../lib/core/shared/schema.ts';

/** One `httpApi` route of a function. */
export interface HttpRoute {
  method: string;
  path: string;
  /** The `provider.httpApi.authorizers` entry guarding the route. */
  authorizer?: string;
}

/** A Lambda authorizer of the HTTP API (`provider.httpApi.authorizers`). */
export interface AuthorizerSpec {
  name: string;
  /** The function of serverless.yml that decides. */
  functionName: string;
  /** Request headers (lower case) that must be present, else API Gateway answers 401 itself. */
  identityHeaders: string[];
  enableSimpleResponses: boolean;
}

/** A function of serverless.yml, as the local cloud runs it. */
export interface FunctionSpec {
  name: string;
  /** `functions/http/health.handler`: module path without extension, then the export. */
  handler: string;
  timeoutSeconds: number;
  routes: HttpRoute[];
  /** Schedule periods in milliseconds, from `rate(…)` expressions. */
  schedules: { rateMs: number; expression: string; enabled: boolean }[];
  /** Logical ids of the SQS queues that trigger the function. */
  queues: string[];
  /** The function's own environment variables. */
  environment: Record<string, string>;
}

/** The HTTP API's CORS configuration (`provider.httpApi.cors`), which API Gateway applies itself. */
export interface CorsSpec {
  allowedOrigins: string[];
  allowedHeaders: string[];
  allowedMethods: string[];
  exposedResponseHeaders: string[];
  maxAge?: number;
}

export interface ServerlessSpec {
  service: string;
  functions: FunctionSpec[];
  authorizers: Record<string, AuthorizerSpec>;
  /** Absent: API Gateway adds no CORS headers and passes OPTIONS to the routes. */
  cors?: CorsSpec;
}

/** What the Serverless Framework sets for `cors: true`. */
const DEFAULT_CORS: CorsSpec = {
  allowedOrigins: ['*'],
  allowedHeaders: [
    'Content-Type',
    'X-Amz-Date',
    'Authorization',
    'X-Api-Key',
    'X-Amz-Security-Token',
    'X-Amz-User-Agent',
    'X-Amzn-Trace-Id',
  ],
  allowedMethods: ['OPTIONS', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
  exposedResponseHeaders: [],
};

const CorsSchema = z.union([
  z.boolean(),
  z.object({
    allowedOrigins: z.optional(z.array(z.string())),
    allowedHeaders: z.optional(z.array(z.string())),
    allowedMethods: z.optional(z.array(z.string())),
    allowCredentials: z.optional(z.boolean()),
    exposedResponseHeaders: z.optional(z.array(z.string())),
    maxAge: z.optional(z.number()),
  }),
]);

function corsSpec(cors: z.infer<typeof CorsSchema> | undefined): CorsSpec | undefined {
  if (cors === undefined || cors === false) return undefined;
  if (cors === true) return DEFAULT_CORS;
  if (cors.allowCredentials)
    throw new Error(
      'provider.httpApi.cors.allowCredentials: the local cloud does not emulate credentialed CORS.',
    );
  return {
    allowedOrigins: cors.allowedOrigins ?? DEFAULT_CORS.allowedOrigins,
    allowedHeaders: cors.allowedHeaders ?? DEFAULT_CORS.allowedHeaders,
    allowedMethods: cors.allowedMethods ?? DEFAULT_CORS.allowedMethods,
    exposedResponseHeaders: cors.exposedResponseHeaders ?? [],
    ...(cors.maxAge !== undefined ? { maxAge: cors.maxAge } : {}),
  };
}

const EventSchema = z.looseObject({
  httpApi: z.optional(
    z.union([
      z.string(),
      z.object({
        method: z.string(),
        path: z.string(),
        authorizer: z.optional(z.union([z.string(), z.object({ name: z.string() })])),
      }),
    ]),
  ),
  schedule: z.optional(
    z.union([
      z.string(),
      z.object({ rate: z.union([z.string(), z.array(z.string())]), enabled: z.optional(z.boolean()) }),
    ]),
  ),
  sqs: z.optional(z.union([z.string(), z.object({ arn: z.unknown() })])),
});

const FileSchema = z.object({
  service: z.string(),
  provider: z.looseObject({
    timeout: z.optional(z.number()),
    httpApi: z.optional(
      z.looseObject({
        cors: z.optional(CorsSchema),
        authorizers: z.optional(
          z.record(
            z.string(),
            z.looseObject({
              type: z.literal('request'),
              functionName: z.string(),
              identitySource: z.optional(z.union([z.string(), z.array(z.string())])),
              enableSimpleResponses: z.optional(z.boolean()),
            }),
          ),
        ),
      }),
    ),
  }),
  functions: z.record(
    z.string(),
    z.looseObject({
      handler: z.string(),
      timeout: z.optional(z.number()),
      events: z._default(z.array(EventSchema), []),
      environment: z.optional(z.record(z.string(), z.string())),
    }),
  ),
});

/** Parses `rate(5 minutes)` into milliseconds; cron expressions are not run locally. */
export function parseRate(expression: string): number {
  const match = /^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (!match)
    throw new Error(`Unsupported schedule expression '${expression}': use rate(N minutes|hours|days).`);
  const unit = match[2]?.replace(/s$/, '') as 'minute' | 'hour' | 'day';
  const ms = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }[unit];
  return Number(match[1]) * ms;
}

/** The logical queue id an `sqs` event names (`Fn::GetAtt: [WorkQueue, Arn]`). */
function queueId(event: unknown): string {
  const arn = typeof event === 'string' ? event : (event as { arn: unknown }).arn;
  const getAtt = (arn as { 'Fn::GetAtt'?: unknown[] } | undefined)?.['Fn::GetAtt'];
  if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') return getAtt[0];
  throw new Error(
    `sqs events must name their queue as { arn: { Fn::GetAtt: [QueueId, Arn] } }, got ${JSON.stringify(arn)}`,
  );
}

export function parseServerlessSpec(text: string): ServerlessSpec {
  const file = FileSchema.parse(parse(text));
  const functions = Object.entries(file.functions).map(([name, fn]): FunctionSpec => {
    const routes: HttpRoute[] = [];
    const schedules: FunctionSpec['schedules'] = [];
    const queues: string[] = [];
    for (const event of fn.events) {
      if (event.httpApi !== undefined) {
        if (typeof event.httpApi === 'string') {
          const [method = '', path = ''] = event.httpApi.split(/\s+/);
          routes.push({ method: method.toUpperCase(), path });
        } else {
          const { authorizer } = event.httpApi;
          routes.push({
            method: event.httpApi.method.toUpperCase(),
            path: event.httpApi.path,
            ...(authorizer
              ? { authorizer: typeof authorizer === 'string' ? authorizer : authorizer.name }
              : {}),
          });
        }
      }
      if (event.schedule !== undefined) {
        const rates = typeof event.schedule === 'string' ? [event.schedule] : [event.schedule.rate].flat();
        const enabled = typeof event.schedule === 'string' ? true : (event.schedule.enabled ?? true);
        for (const expression of rates)
          schedules.push({ expression, rateMs: parseRate(expression), enabled });
      }
      if (event.sqs !== undefined) queues.push(queueId(event.sqs));
    }
    return {
      name,
      handler: fn.handler,
      timeoutSeconds: fn.timeout ?? file.provider.timeout ?? 6,
      routes,
      schedules,
      queues,
      environment: fn.environment ?? {},
    };
  });
  const authorizers: Record<string, AuthorizerSpec> = {};
  for (const [name, a] of Object.entries(file.provider.httpApi?.authorizers ?? {})) {
    const sources = [a.identitySource ?? []].flat();
    const identityHeaders = sources.map((source) => {
      const header = /^\$request\.header\.([\w-]+)$/.exec(source)?.[1];
      if (!header)
        throw new Error(
          `Authorizer ${name}: only $request.header.* identity sources are supported, got ${source}.`,
        );
      return header.toLowerCase();
    });
    if (!functions.some((fn) => fn.name === a.functionName)) {
      throw new Error(
        `Authorizer ${name} names function ${a.functionName}, which serverless.yml does not declare.`,
      );
    }
    authorizers[name] = {
      name,
      functionName: a.functionName,
      identityHeaders,
      enableSimpleResponses: a.enableSimpleResponses ?? false,
    };
  }
  for (const fn of functions) {
    for (const route of fn.routes) {
      if (route.authorizer && !authorizers[route.authorizer]) {
        throw new Error(
          `Route ${route.method} ${route.path} names authorizer ${route.authorizer}, which provider.httpApi.authorizers does not declare.`,
        );
      }
    }
  }
  const cors = corsSpec(file.provider.httpApi?.cors);
  return { service: file.service, functions, authorizers, ...(cors ? { cors } : {}) };
}

export async function loadServerlessSpec(path: string): Promise<ServerlessSpec> {
  return parseServerlessSpec(await readFile(path, 'utf8'));
}

/** `functions/http/health.handler` → module path `functions/http/health.ts` and export `handler`. */
export function handlerLocation(handler: string): { module: string; exportName: string } {
  const dot = handler.lastIndexOf('.');
  return { module: `${handler.slice(0, dot)}.ts`, exportName: handler.slice(dot + 1) };
}
