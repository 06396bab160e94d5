import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { assetsModule, buildConsole } from '../../console/build.ts';
import { securityHeaders } from '../../functions/http/console.ts';

describe('the web console bundle', () => {
  it('is up to date: console/assets.generated.ts is what `npm run build:console` makes of the sources', async () => {
    const committed = await readFile(new URL('../../console/assets.generated.ts', import.meta.url), 'utf8');
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
