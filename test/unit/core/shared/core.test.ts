import { describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../../../lib/config/runtime.ts';
import {
  hashSecret,
  issueApiKey,
  parseApiKey,
  secretMatches,
} from '../../../../lib/core/identity/api-keys.ts';
import { ERROR_STATUS, VolsnapError } from '../../../../lib/core/shared/errors.ts';
import { isId, newId } from '../../../../lib/core/shared/ids.ts';
import { createLogger } from '../../../../lib/http/logger.ts';

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

  it('redact secrets inside any string: URL credentials, presigned signatures, API key secrets, in messages, errors, causes and stacks', () => {
    const lines: string[] = [];
    const log = createLogger({}, (line) => lines.push(line));
    const key = `vsk_key-0123456789abcdef_${'S'.repeat(43)}`;
    const presigned =
      'https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261201%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE&X-Amz-Signature=deadbeefcafe&x-id=GetObject';
    const cause = new TypeError(
      'Request cannot be constructed from a URL that includes credentials: http://user:pass@127.0.0.1:5611/l.raw',
    );
    const error = new Error(`fetch of ${presigned} failed`, { cause });
    log.error(`import from http://alice:hunter2@example.com/x?Signature=abc123&sig=s1g failed with ${key}`, {
      error,
      cause: [String(cause)],
      nested: { deeper: [{ text: `GET ${presigned}` }] },
    });
    const line = lines[0] ?? '';
    for (const secret of [
      'user:pass',
      'alice:hunter2',
      'hunter2',
      'deadbeefcafe',
      'AKIAEXAMPLE',
      'FwoGZXIvYXdzEXAMPLE',
      'abc123',
      's1g',
      'S'.repeat(43),
    ])
      expect(line, secret).not.toContain(secret);
    const entry = JSON.parse(line);
    expect(entry.message).toBe(
      'import from http://***@example.com/x?Signature=***&sig=*** failed with vsk_key-0123456789abcdef_***',
    );
    expect(entry.error.cause.message).toContain('http://***@127.0.0.1:5611/l.raw');
    expect(entry.error.stack).toContain('X-Amz-Signature=***');
    expect(entry.nested.deeper[0].text).toContain('X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***');
    expect(entry.nested.deeper[0].text).toContain('&x-id=GetObject');
  });
});
