import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Context } from 'aws-lambda';
import type { Bundles } from './bundles.ts';
import { type FunctionSpec, handlerLocation } from './serverless-spec.ts';

type Handler = (event: unknown, context: Context) => Promise<unknown>;

/** Thrown when an invocation runs past the function's timeout, as Lambda would end it. */
export class InvocationTimeout extends Error {
  constructor(fn: string, seconds: number) {
    super(`Task timed out after ${seconds} seconds (function ${fn})`);
    this.name = 'InvocationTimeout';
  }
}

/**
 * Invokes the handlers of serverless.yml in this process the way Lambda does: the module is loaded
 * once, on the function's first call (a cold start, then a warm container), each call gets a Context
 * with a request id and a deadline, and a call that outlives the function's timeout fails.
 *
 * Given `bundles`, it runs the packaged bundles, each function as its own instance of its bundle (its
 * own module state, as separate Lambda containers have, even where functions share a handler file);
 * without, the TypeScript sources under `root`, one instance per module.
 */
export class LambdaRunner {
  readonly #modules = new Map<string, Promise<Handler>>();

  constructor(
    private readonly root: string,
    private readonly region: string,
    private readonly bundles?: Pick<Bundles, 'dir' | 'extension'>,
  ) {}

  /** The module a function's handler is in, and its export. */
  #location(fn: FunctionSpec): { url: string; module: string; exportName: string } {
    const { module, exportName } = handlerLocation(fn.handler);
    if (!this.bundles) return { url: pathToFileURL(resolve(this.root, module)).href, module, exportName };
    const file = resolve(this.bundles.dir, `${module.replace(/\.ts$/, '')}${this.bundles.extension}`);
    // ES modules are instances per URL: the query makes one per function.
    const url = `${pathToFileURL(file).href}?function=${encodeURIComponent(fn.name)}`;
    return { url, module: file, exportName };
  }

  #load(fn: FunctionSpec): Promise<Handler> {
    let loaded = this.#modules.get(fn.name);
    if (!loaded) {
      const { url, module, exportName } = this.#location(fn);
      loaded = import(url).then((mod) => {
        const handler = mod[exportName];
        if (typeof handler !== 'function')
          throw new Error(`${fn.handler}: ${module} exports no function '${exportName}'.`);
        return handler as Handler;
      });
      this.#modules.set(fn.name, loaded);
    }
    return loaded;
  }

  async invoke(fn: FunctionSpec, event: unknown, requestId: string = randomUUID()): Promise<unknown> {
    const handler = await this.#load(fn);
    const deadline = Date.now() + fn.timeoutSeconds * 1000;
    const context: Context = {
      callbackWaitsForEmptyEventLoop: false,
      functionName: fn.name,
      functionVersion: '$LATEST',
      invokedFunctionArn: `arn:aws:lambda:${this.region}:000000000000:function:volsnap-local-${fn.name}`,
      memoryLimitInMB: '1024',
      awsRequestId: requestId,
      logGroupName: `/aws/lambda/volsnap-local-${fn.name}`,
      logStreamName: 'local',
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      done: () => {},
      fail: () => {},
      succeed: () => {},
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new InvocationTimeout(fn.name, fn.timeoutSeconds)),
        fn.timeoutSeconds * 1000,
      );
    });
    try {
      return await Promise.race([handler(event, context), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
