import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyStructuredResultV2, ScheduledEvent, SQSBatchResponse } from 'aws-lambda';
import { type CompiledRoute, compileRoute, matchRoute, toApiGatewayEvent, writeResult } from './apigw.ts';
import { InvocationTimeout, LambdaRunner } from './lambda.ts';
import type { FunctionSpec, ServerlessSpec } from './serverless-spec.ts';
import { LocalQueues } from './sqs-dispatcher.ts';

export interface RegionRuntimeOptions {
  region: string;
  /** Directory handler paths in the spec are relative to. */
  root: string;
  spec: ServerlessSpec;
  apiPort: number;
  queuePort: number;
  /** Queue names by the logical id serverless.yml gives them (`WorkQueue` → `volsnap-local-eu-west-1-work`). */
  queueNames: Record<string, string>;
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
  readonly queues = new LocalQueues();
  readonly #routes: CompiledRoute<FunctionSpec>[];
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #running = new Set<string>();
  #server: Server | undefined;

  constructor(private readonly options: RegionRuntimeOptions) {
    this.runner = new LambdaRunner(options.root, options.region);
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
          consumer: async (event) => {
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
      for (const schedule of fn.schedules.filter((s) => s.enabled)) {
        this.#timers.push(setInterval(() => void this.runSchedule(fn), schedule.rateMs));
      }
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

  #log(fields: Record<string, unknown>): void {
    this.options.log?.(JSON.stringify({ region: this.options.region, ...fields }));
  }
}
