import { describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../lib/config/runtime.ts';
import { hashSecret, issueApiKey, parseApiKey, secretMatches } from '../../lib/core/api-keys.ts';
import { ERROR_STATUS, VolsnapError } from '../../lib/core/errors.ts';
import { isId, newId } from '../../lib/core/ids.ts';
import { createLogger } from '../../lib/http/logger.ts';

describe('ids', () => {
  it('are prefixed by kind, random, and recognisable', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newId('snapshot')));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(isId('snapshot', id)).toBe(true);
    expect(isId('volume', newId('snapshot'))).toBe(false);
    expect(isId('snapshot', 'snap-../../etc')).toBe(false);
  });
});

describe('API keys', () => {
  it('round-trip through their token, and only the right secret matches the stored hash', () => {
    const key = issueApiKey();
    const parsed = parseApiKey(key.token);
    expect(parsed?.keyId).toBe(key.keyId);
    expect(secretMatches(parsed?.secret ?? '', key.secretHash)).toBe(true);
    expect(secretMatches(`${parsed?.secret}x`, key.secretHash)).toBe(false);
    expect(key.secretHash).toBe(hashSecret(parsed?.secret ?? ''));
    expect(key.secretHash).not.toContain(parsed?.secret ?? '');
  });
  it('reject tokens of the wrong shape', () => {
    for (const bad of ['', 'Bearer x', 'vsk_key-abc_def', `${issueApiKey().token}x`])
      expect(parseApiKey(bad)).toBeUndefined();
  });
});

describe('errors', () => {
  it('map every code to a 4xx or 5xx status, and expose only the 4xx messages', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      expect(status >= 400 && status < 600, code).toBe(true);
      const error = new VolsnapError(code as keyof typeof ERROR_STATUS, 'm');
      expect(error.exposed).toBe(status < 500);
    }
  });
});

describe('runtime configuration', () => {
  const env = { VOLSNAP_REGION: 'eu-west-1', VOLSNAP_BUCKET: 'bucket-1', VOLSNAP_TABLE: 'table-1' };
  it('describes its own region from the environment and others from VOLSNAP_REGIONS', () => {
    const config = loadRuntimeConfig({
      ...env,
      VOLSNAP_REGIONS: JSON.stringify({
        'us-east-1': { bucket: 'bucket-2', table: 'table-2' },
        'eu-west-1': { bucket: 'old', table: 'old', api: 'http://127.0.0.1:1' },
      }),
    });
    expect(config.region).toMatchObject({
      name: 'eu-west-1',
      bucket: 'bucket-1',
      table: 'table-1',
      api: 'http://127.0.0.1:1',
    });
    expect(config.registry.names()).toEqual(['eu-west-1', 'us-east-1']);
    expect(config.registry.get('us-east-1').bucket).toBe('bucket-2');
  });
  it('answers region.unknown for a region the registry does not name', () => {
    const config = loadRuntimeConfig(env);
    expect(() => config.registry.get('mars-1')).toThrow(
      expect.objectContaining({ code: 'region.unknown', status: 400 }),
    );
  });
  it('fails clearly when the deployment is missing a variable', () => {
    expect(() => loadRuntimeConfig({ VOLSNAP_REGION: 'x' })).toThrow(/VOLSNAP_BUCKET is not set/);
  });
});

describe('logs', () => {
  it('redact secret-looking fields at any depth', () => {
    const lines: string[] = [];
    const log = createLogger({ service: 'test' }, (line) => lines.push(line));
    log
      .child({ requestId: 'r1' })
      .info('hello', { headers: { Authorization: 'Bearer abc' }, nested: [{ apiKey: 'k', size: 3 }] });
    const entry = JSON.parse(lines[0] ?? '{}');
    expect(entry).toEqual({
      level: 'info',
      message: 'hello',
      service: 'test',
      requestId: 'r1',
      headers: { Authorization: '[redacted]' },
      nested: [{ apiKey: '[redacted]', size: 3 }],
    });
  });
});
