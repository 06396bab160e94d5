import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CONSOLE_ASSETS } from '../../../console/assets.generated.ts';
import { assetsModule, buildConsole } from '../../../console/build.ts';
import { consoleAnswer, securityHeaders } from '../../../functions/http/console.ts';
import { loadRuntimeConfig } from '../../../lib/config/runtime.ts';
import { httpEvent } from '../../support/events.ts';

describe('the web console bundle', () => {
  it('is up to date: console/assets.generated.ts is what `npm run build:console` makes of the sources', async () => {
    const committed = await readFile(
      new URL('../../../console/assets.generated.ts', import.meta.url),
      'utf8',
    );
    expect(
      committed === assetsModule(await buildConsole()),
      'console/assets.generated.ts is older than console/src: run `npm run build:console`',
    ).toBe(true);
  });

  it('loads no script but its own: the page has no inline script and only same-origin files', async () => {
    const { 'index.html': index } = await buildConsole();
    const scripts = [...index.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((m) => [m[1]?.trim(), m[2]?.trim()])).toEqual([
      ['type="module" src="console/app.js"', ''],
    ]);
    expect(index.body).not.toMatch(/(src|href)="(https?:)?\/\//);
  });
});

describe('the console answers', () => {
  it('allow scripts from their own origin only, and calls to the regions’ APIs', () => {
    const csp = securityHeaders(['http://127.0.0.1:4510', 'http://127.0.0.1:4520'])[
      'content-security-policy'
    ];
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).toContain("connect-src 'self' http://127.0.0.1:4510 http://127.0.0.1:4520");
    expect(csp).toContain("frame-ancestors 'none'");
  });
});

describe('the console function', () => {
  const config = loadRuntimeConfig({
    VOLSNAP_REGION: 'eu-west-1',
    VOLSNAP_BUCKET: 'bucket-eu',
    VOLSNAP_TABLE: 'table-eu',
    VOLSNAP_REGIONS: JSON.stringify({
      'us-east-1': { api: 'http://127.0.0.1:4520', bucket: 'bucket-us', table: 'table-us' },
      'ap-south-1': { bucket: 'bucket-ap', table: 'table-ap' },
    }),
  });
  const get = (path: string, headers: Record<string, string> = {}) =>
    consoleAnswer(httpEvent({ routeKey: `GET ${path}`, rawPath: path, headers }), config);

  it('serves the page and its files with their types, and 304 when the browser has them', () => {
    const page = get('/console');
    expect(page).toMatchObject({ statusCode: 200, headers: { 'content-type': 'text/html; charset=utf-8' } });
    expect(page.body).toBe(CONSOLE_ASSETS['index.html'].body);
    const script = get('/console/app.js');
    expect(script.headers?.['content-type']).toBe('text/javascript; charset=utf-8');
    const etag = String(script.headers?.etag);
    expect(get('/console/app.js', { 'if-none-match': etag })).toMatchObject({ statusCode: 304 });
    expect(get('/console/app.css', { 'if-none-match': etag }).statusCode).toBe(200);
    expect(get('/console/other.js').statusCode).toBe(404);
  });

  it('names the regions it can switch to: its own, and those whose API the registry names', () => {
    const answer = get('/console/config.json');
    expect(JSON.parse(String(answer.body))).toEqual({
      region: 'eu-west-1',
      regions: [{ name: 'eu-west-1' }, { name: 'us-east-1', api: 'http://127.0.0.1:4520' }],
    });
    expect(answer.headers?.['content-security-policy']).toContain(
      "connect-src 'self' http://127.0.0.1:4520;",
    );
  });
});
