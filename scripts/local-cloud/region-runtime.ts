import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  ScheduledEvent,
  SQSBatchResponse,
  SQSEvent,
} from 'aws-lambda';
import {
  type CompiledRoute,
  compileRoute,
  corsPreflight,
  corsResponseHeaders,
  matchRoute,
  toApiGatewayEvent,
  writeResult,
} from './apigw.ts';
import type { CallRecorder } from './aws-calls.ts';
import { InvocationTimeout, LambdaRunner } from './lambda.ts';
import { nextRunDelayMs, ScheduleRunsFile } from './schedules.ts';
import type { FunctionSpec, ServerlessSpec } from './serverless-spec.ts';
import { LocalQueues } from './sqs-dispatcher.ts';

/**
 * Messages of one queue delivered at once at most (see QueueOptions.maxConcurrency): the work a
 * region's process does beside its API, bounded so that a large copy or import, split in many
 * parts, runs them a few at a time instead of holding every part's buffers at once.
 */
export const LOCAL_DELIVERY_CONCURRENCY = 4;

export interface RegionRuntimeOptions {
  region: string;
  /** Directory handler paths in the spec are relative to. */
  root: string;
  /** Run these packaged bundles (one module instance per function) rather than the sources under `root`. */
  bundles?: { dir: string; extension: string };
  spec: ServerlessSpec;
  apiPort: number;
  queuePort: number;
  /** Queue names by the logical id serverless.yml gives them (`WorkQueue` → `volsnap-local-eu-west-1-work`). */
  queueNames: Record<string, string>;
  /** Run the schedules on their rates (default true); off, they run only when invoked. */
  schedules?: boolean;
  /**
   * Where when each schedule last fired is kept (./schedules.ts), so that the rates go on across
   * restarts of the region's process, as EventBridge's do across containers; without it, each
   * process starts its rates over.
   */
  scheduleRunsFile?: string;
  /** Record the calls the regions' roles make to the queues (./aws-calls.ts). */
  recording?: { roles: readonly string[]; recorder: CallRecorder };
  /**
   * Tests only: a file of work-message patterns (a JSON array of objects, each field to match, e.g.
   * `[{"kind":"export.part","part":0}]`) read at each delivery. The first delivery of each matching
   * message is lost as if its worker died on receiving it: the function is not run and the queue
   * does not deliver it again (SQS would, after the 16-minute visibility timeout), so only the
   * reaper's sending it again can finish the work.
   */
  loseWorkFile?: string;
  log?: (line: string) => void;
}

/** What the runtime serves, for the check that it matches serverless.yml. */
export interface ServedSurface {
  routes: string[];
  schedules: string[];
  queues: string[];
}

/**
 * One region of the local cloud: the functions of serverless.yml behind an HTTP API (API Gateway v2
 * events), their schedules on their rates, and their queues behind {@link LocalQueues}.
 */
export class RegionRuntime {
  readonly runner: LambdaRunner;
  readonly queues: LocalQueues;
  readonly #routes: CompiledRoute<FunctionSpec>[];
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #running = new Set<string>();
  readonly #lostBodies = new Set<string>();
  #server: Server | undefined;
  #stopped = false;

  constructor(private readonly options: RegionRuntimeOptions) {
    this.runner = new LambdaRunner(options.root, options.region, options.bundles);
    this.queues = new LocalQueues(options.recording);
    this.#routes = options.spec.functions.flatMap((fn) => fn.routes.map((route) => compileRoute(route, fn)));
  }

  get surface(): ServedSurface {
    const fns = this.options.spec.functions;
    return {
      routes: this.#routes.map((r) => `${r.routeKey} -> ${r.target.name}`).sort(),
      schedules: fns
        .flatMap((fn) => fn.schedules.filter((s) => s.enabled).map((s) => `${fn.name} ${s.expression}`))
        .sort(),
      queues: fns.flatMap((fn) => fn.queues.map((q) => `${q} -> ${fn.name}`)).sort(),
    };
  }

  async start(): Promise<{ apiPort: number; queuePort: number }> {
    for (const fn of this.options.spec.functions) {
      for (const logicalId of fn.queues) {
        const name = this.options.queueNames[logicalId];
        if (!name)
          throw new Error(
            `Function ${fn.name} reads queue ${logicalId}, which the local cloud does not define.`,
          );
        this.queues.add({
          name,
          region: this.options.region,
          maxReceiveCount: 3,
          retryDelayMs: 1000,
          maxConcurrency: LOCAL_DELIVERY_CONCURRENCY,
          consumer: async (event) => {
            if (this.#lost(event)) return [];
            const result = (await this.runner.invoke(fn, event)) as SQSBatchResponse | undefined;
            return (result?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
          },
          onDeadLetter: (message) =>
            this.#log({
              level: 'error',
              message: 'message dead-lettered',
              queue: name,
              messageId: message.id,
            }),
        });
      }
      for (const schedule of fn.schedules.filter((s) => s.enabled && this.options.schedules !== false))
        this.#startSchedule(fn, schedule);
    }
    const queuePort = await this.queues.listen(this.options.queuePort);
    this.#server = createServer((req, res) => {
      // One failed request (a client gone mid-body, a broken response) must not take the region down.
      this.#serve(req, res).catch((error) => {
        this.#log({ level: 'error', message: 'request failed in the gateway', error: String(error) });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end();
      });
    });
    this.#server.keepAliveTimeout = 5000;
    const apiPort = await new Promise<number>((resolve, reject) => {
      this.#server?.once('error', reject);
      this.#server?.listen(this.options.apiPort, '127.0.0.1', () => {
        const address = this.#server?.address();
        resolve(typeof address === 'object' && address ? address.port : this.options.apiPort);
      });
    });
    return { apiPort, queuePort };
  }

  /**
   * Fires `fn` on the schedule's rate: first when it is due after its last firing (at once if that
   * is past: the previous process was down or killed when it was due), then every rate.
   */
  #startSchedule(fn: FunctionSpec, schedule: FunctionSpec['schedules'][number]): void {
    const key = `${fn.name} ${schedule.expression}`;
    const file = this.options.scheduleRunsFile
      ? new ScheduleRunsFile(this.options.scheduleRunsFile)
      : undefined;
    const lastRun = file?.read()[key];
    // A rule seen for the first time is made now: it first fires one rate later.
    if (file && lastRun === undefined) file.record(key, Date.now());
    const fire = () => {
      try {
        file?.record(key, Date.now());
      } catch (error) {
        this.#log({
          level: 'error',
          message: 'could not record a schedule run',
          schedule: key,
          error: String(error),
        });
      }
      void this.runSchedule(fn);
    };
    const first = setTimeout(
      () => {
        fire();
        if (!this.#stopped) this.#timers.push(setInterval(fire, schedule.rateMs));
      },
      nextRunDelayMs(lastRun, schedule.rateMs, Date.now()),
    );
    this.#timers.push(first);
  }

  /** Whether the test's fault file says to lose this delivery (see `loseWorkFile`); logged when so. */
  #lost(event: SQSEvent): boolean {
    const file = this.options.loseWorkFile;
    const body = event.Records[0]?.body;
    if (!file || body === undefined || event.Records.length !== 1 || this.#lostBodies.has(body)) return false;
    let patterns: Record<string, unknown>[];
    try {
      patterns = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      return false;
    }
    const message = JSON.parse(body) as Record<string, unknown>;
    if (!patterns.some((p) => Object.entries(p).every(([field, value]) => message[field] === value)))
      return false;
    this.#lostBodies.add(body);
    this.#log({ level: 'error', message: 'lost a delivered message (test fault: its worker died)', body });
    return true;
  }

  /** Runs a scheduled function now, unless its previous run is still going (EventBridge would not wait; we do not pile up). */
  async runSchedule(fn: FunctionSpec): Promise<void> {
    if (this.#running.has(fn.name)) return;
    this.#running.add(fn.name);
    const event: ScheduledEvent = {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '000000000000',
      time: new Date().toISOString(),
      region: this.options.region,
      resources: [`arn:aws:events:${this.options.region}:000000000000:rule/volsnap-local-${fn.name}`],
      detail: {},
    };
    try {
      await this.runner.invoke(fn, event);
    } catch (error) {
      this.#log({ level: 'error', message: 'scheduled run failed', function: fn.name, error: String(error) });
    } finally {
      this.#running.delete(fn.name);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    await this.queues.close();
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const started = Date.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const method = req.method ?? 'GET';
    // CORS as API Gateway applies `provider.httpApi.cors`: preflights answered before any route,
    // and its headers on every answer to an allowed origin.
    const preflight = corsPreflight(this.options.spec.cors, method, req.headers);
    if (preflight) {
      res.writeHead(preflight.status, preflight.headers);
      res.end();
      return;
    }
    const cors = corsResponseHeaders(this.options.spec.cors, req.headers.origin);
    for (const [name, value] of Object.entries(cors)) res.setHeader(name, value);
    const match = matchRoute(this.#routes, method, path);
    if (match.kind !== 'match') {
      // API Gateway's own answers for unknown routes, in volsnap's error shape.
      const notFound = match.kind === 'notFound';
      const status = notFound ? 404 : 405;
      res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': requestId });
      res.end(
        JSON.stringify({
          error: notFound ? 'route.notFound' : 'route.methodNotAllowed',
          message: notFound
            ? `No route ${method} ${path}.`
            : `${method} is not allowed on ${path}; use ${match.kind === 'methodNotAllowed' ? match.allowed.join(', ') : ''}.`,
          requestId,
        }),
      );
      return;
    }
    const event = toApiGatewayEvent(
      req,
      Buffer.concat(chunks),
      { routeKey: match.route.routeKey, pathParameters: match.pathParameters },
      requestId,
      new Date(),
    );
    try {
      const authorizerName = match.route.route.authorizer;
      if (authorizerName) {
        const verdict = await this.#authorize(authorizerName, event);
        if (verdict.kind !== 'allow') {
          // API Gateway's own answers: 401 without the identity source, 403 when the authorizer says no.
          const status = verdict.kind === 'missingIdentity' ? 401 : 403;
          res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': requestId });
          res.end(JSON.stringify({ message: status === 401 ? 'Unauthorized' : 'Forbidden' }));
          return;
        }
        (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: verdict.context };
      }
      const result = (await this.runner.invoke(
        match.route.target,
        event,
        requestId,
      )) as APIGatewayProxyStructuredResultV2;
      writeResult(res, result);
    } catch (error) {
      // What API Gateway answers when the integration fails or times out.
      const timeout = error instanceof InvocationTimeout;
      if (res.headersSent) throw error;
      this.#log({
        level: 'error',
        message: 'invocation failed',
        function: match.route.target.name,
        requestId,
        error: String(error),
      });
      res.writeHead(timeout ? 503 : 500, { 'content-type': 'application/json', 'x-request-id': requestId });
      res.end(JSON.stringify({ message: timeout ? 'Service Unavailable' : 'Internal Server Error' }));
    } finally {
      this.#log({
        level: 'info',
        message: 'request',
        method,
        path,
        status: res.statusCode,
        ms: Date.now() - started,
        requestId,
      });
    }
  }

  /** Runs a route's Lambda authorizer as API Gateway does (payload 2.0, simple or IAM-policy responses). */
  async #authorize(
    name: string,
    event: APIGatewayProxyEventV2,
  ): Promise<{ kind: 'allow'; context: Record<string, unknown> } | { kind: 'deny' | 'missingIdentity' }> {
    const spec = this.options.spec.authorizers[name];
    const fn = this.options.spec.functions.find((f) => f.name === spec?.functionName);
    if (!spec || !fn) throw new Error(`Authorizer ${name} is not declared`);
    const identity = spec.identityHeaders.map((h) => event.headers[h]);
    if (identity.some((v) => v === undefined || v === '')) return { kind: 'missingIdentity' };
    const request = {
      version: '2.0',
      type: 'REQUEST',
      routeArn: `arn:aws:execute-api:${this.options.region}:000000000000:local/$default/${event.requestContext.http.method}${event.rawPath}`,
      identitySource: identity,
      routeKey: event.routeKey,
      rawPath: event.rawPath,
      rawQueryString: event.rawQueryString,
      cookies: event.cookies,
      headers: event.headers,
      queryStringParameters: event.queryStringParameters,
      requestContext: event.requestContext,
      pathParameters: event.pathParameters,
      stageVariables: event.stageVariables,
    };
    const result = (await this.runner.invoke(fn, request, event.requestContext.requestId)) as {
      isAuthorized?: boolean;
      context?: Record<string, unknown>;
      policyDocument?: { Statement?: { Effect?: string }[] };
    };
    const allowed = spec.enableSimpleResponses
      ? result?.isAuthorized === true
      : (result?.policyDocument?.Statement ?? []).some((st) => st.Effect === 'Allow') &&
        !(result?.policyDocument?.Statement ?? []).some((st) => st.Effect === 'Deny');
    return allowed ? { kind: 'allow', context: result.context ?? {} } : { kind: 'deny' };
  }

  #log(fields: Record<string, unknown>): void {
    this.options.log?.(JSON.stringify({ region: this.options.region, ...fields }));
  }
}
