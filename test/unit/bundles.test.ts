import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { handlerLocation, loadServerlessSpec } from '../../scripts/local-cloud/serverless-spec.ts';
import { httpEvent, lambdaContext } from '../support/events.ts';
import { ROOT } from '../support/processes.ts';

/** The esbuild options serverless.yml gives serverless-esbuild, as esbuild's own API takes them. */
function esbuildOptions() {
  const { custom } = parse(readFileSync(join(ROOT, 'serverless.yml'), 'utf8'));
  const { exclude = [], outputFileExtension, ...options } = custom.esbuild;
  return { options: { ...options, external: exclude as string[] }, extension: outputFileExtension as string };
}

describe('Lambda bundles', () => {
  it('build from serverless.yml settings into one self-contained module per function that answers', {
    timeout: 60_000,
  }, async () => {
    const spec = await loadServerlessSpec(join(ROOT, 'serverless.yml'));
    const { options, extension } = esbuildOptions();
    const out = mkdtempSync(join(tmpdir(), 'volsnap-bundle-'));
    // Functions sharing a module share its bundle: build each module once, check every export.
    const modules = new Map<string, string[]>();
    for (const fn of spec.functions) {
      const { module, exportName } = handlerLocation(fn.handler);
      modules.set(module, [...(modules.get(module) ?? []), exportName]);
    }
    for (const [module, exportNames] of modules) {
      const outfile = join(out, `${module.replaceAll('/', '_')}${extension}`);
      await build({ ...options, entryPoints: [join(ROOT, module)], outfile, logLevel: 'silent' });
      // Small bundles keep cold starts short; the AWS SDK comes with the runtime.
      expect(statSync(outfile).size, module).toBeLessThan(1024 * 1024);
      const loaded = await import(pathToFileURL(outfile).href);
      for (const name of exportNames) expect(typeof loaded[name], `${module}.${name}`).toBe('function');
    }
  });

  it('runs the health handler from its bundle with only the deployment environment', {
    timeout: 30_000,
  }, async () => {
    const { options, extension } = esbuildOptions();
    const outfile = join(mkdtempSync(join(tmpdir(), 'volsnap-bundle-')), `health${extension}`);
    await build({
      ...options,
      entryPoints: [join(ROOT, 'functions/http/health.ts')],
      outfile,
      logLevel: 'silent',
    });
    Object.assign(process.env, {
      VOLSNAP_REGION: 'ap-south-1',
      VOLSNAP_BUCKET: 'bucket-x',
      VOLSNAP_TABLE: 'table-x',
    });
    const { handler } = await import(pathToFileURL(outfile).href);
    const result = await handler(httpEvent(), lambdaContext);
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toMatchObject({ region: 'ap-south-1', status: 'ok' });
  });
});
