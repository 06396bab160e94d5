// `npm run cold-start [-- --runs N]`: for each Lambda bundle of serverless.yml, its size (and the
// size of its zip) and its cold start on Node 22, the runtime's major: the import of the bundle in a
// fresh process, then the first answer to an event. Each bundle is measured as deployed (the AWS SDK
// inside) and with the SDK left out (loaded from node_modules, as it would be from the runtime).
// No AWS: the endpoints point at a closed port, so a function that reaches out answers an error fast.
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { deflateRawSync } from 'node:zlib';
import { type Bundles, buildBundles } from './local-cloud/bundles.ts';
import { lambdaNodePath } from './local-cloud/processes.ts';
import {
  type FunctionSpec,
  handlerLocation,
  loadServerlessSpec,
  type ServerlessSpec,
} from './local-cloud/serverless-spec.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SPEC = join(ROOT, 'serverless.yml');
const DRIVER = join(ROOT, 'scripts/cold-start-driver.mjs');
const CLOSED = 'http://127.0.0.1:9';

/** What a function has in its environment on AWS (provider.environment), pointing nowhere. */
const ENVIRONMENT: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  NODE_OPTIONS: '--enable-source-maps',
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'cold',
  AWS_SECRET_ACCESS_KEY: 'cold',
  AWS_MAX_ATTEMPTS: '1',
  VOLSNAP_STAGE: 'cold',
  VOLSNAP_REGION: 'eu-west-1',
  VOLSNAP_TABLE: 'volsnap-cold',
  VOLSNAP_BUCKET: 'volsnap-cold',
  VOLSNAP_QUEUE_URL: `${CLOSED}/000000000000/volsnap-cold`,
  VOLSNAP_S3_ENDPOINT: CLOSED,
  VOLSNAP_DYNAMODB_ENDPOINT: CLOSED,
  VOLSNAP_SQS_ENDPOINT: CLOSED,
  VOLSNAP_S3_FORCE_PATH_STYLE: 'true',
};

const CALLER = {
  accountId: 'acct-0000000000000000',
  userName: 'cold',
  keyId: 'key-0000000000000000',
  role: 'owner',
  permissions: [],
  operator: false,
};

/** A minimal event of the function's kind: its first route, its queue, its schedule, or its authorizer's request. */
function eventFor(fn: FunctionSpec, spec: ServerlessSpec): unknown {
  const route = fn.routes[0];
  if (route) {
    const rawPath = route.path.replace(/\{[^}]+\}/g, 'x');
    const params = [...route.path.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => [m[1], 'x']);
    const routeKey = `${route.method} ${route.path}`;
    return {
      version: '2.0',
      routeKey,
      rawPath,
      rawQueryString: '',
      headers: { 'content-type': 'application/json' },
      isBase64Encoded: false,
      ...(params.length ? { pathParameters: Object.fromEntries(params) } : {}),
      ...(['POST', 'PUT', 'PATCH'].includes(route.method) ? { body: '{}' } : {}),
      requestContext: {
        http: { method: route.method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' },
        requestId: 'cold-start',
        routeKey,
        timeEpoch: Date.now(),
        // As the authorizer hands it over: the route does its work (and meets the closed port).
        ...(route.authorizer ? { authorizer: { lambda: { caller: JSON.stringify(CALLER) } } } : {}),
      },
    };
  }
  if (fn.queues.length > 0) {
    const body = JSON.stringify({
      kind: 'snapshot.verifyPart',
      snapshotId: 'snap-0000000000000000',
      part: 0,
    });
    return {
      Records: [{ messageId: 'cold', body, attributes: { ApproximateReceiveCount: '1' } }],
    };
  }
  if (fn.schedules.length > 0) return { id: 'cold', 'detail-type': 'Scheduled Event', detail: {} };
  if (Object.values(spec.authorizers).some((a) => a.functionName === fn.name))
    return { headers: { authorization: 'Bearer vsk_key-0000000000000000_cold' }, requestContext: {} };
  return {};
}

interface Measured {
  importMs: number;
  answerMs: number;
  answer: string;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

async function measure(node: string, file: string, exportName: string, event: unknown, runs: number) {
  const samples: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    const { stdout } = await promisify(execFile)(node, [DRIVER, file, exportName, JSON.stringify(event)], {
      env: ENVIRONMENT,
    });
    samples.push(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Measured);
  }
  return {
    importMs: median(samples.map((s) => s.importMs)),
    answerMs: median(samples.map((s) => s.answerMs)),
    answer: samples[0]?.answer ?? '',
  };
}

/**
 * A bundle's bytes, and its zip's: the bundle and its source map, which the package holds, deflated
 * at level 1 (within 0.1% of the zips `npm run package` writes; measured on health.zip).
 */
function sizes(file: string): { bundle: number; zip: number } {
  const bundle = statSync(file).size;
  const parts = [file, `${file}.map`].filter((f) => statSync(f, { throwIfNoEntry: false }));
  const zip = parts.reduce((sum, f) => sum + deflateRawSync(readFileSync(f), { level: 1 }).length + 100, 22);
  return { bundle, zip };
}

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Math.max(1, Number(values.runs) || 3);
const node = lambdaNodePath();
const { stdout: nodeVersion } = await promisify(execFile)(node, ['--version']);
const spec = await loadServerlessSpec(SPEC);
const deployed = await buildBundles({ specPath: SPEC, specRoot: ROOT });
const withoutSdk = await buildBundles({
  specPath: SPEC,
  specRoot: ROOT,
  exclude: ['@aws-sdk/*', 'zstd-napi'],
});
const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
const ms = (value: number) => `${value.toFixed(0)} ms`;
const fileOf = (bundles: Bundles, module: string) => join(bundles.dir, `${module}${bundles.extension}`);

console.log(
  `Cold starts on Node ${nodeVersion.trim()} (median of ${runs} fresh processes each), ${new Date().toISOString().slice(0, 10)}:`,
);
console.log('');
console.log(
  '| bundle | function | answer | bundle | zip | import | first answer | without SDK: bundle | zip | import | first answer |',
);
console.log('|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|');
for (const module of deployed.modules) {
  const fn = spec.functions.find((f) => handlerLocation(f.handler).module === `${module}.ts`);
  if (!fn) continue;
  const { exportName } = handlerLocation(fn.handler);
  const event = eventFor(fn, spec);
  const row: string[] = [module.replace(/^functions\//, ''), fn.name];
  for (const bundles of [deployed, withoutSdk]) {
    const file = fileOf(bundles, module);
    const size = sizes(file);
    const time = await measure(node, file, exportName, event, runs);
    if (bundles === deployed) row.push(time.answer);
    row.push(kib(size.bundle), kib(size.zip), ms(time.importMs), ms(time.answerMs));
  }
  console.log(`| ${row.join(' | ')} |`);
}
