import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { corsPreflight, corsResponseHeaders } from '../../../scripts/local-cloud/apigw.ts';
import {
  type CorsSpec,
  loadServerlessSpec,
  parseServerlessSpec,
} from '../../../scripts/local-cloud/serverless-spec.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cors: CorsSpec = {
  allowedOrigins: ['http://console.example'],
  allowedHeaders: ['Authorization', 'Content-Type'],
  allowedMethods: ['GET', 'DELETE'],
  exposedResponseHeaders: ['x-request-id'],
  maxAge: 600,
};
const preflight = (headers: Record<string, string>) => corsPreflight(cors, 'OPTIONS', headers);

describe('the local cloud’s CORS, as API Gateway applies provider.httpApi.cors', () => {
  it('reads serverless.yml’s: any origin, the Authorization header, the API’s methods', async () => {
    const spec = await loadServerlessSpec(`${root}serverless.yml`);
    expect(spec.cors).toMatchObject({
      allowedOrigins: ['*'],
      allowedHeaders: ['Authorization', 'Content-Type'],
    });
    expect(spec.cors?.allowedMethods).toEqual(
      expect.arrayContaining(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
    );
  });

  it('answers a preflight of an allowed origin, method and headers itself', () => {
    expect(
      preflight({
        origin: 'http://console.example',
        'access-control-request-method': 'DELETE',
        'access-control-request-headers': 'authorization',
      }),
    ).toEqual({
      status: 204,
      headers: {
        'access-control-allow-origin': 'http://console.example',
        'access-control-allow-methods': 'GET,DELETE',
        'access-control-allow-headers': 'Authorization,Content-Type',
        'access-control-max-age': '600',
        vary: 'Origin',
      },
    });
  });

  it('allows nothing to another origin, method or header', () => {
    const request = { origin: 'http://console.example', 'access-control-request-method': 'GET' };
    expect(preflight({ ...request, origin: 'http://elsewhere.example' })).toEqual({
      status: 204,
      headers: {},
    });
    expect(preflight({ ...request, 'access-control-request-method': 'PUT' })).toEqual({
      status: 204,
      headers: {},
    });
    expect(preflight({ ...request, 'access-control-request-headers': 'x-other' })).toEqual({
      status: 204,
      headers: {},
    });
  });

  it('leaves other requests to the routes, and adds its headers to answers to allowed origins only', () => {
    expect(corsPreflight(cors, 'OPTIONS', {})).toBeUndefined();
    expect(corsPreflight(cors, 'GET', { origin: 'http://console.example' })).toBeUndefined();
    expect(
      corsPreflight(undefined, 'OPTIONS', { origin: 'x', 'access-control-request-method': 'GET' }),
    ).toBeUndefined();
    expect(corsResponseHeaders(cors, 'http://console.example')).toEqual({
      'access-control-allow-origin': 'http://console.example',
      'access-control-expose-headers': 'x-request-id',
      vary: 'Origin',
    });
    expect(corsResponseHeaders(cors, 'http://elsewhere.example')).toEqual({});
    expect(corsResponseHeaders(cors, undefined)).toEqual({});
  });

  it('refuses credentialed CORS, which it does not emulate', () => {
    const yml = (corsYml: string) => `service: s
provider:
  name: aws
  httpApi:
    cors: ${corsYml}
functions: {}
`;
    expect(() => parseServerlessSpec(yml('{ allowCredentials: true, allowedOrigins: [http://a] }'))).toThrow(
      /allowCredentials/,
    );
    expect(parseServerlessSpec(yml('true')).cors?.allowedOrigins).toEqual(['*']);
    expect(parseServerlessSpec(yml('false')).cors).toBeUndefined();
  });
});
