import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../../../lib/client/api-client.ts';

let server: Server | undefined;

afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A local HTTP server that answers 429 (or `status`) `throttled` times with Retry-After, then 200. */
async function throttlingApi(
  throttled: number,
  status = 429,
  headers: Record<string, string> = { 'retry-after': '2' },
): Promise<{ endpoint: string; requests: string[] }> {
  const requests: string[] = [];
  server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    if (requests.length <= throttled) {
      response.writeHead(status, { 'content-type': 'application/json', ...headers });
      response.end(
        JSON.stringify({ error: 'request.throttled', message: 'Too many: retry after 2 s.', requestId: 'r' }),
      );
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ region: 'eu-west-1', version: 'x', status: 'ok' }));
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

describe('the API client on 429 with Retry-After', () => {
  it('waits what the API says and tries a GET again, a few times', async () => {
    const api = await throttlingApi(2);
    const waits: number[] = [];
    const client = new ApiClient({ endpoint: api.endpoint, sleep: async (ms) => void waits.push(ms) });
    await expect(client.health()).resolves.toMatchObject({ status: 'ok' });
    expect(waits).toEqual([2000, 2000]);
    expect(api.requests).toHaveLength(3);
  });

  it('gives up after three waits with the API error, and never repeats a POST', async () => {
    const api = await throttlingApi(10);
    const waits: number[] = [];
    const client = new ApiClient({ endpoint: api.endpoint, sleep: async (ms) => void waits.push(ms) });
    const error = await client.health().catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({
      status: 429,
      code: 'request.throttled',
      message: 'Too many: retry after 2 s.',
    });
    expect(waits).toHaveLength(3);
    api.requests.length = 0;
    await expect(client.createVolume({ name: 'disk', sizeBytes: 1 })).rejects.toMatchObject({ status: 429 });
    expect(api.requests).toEqual(['POST /v1/volumes']);
  });
});

describe('the API client on 503 storage.throttled/storage.unavailable', () => {
  it('waits what Retry-After says and tries a GET again', async () => {
    const api = await throttlingApi(1, 503);
    const waits: number[] = [];
    const client = new ApiClient({ endpoint: api.endpoint, sleep: async (ms) => void waits.push(ms) });
    await expect(client.health()).resolves.toMatchObject({ status: 'ok' });
    expect(waits).toEqual([2000]);
    expect(api.requests).toHaveLength(2);
  });

  it('does not repeat a 503 that carries no Retry-After', async () => {
    const api = await throttlingApi(1, 503, {});
    const waits: number[] = [];
    const client = new ApiClient({ endpoint: api.endpoint, sleep: async (ms) => void waits.push(ms) });
    await expect(client.health()).rejects.toMatchObject({ status: 503 });
    expect(waits).toEqual([]);
    expect(api.requests).toHaveLength(1);
  });
});
