import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { CONSOLE_ASSETS } from '../../console/assets.generated.ts';
import type { ConsoleAsset } from '../../console/build.ts';
import type { RuntimeConfig } from '../../lib/config/runtime.ts';
import { VolsnapError } from '../../lib/core/shared/errors.ts';
import { errorResponse } from '../../lib/http/stack.ts';
import { runtime } from '../../lib/root.ts';

/** The console's routes (serverless.yml) and the file each answers. */
const FILES: Record<string, keyof typeof CONSOLE_ASSETS> = {
  'GET /console': 'index.html',
  'GET /console/app.js': 'app.js',
  'GET /console/app.css': 'app.css',
};

/**
 * The web console: static files bundled into this function (console/), and `config.json`, the
 * regions the console may switch to. No API key: the page asks for one and calls the public API with
 * it. Every answer carries a Content-Security-Policy that allows scripts and styles from this origin
 * only, no inline script, and requests to this region's and the other regions' APIs only.
 */
export const handler = Object.assign(
  async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> =>
    consoleAnswer(event, runtime().config),
  // The routes it answers, for the check against serverless.yml (as the area routers name theirs).
  { routeKeys: [...Object.keys(FILES), 'GET /console/config.json'] as readonly string[] },
);

/** The answer to a request of a console route, in the deployment `config` describes. */
export function consoleAnswer(
  event: APIGatewayProxyEventV2,
  config: RuntimeConfig,
): APIGatewayProxyStructuredResultV2 {
  const requestId = event.requestContext.requestId;
  const apis = config.registry.names().map((name) => ({ name, api: config.registry.get(name).api }));
  const headers = securityHeaders(apis.flatMap((r) => (r.api ? [new URL(r.api).origin] : [])));
  if (event.routeKey === 'GET /console/config.json') {
    // Regions the console can reach: this one (its own origin), and those whose API the registry names.
    const reachable = apis.filter((r) => r.api !== undefined || r.name === config.region.name);
    const body = { region: config.region.name, regions: reachable };
    return {
      statusCode: 200,
      headers: { ...headers, 'content-type': 'application/json', 'cache-control': 'no-cache' },
      body: JSON.stringify(body),
    };
  }
  const name = FILES[event.routeKey];
  if (!name)
    return errorResponse(new VolsnapError('route.notFound', `No route ${event.routeKey}.`), requestId);
  return fileResponse(CONSOLE_ASSETS[name], event.headers['if-none-match'], headers);
}

function fileResponse(
  file: ConsoleAsset,
  ifNoneMatch: string | undefined,
  headers: Record<string, string>,
): APIGatewayProxyStructuredResultV2 {
  // Revalidated on every load (one small request answered 304), so a deployment shows at once.
  const caching = { etag: file.etag, 'cache-control': 'no-cache' };
  if (ifNoneMatch === file.etag) return { statusCode: 304, headers: { ...headers, ...caching } };
  return {
    statusCode: 200,
    headers: { ...headers, ...caching, 'content-type': file.contentType },
    body: file.body,
  };
}

/** Headers of every console answer: what the page may load and call, and where it may not be framed. */
export function securityHeaders(apiOrigins: string[]): Record<string, string> {
  const connect = ["'self'", ...new Set(apiOrigins)].join(' ');
  return {
    'content-security-policy': [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      // `data:` for the page's empty icon (index.html), which spares a request for /favicon.ico.
      "img-src 'self' data:",
      `connect-src ${connect}`,
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  };
}
