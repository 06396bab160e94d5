import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadServerlessSpec, type ServerlessSpec } from '../../../scripts/local-cloud/serverless-spec.ts';
import { ROOT } from '../../support/processes.ts';

/**
 * The stack `npm run package` writes, read from the template itself (osls and serverless-esbuild,
 * offline, as a deployment packages it): about 10 s on an idle 2-core machine, 30 s on a busy one.
 */

interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
}

/** Past this the stack has lost the room to grow it should keep; CloudFormation refuses more than 500. */
const RESOURCE_BUDGET = 300;
const STAGE = 'test';

let resources: Record<string, Resource>;
let zips: string[];
let printed: string;
let spec: ServerlessSpec;

beforeAll(async () => {
  const out = mkdtempSync(join(tmpdir(), 'volsnap-package-test-'));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['scripts/package.js', STAGE, 'eu-west-1', '--out', out],
    { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
  );
  printed = stdout;
  resources = JSON.parse(
    readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'),
  ).Resources;
  zips = readdirSync(out).filter((f) => f.endsWith('.zip'));
  spec = await loadServerlessSpec(join(ROOT, 'serverless.yml'));
}, 240_000);

describe('the packaged stack (npm run package)', () => {
  it(`has at most ${RESOURCE_BUDGET} resources, and says how many`, () => {
    const count = Object.keys(resources).length;
    expect(count).toBeLessThanOrEqual(RESOURCE_BUDGET);
    expect(printed).toContain(`${count} resources`);
  });

  it('writes one zip per function of serverless.yml, each printed with its size', () => {
    expect(zips.sort()).toEqual(spec.functions.map((fn) => `${fn.name}.zip`).sort());
    for (const zip of zips) expect(printed).toMatch(new RegExp(`${zip}\\s+\\d+\\.\\d KiB`));
  });

  it('sends every route of serverless.yml, and nothing else, to the function that declares it', () => {
    const functionOf = (integrationId: string): string => {
      const uri = resources[integrationId]?.Properties?.IntegrationUri as { 'Fn::GetAtt': [string, string] };
      const name = resources[uri['Fn::GetAtt'][0]]?.Properties?.FunctionName as string;
      return name.replace(`${spec.service}-${STAGE}-`, '');
    };
    const served = Object.values(resources)
      .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
      .map((r) => {
        const target = r.Properties?.Target as { 'Fn::Join': [string, [string, { Ref: string }]] };
        const guarded = r.Properties?.AuthorizationType === 'CUSTOM' ? ' (authorized)' : '';
        return `${r.Properties?.RouteKey} -> ${functionOf(target['Fn::Join'][1][1].Ref)}${guarded}`;
      });
    const declared = spec.functions.flatMap((fn) =>
      fn.routes.map((r) => `${r.method} ${r.path} -> ${fn.name}${r.authorizer ? ' (authorized)' : ''}`),
    );
    expect(served.sort()).toEqual(declared.sort());
  });
});
