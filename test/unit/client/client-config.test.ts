import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../../lib/client/config.ts';

function project(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'volsnap-cfg-'));
  mkdirSync(join(dir, '.volsnap'));
  writeFileSync(join(dir, '.volsnap', 'config.json'), JSON.stringify(config));
  mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true });
  return dir;
}

const file = {
  defaultRegion: 'eu-west-1',
  regions: {
    'eu-west-1': { endpoint: 'http://127.0.0.1:4510' },
    'us-east-1': { endpoint: 'http://127.0.0.1:4520' },
  },
  defaultAccount: 'demo',
  accounts: {
    demo: { accountId: 'acct-a', apiKey: 'key-a' },
    'demo-b': { accountId: 'acct-b', apiKey: 'key-b' },
  },
};
const noHome = { HOME: '/nonexistent' };

describe('CLI configuration', () => {
  it('finds .volsnap/config.json in a parent directory and uses its defaults', () => {
    const dir = project(file);
    expect(resolveConfig({}, noHome, join(dir, 'sub', 'deeper'))).toMatchObject({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:4510',
      apiKey: 'key-a',
      account: 'demo',
    });
  });

  it('takes flags over environment over the file', () => {
    const dir = project(file);
    expect(
      resolveConfig({ region: 'us-east-1' }, { ...noHome, VOLSNAP_REGION: 'eu-west-1' }, dir).endpoint,
    ).toBe('http://127.0.0.1:4520');
    expect(resolveConfig({}, { ...noHome, VOLSNAP_REGION: 'us-east-1' }, dir).endpoint).toBe(
      'http://127.0.0.1:4520',
    );
    expect(resolveConfig({ endpoint: 'http://127.0.0.1:9' }, noHome, dir).endpoint).toBe(
      'http://127.0.0.1:9',
    );
    expect(resolveConfig({ account: 'demo-b' }, noHome, dir).apiKey).toBe('key-b');
    expect(resolveConfig({}, { ...noHome, VOLSNAP_API_KEY: 'from-env' }, dir).apiKey).toBe('from-env');
  });

  it('says what to do when nothing names an endpoint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'volsnap-empty-'));
    expect(() => resolveConfig({}, noHome, dir)).toThrow(/No region: pass --region.*npm start/);
    expect(() => resolveConfig({ region: 'ap-south-1' }, noHome, dir)).toThrow(
      /No endpoint for region 'ap-south-1'/,
    );
  });

  it('takes an endpoint alone, without a region or a config file (`volsnap health --endpoint URL` on a host)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'volsnap-empty-'));
    expect(resolveConfig({ endpoint: 'http://127.0.0.1:4510' }, noHome, dir)).toMatchObject({
      endpoint: 'http://127.0.0.1:4510',
      region: undefined,
    });
    expect(resolveConfig({}, { ...noHome, VOLSNAP_ENDPOINT: 'http://127.0.0.1:4520' }, dir).endpoint).toBe(
      'http://127.0.0.1:4520',
    );
  });

  it('names the accounts there are when asked for one that is not', () => {
    const dir = project(file);
    expect(() => resolveConfig({ account: 'nobody' }, noHome, dir)).toThrow(ConfigError);
    expect(() => resolveConfig({ account: 'nobody' }, noHome, dir)).toThrow(/demo, demo-b/);
  });

  it('rejects a malformed config file, naming it', () => {
    const dir = project({ defaultRegion: 'eu-west-1', regions: { 'eu-west-1': { endpoint: 'not a url' } } });
    expect(() => resolveConfig({}, noHome, dir)).toThrow(
      /config\.json is invalid: regions\.eu-west-1\.endpoint/,
    );
  });
});
