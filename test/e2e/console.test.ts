import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../lib/client/api-client.ts';
import { cliFor } from '../support/e2e-cli.ts';
import { cli, ROOT, type StartedCloud, startCloudProcess } from '../support/processes.ts';

/**
 * The web console in a real browser (Debian's Chromium, driven by playwright-core) against the
 * local cloud: what a person signed in with an API key sees and does, checked against the CLI.
 */

const BLOCK = 512 * 1024;
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-console-'));
const work = mkdtempSync(join(tmpdir(), 'volsnap-e2e-console-files-'));
const configPath = join(dataDir, 'config.json');
const { json, run } = cliFor(configPath);
/** Screenshots of the main pages, for the README. */
// The README's screenshots: written into docs/ when asked (`VOLSNAP_SCREENSHOTS=docs npm run test:e2e --
// test/e2e/console.test.ts`), else beside the run's other files, so that a test run leaves the
// checkout as it was.
const DOCS = process.env.VOLSNAP_SCREENSHOTS
  ? join(ROOT, process.env.VOLSNAP_SCREENSHOTS, 'console')
  : join(tmpdir(), 'console-screenshots');
const XSS_NAME = '<img src=x onerror=alert(1)>';
const CHROMIUM = process.env.VOLSNAP_CHROMIUM ?? '/usr/bin/chromium';

let cloud: StartedCloud;
let browser: Browser;
let config: {
  regions: Record<string, { endpoint: string }>;
  accounts: Record<string, { accountId: string; apiKey: string }>;
};
const endpoint = (region: string) => config.regions[region]?.endpoint ?? '';
const key = (account: string) => config.accounts[account]?.apiKey ?? '';
const accountId = (account: string) => config.accounts[account]?.accountId ?? '';

/** 4 MiB: blocks 1 and 5 zero, the rest random. */
const image = randomBytes(8 * BLOCK);
for (const i of [1, 5]) image.fill(0, i * BLOCK, (i + 1) * BLOCK);
let volumeId: string;
let snapshotId: string;
let xssSnapshotId: string;

/** Every request any page made, and every dialog (an `alert` that should never run). */
const requests: string[] = [];
const dialogs: string[] = [];
const contexts: BrowserContext[] = [];

async function newPage(options: { width?: number } = {}): Promise<Page> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: 860 },
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  page.on('request', (request) => requests.push(request.url()));
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return page;
}

/** Opens the console of `region` and signs in with `apiKey`; resolves once the account is shown. */
async function signIn(page: Page, apiKey: string, region = 'eu-west-1'): Promise<void> {
  await page.goto(`${endpoint(region)}/console`);
  await page.getByLabel('API key').fill(apiKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

const shot = (page: Page, name: string, fullPage = false) =>
  page.screenshot({ path: join(DOCS, `${name}.png`), fullPage });

/** The label → value pairs of a view's field list. */
async function fieldsOf(page: Page, label: string): Promise<Record<string, string>> {
  const list = page.getByLabel(label, { exact: true });
  const names = await list.locator('dt').allInnerTexts();
  const values = await list.locator('dd').allInnerTexts();
  return Object.fromEntries(names.map((name, i) => [name, values[i] ?? '']));
}

async function openSnapshot(page: Page, id: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(`/snapshot/${id}`)}`);
  await page.getByLabel('Snapshot fields').locator(`[data-field="id"] dd`).filter({ hasText: id }).waitFor();
}

/**
 * What `volsnap <kind> show` prints (`label  value` lines, up to a table under them) equals the
 * view's field list, label for label; `-` in the CLI is a field left out or shown as `-`.
 */
async function expectFieldsAsCliShows(page: Page, label: string, ...show: string[]): Promise<void> {
  await page.getByLabel(label, { exact: true }).locator('[data-field="id"]').waitFor();
  const shown = await fieldsOf(page, label);
  const printed = await run('demo', 'eu-west-1', ...show);
  expect(printed.code, printed.stderr).toBe(0);
  const lines = printed.stdout
    .trim()
    .split('\n')
    .filter((line) => line.trim() !== '');
  const end = lines.findIndex((line) => /^device\s/i.test(line));
  const record = end < 0 ? lines : lines.slice(0, end);
  expect(record.length).toBeGreaterThanOrEqual(6);
  for (const line of record) {
    const [, name = '', value = ''] = /^(\S+(?: \S+)?)\s{2,}(.*)$/.exec(line) ?? [];
    if (value === '-') expect(shown[name] ?? '-', name).toBe('-');
    else expect(shown[name], name).toBe(value);
  }
}

/** Waits until `read()` answers `expected` (a list redrawn after a filter or a page), then checks it. */
async function until<T>(read: () => Promise<T>, expected: T): Promise<void> {
  let last = await read();
  for (let i = 0; i < 300 && JSON.stringify(last) !== JSON.stringify(expected); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await read();
  }
  expect(last).toEqual(expected);
}

/** The names a list shows, top to bottom. */
const namesIn = (page: Page, table: string) => () =>
  page.getByRole('table', { name: table, exact: true }).locator('tbody td.name').allInnerTexts();

/** Presses Tab until the element with this name (or else text) has the focus. */
async function tabToIn(page: Page, target: string): Promise<void> {
  const focused = () =>
    page.evaluate<string>(
      "document.activeElement?.getAttribute('name') || document.activeElement?.textContent || ''",
    );
  for (let i = 0; i < 80 && (await focused()) !== target; i++) await page.keyboard.press('Tab');
  expect(await focused()).toBe(target);
}

const api = (account: string) => new ApiClient({ endpoint: endpoint('eu-west-1'), apiKey: key(account) });

beforeAll(async () => {
  mkdirSync(DOCS, { recursive: true });
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
  config = JSON.parse(readFileSync(configPath, 'utf8'));
  const file = join(work, 'disk.img');
  writeFileSync(file, image);
  const volume = await json('demo', 'eu-west-1', 'volume', 'create', '--name', 'web', '--size', '4MiB');
  volumeId = volume.volumeId;
  const made = await json(
    'demo',
    'eu-west-1',
    'snapshot',
    'create',
    '--volume',
    volumeId,
    '--file',
    file,
    '--name',
    'web-nightly',
    '--description',
    'before the upgrade',
    '--tag',
    'env=prod',
    '--tag',
    'team=storage',
  );
  snapshotId = made.snapshotId;
  const xss = await json(
    'demo',
    'eu-west-1',
    'snapshot',
    'create',
    '--volume',
    volumeId,
    '--file',
    file,
    '--name',
    XSS_NAME,
  );
  xssSnapshotId = xss.snapshotId;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // This machine has no network: without these Chromium waits on lookups of its own services.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 240_000);

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  writeFileSync(join(dataDir, 'cloud-output.log'), cloud?.output() ?? '');
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

describe('the web console, in Chromium, against the local cloud', () => {
  it('is served at /console with a Content-Security-Policy that allows no inline script', async () => {
    const response = await fetch(`${endpoint('eu-west-1')}/console`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(csp).toContain(endpoint('us-east-1'));
    expect(await response.text()).not.toMatch(/<script>|<script [^>]*>[^<]/);
  });

  it('refuses a bad key with the API’s message, and loads in the time it takes (measured)', async () => {
    const page = await newPage();
    const started = Date.now();
    await page.goto(`${endpoint('eu-west-1')}/console`);
    await page.getByLabel('API key').waitFor();
    const loadMs = Date.now() - started;
    const timing = await page.evaluate<number>(
      "Math.round(performance.getEntriesByType('navigation')[0]?.loadEventEnd ?? -1)",
    );
    console.log(
      `console: sign-in form shown ${loadMs} ms after navigation began (load event at ${timing} ms)`,
    );
    await shot(page, 'sign-in');
    await page.getByLabel('API key').fill('vsk_key-0000000000000000_not-a-real-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.innerText()).toContain('Missing or invalid API key');
    expect(await alert.innerText()).toContain('auth.unauthorized');
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
  });

  it('signs in, shows the account and user, and the snapshot the CLI made with the fields `snapshot show` prints', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    expect(await page.locator('.who').innerText()).toContain(`demo ${accountId('demo')}`);
    const row = page.locator(`tr[data-snapshot-id="${snapshotId}"]`);
    await row.waitFor();
    expect(await row.innerText()).toMatch(/web-nightly\s+snap-\w+\s+vol-\w+\s+4 MiB\s+completed/);
    await shot(page, 'snapshots');
    await row.getByRole('link', { name: 'web-nightly' }).click();
    await page.getByRole('heading', { name: 'Snapshot web-nightly' }).waitFor();
    const shown = await fieldsOf(page, 'Snapshot fields');
    // `volsnap snapshot show` prints `label  value` lines, `-` where there is nothing to say.
    const printed = await cli(['--config', configPath, 'snapshot', 'show', snapshotId]);
    expect(printed.code).toBe(0);
    const lines = printed.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(15);
    for (const line of lines) {
      const [, label = '', value = ''] = /^(\S+(?: \S+)?)\s{2,}(.*)$/.exec(line) ?? [];
      if (value === '-') expect(shown[label] ?? '-', label).toBe('-');
      else expect(shown[label], label).toBe(value);
    }
    expect(shown.description).toBe('before the upgrade');
    expect(await page.getByRole('table', { name: 'Tags' }).innerText()).toMatch(
      /env\s+prod[\s\S]*team\s+storage/,
    );
    await shot(page, 'snapshot-detail', true);
    // The key is kept for the tab only, and never put in a URL.
    expect(await page.evaluate<string>("sessionStorage.getItem('volsnap.console.session')")).toContain(
      key('demo'),
    );
    expect(await page.evaluate('localStorage.length')).toBe(0);
    expect(requests.filter((url) => url.includes(key('demo')))).toEqual([]);
  });

  it('shows a name that is markup as those characters, and runs nothing', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    const row = page.locator(`tr[data-snapshot-id="${xssSnapshotId}"]`);
    await row.waitFor();
    expect(await row.locator('td.name').innerText()).toBe(XSS_NAME);
    await openSnapshot(page, xssSnapshotId);
    expect(await page.locator('.title-name').innerText()).toBe(XSS_NAME);
    expect((await fieldsOf(page, 'Snapshot fields')).name).toBe(XSS_NAME);
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it('copies a snapshot to the other region and shows the copy go from pending to completed', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await openSnapshot(page, snapshotId);
    // Every state the view shows, as it shows it: the copy may take less than a poll.
    await page.evaluate(`(() => {
      const seen = (window.seenStates = []);
      const record = () => {
        const state = document.querySelector('.state-line [data-state]')?.getAttribute('data-state');
        const id = document.querySelector('[data-field="id"] dd')?.textContent;
        if (state && id) seen.push(id + ' ' + state);
      };
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    })()`);
    await page.getByLabel('Copy to region').selectOption('us-east-1');
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    // The console shows the copy in its region: the destination's, where it is made.
    await page.locator('[data-field="copied from"] dd').waitFor();
    await page.locator('.state-line [data-state="completed"]').waitFor({ timeout: 90_000 });
    const shown = await fieldsOf(page, 'Snapshot fields');
    expect(shown['copied from']).toBe(`${snapshotId} (eu-west-1)`);
    expect(shown.region).toBe('us-east-1');
    expect(await page.locator('#region').inputValue()).toBe('us-east-1');
    const copyId = shown.id ?? '';
    const seen = (await page.evaluate<string[]>('window.seenStates'))
      .filter((entry) => entry.startsWith(copyId))
      .map((entry) => entry.split(' ')[1]);
    expect(seen[0]).toBe('pending');
    expect(seen.at(-1)).toBe('completed');
    const copy = await json('demo', 'us-east-1', 'snapshot', 'show', copyId);
    expect(copy).toMatchObject({ state: 'completed', copiedFrom: { snapshotId, region: 'eu-west-1' } });
  });

  it('shares a snapshot, which the other account then lists under "Shared with me"', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await openSnapshot(page, snapshotId);
    await page.getByLabel('Share with account (id or name)').fill('demo-b');
    await page.getByRole('button', { name: 'Share', exact: true }).click();
    await page.getByRole('button', { name: `Stop sharing with ${accountId('demo-b')}` }).waitFor();
    expect((await fieldsOf(page, 'Snapshot fields'))['shared with']).toBe(accountId('demo-b'));

    const other = await newPage();
    await signIn(other, key('demo-b'));
    await other.getByRole('link', { name: 'Shared with me' }).click();
    const row = other.locator(`tr[data-snapshot-id="${snapshotId}"]`);
    await row.waitFor();
    expect(await row.innerText()).toMatch(new RegExp(`web-nightly\\s+${snapshotId}\\s+${accountId('demo')}`));
    await shot(other, 'shared-with-me');
    // The grantee reads it, but only its owner acts on it.
    await row.getByRole('link', { name: 'web-nightly' }).click();
    await other
      .getByText(`Only its owner (${accountId('demo')}) changes or deletes this snapshot.`)
      .waitFor();
  });

  it('shows a refused action’s message in the API’s words', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await openSnapshot(page, snapshotId);
    await page.getByLabel('Share with account (id or name)').fill('nobody-such');
    await page.getByRole('button', { name: 'Share', exact: true }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const refused = await cli([
      '--config',
      configPath,
      '--json',
      'snapshot',
      'share',
      snapshotId,
      'nobody-such',
    ]);
    const { error, message } = JSON.parse(refused.stderr);
    expect(await alert.innerText()).toBe(`${message} (${error})`);
  });

  it('deletes after a confirmation that names the snapshot and who loses it, and undeletes it', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await openSnapshot(page, snapshotId);
    await page.getByRole('button', { name: 'Delete…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete snapshot web-nightly?' });
    await dialog.waitFor();
    const text = await dialog.innerText();
    expect(text).toContain(`web-nightly (${snapshotId}) goes to the recycle bin for 7 day(s)`);
    expect(text).toContain(`shared with 1 account(s) (${accountId('demo-b')})`);
    expect(text).toContain('They lose access now.');
    // Others use it: the name must be typed first.
    const confirm = dialog.getByRole('button', { name: 'Delete', exact: true });
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel('Type web-nightly to confirm').fill('web-nightly');
    await shot(page, 'delete-confirmation');
    await confirm.click();
    await page.getByRole('status').filter({ hasText: 'web-nightly is in the recycle bin until' }).waitFor();
    expect((await json('demo', 'eu-west-1', 'snapshot', 'show', snapshotId)).state).toBe('recycled');

    await page.getByRole('link', { name: '← Snapshots' }).click();
    await page.getByRole('link', { name: 'Recycle bin' }).click();
    const row = page.locator(`tr[data-snapshot-id="${snapshotId}"]`);
    await row.waitFor();
    await shot(page, 'recycle-bin');
    await row.getByRole('button', { name: 'Undelete web-nightly' }).click();
    await row.waitFor({ state: 'detached' });
    expect((await json('demo', 'eu-west-1', 'snapshot', 'show', snapshotId)).state).toBe('completed');
  });

  it('exports a snapshot, and the URL it copies fetches the object', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await openSnapshot(page, snapshotId);
    await page.getByLabel('Export as').selectOption('raw');
    await page.getByRole('button', { name: 'Export', exact: true }).click();
    await page.getByRole('heading', { name: 'Exports' }).waitFor();
    const row = page.locator('tr[data-export-id]').filter({ hasText: snapshotId });
    await row.locator('[data-state="completed"]').waitFor({ timeout: 90_000 });
    await row.getByRole('button', { name: 'Copy URL' }).click();
    await row.getByRole('status').filter({ hasText: 'URL copied to the clipboard.' }).waitFor();
    await shot(page, 'exports');
    const url = await page.evaluate<string>('navigator.clipboard.readText()');
    expect(await row.getByRole('textbox', { name: 'URL' }).inputValue()).toBe(url);
    const object = await fetch(url);
    expect(object.status).toBe(200);
    expect(Buffer.from(await object.arrayBuffer()).equals(image)).toBe(true);
  });

  it('edits a snapshot’s name, description and tags, and publishes it after a confirmation', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await openSnapshot(page, xssSnapshotId);
    const edit = page.getByRole('form', { name: 'Edit' });
    await edit.getByLabel('Name').fill('renamed');
    await edit.getByLabel('Description').fill('kept as text: <b>bold</b>');
    await edit.getByLabel('Tags (k=v, k2=v2)').fill('env=test, owner=ops');
    await edit.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'renamed saved.' }).waitFor();
    await page.getByRole('button', { name: 'Publish…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Publish renamed?' });
    await dialog.getByRole('button', { name: 'Publish', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'renamed is public.' }).waitFor();
    const shown = await fieldsOf(page, 'Snapshot fields');
    expect(shown).toMatchObject({ name: 'renamed', description: 'kept as text: <b>bold</b>', public: 'yes' });
    expect(await json('demo', 'eu-west-1', 'snapshot', 'show', xssSnapshotId)).toMatchObject({
      name: 'renamed',
      tags: { env: 'test', owner: 'ops' },
      public: true,
    });
    // Every account sees it under Public now.
    const other = await newPage();
    await signIn(other, key('demo-b'));
    await other.getByRole('link', { name: 'Public' }).click();
    await other.locator(`tr[data-snapshot-id="${xssSnapshotId}"]`).waitFor();
  });

  it('creates a volume from a snapshot, larger than the snapshot', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await openSnapshot(page, snapshotId);
    const form = page.getByRole('form', { name: 'Create a volume from it' });
    expect(await form.getByLabel('Size (its own or larger)').inputValue()).toBe('4MiB');
    await form.getByLabel('New volume name').fill('web-restored');
    await form.getByLabel('Size (its own or larger)').fill('8MiB');
    await form.getByRole('button', { name: 'Create volume' }).click();
    const row = page.locator('tr[data-volume-id]').filter({ hasText: 'web-restored' });
    await row.waitFor();
    expect(await row.innerText()).toContain('8 MiB');
    await shot(page, 'volumes');
    const restoredId = (await row.getAttribute('data-volume-id')) ?? '';
    await row.getByRole('link', { name: 'web-restored', exact: true }).click();
    await page.getByRole('heading', { name: 'Volume web-restored' }).waitFor();
    expect(await fieldsOf(page, 'Volume fields')).toMatchObject({
      name: 'web-restored',
      size: '8 MiB (8388608 bytes)',
      'from snapshot': snapshotId,
    });
    await expectFieldsAsCliShows(page, 'Volume fields', 'volume', 'show', restoredId);
    const volume = await json('demo', 'eu-west-1', 'volume', 'show', restoredId);
    expect(volume).toMatchObject({
      name: 'web-restored',
      sizeBytes: 8 * 2 ** 20,
      sourceSnapshotId: snapshotId,
    });
  });

  it('creates a policy, disables it and deletes it after a confirmation', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await page.getByRole('link', { name: 'Policies' }).click();
    const form = page.getByRole('form', { name: 'Create a policy' });
    await form.getByLabel('Name').fill('nightly');
    await form.getByLabel('Volumes tagged (key=value)').fill('backup=nightly');
    await form.getByLabel('Every').fill('1d');
    await form.getByLabel('Keep the newest').fill('3');
    await form.getByRole('button', { name: 'Create' }).click();
    const row = page.locator('tr[data-policy-id]').filter({ hasText: 'nightly' });
    await row.waitFor();
    expect(await row.innerText()).toMatch(/backup=nightly\s+every 1d\s+keep 3\s+-\s+yes/);
    const policyId = (await row.getAttribute('data-policy-id')) ?? '';
    await row.getByRole('button', { name: 'Disable nightly' }).click();
    await row.getByRole('button', { name: 'Enable nightly' }).waitFor();
    expect((await json('demo', 'eu-west-1', 'policy', 'show', policyId)).enabled).toBe(false);
    await shot(page, 'policies');
    await row.getByRole('button', { name: 'Delete nightly' }).click();
    await page
      .getByRole('dialog', { name: 'Delete policy nightly?' })
      .getByRole('button', { name: 'Delete', exact: true })
      .click();
    await row.waitFor({ state: 'detached' });
    expect(
      (await json('demo', 'eu-west-1', 'policy', 'list')).map((p: { policyId: string }) => p.policyId),
    ).toEqual([]);
  });

  it('shows usage against every quota on the account page, as the API reports it', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await page.getByRole('link', { name: 'Account' }).click();
    const table = page.getByRole('table', { name: 'Usage against quotas' });
    await table.waitFor();
    const usage = await json('demo', 'eu-west-1', 'account', 'usage');
    const snapshots = table.locator('tr[data-quota="snapshots"]');
    expect(await snapshots.locator('td').allInnerTexts()).toEqual([
      'snapshots',
      String(usage.snapshots.used),
      String(usage.snapshots.limit),
      '',
    ]);
    expect(await table.locator('meter').count()).toBeGreaterThanOrEqual(3);
    await shot(page, 'account');
  });

  it('lists volumes by name and tag, a page at a time, newest or oldest first', async () => {
    for (let n = 0; n < 12; n++)
      await api('demo').createVolume({
        name: `bulk-${String(n).padStart(2, '0')}`,
        sizeBytes: 4 * 2 ** 20,
        tags: { batch: n % 2 === 0 ? 'even' : 'odd' },
      });
    const page = await newPage();
    await signIn(page, key('demo'));
    await page.getByRole('link', { name: 'Volumes' }).click();
    const filters = page.getByRole('form', { name: 'Filter volumes' });
    await filters.getByLabel('Name').fill('bulk-');
    await filters.getByRole('button', { name: 'Filter' }).click();
    const bulk = (from: number, to: number) =>
      Array.from({ length: Math.abs(to - from) + 1 }, (_, i) => from + (to > from ? i : -i)).map(
        (n) => `bulk-${String(n).padStart(2, '0')}`,
      );
    const names = namesIn(page, 'Volumes');
    await until(names, bulk(11, 0));
    const paging = page.getByRole('navigation', { name: 'Pages of volumes' });
    await paging.getByLabel('Per page').selectOption('10');
    await until(names, bulk(11, 2));
    await paging.getByRole('button', { name: 'Next page' }).click();
    await until(names, bulk(1, 0));
    expect(await paging.getByText('Page 2').count()).toBe(1);
    expect(await paging.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
    await paging.getByRole('button', { name: 'Previous page' }).click();
    await until(names, bulk(11, 2));
    // Oldest first, across the API's pages: the first made leads, and the last page has the newest.
    const sort = page.getByRole('button', { name: 'Created, newest first: sort oldest first' });
    await sort.click();
    await until(names, bulk(0, 9));
    expect(
      await page.getByRole('table', { name: 'Volumes' }).locator('th[aria-sort]').getAttribute('aria-sort'),
    ).toBe('ascending');
    await paging.getByRole('button', { name: 'Next page' }).click();
    await until(names, bulk(10, 11));
    await shot(page, 'volumes-paged');
    await filters.getByLabel('Tag (key=value)').fill('batch=even');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await until(
      names,
      [0, 2, 4, 6, 8, 10].map((n) => `bulk-${String(n).padStart(2, '0')}`),
    );
    expect(await paging.getByText('Page 1').count()).toBe(1);
  });

  it('filters instances by name, state and volume (the API has no such filters), pages and sorts them', async () => {
    for (let n = 0; n < 12; n++)
      await api('demo').registerInstance({
        name: `node-${String(n).padStart(2, '0')}`,
        state: n % 2 === 0 ? 'running' : 'stopped',
      });
    const page = await newPage();
    await signIn(page, key('demo'));
    await page.getByRole('link', { name: 'Instances' }).click();
    const names = namesIn(page, 'Instances');
    const node = (n: number) => `node-${String(n).padStart(2, '0')}`;
    await until(async () => (await names()).length, 12);
    const paging = page.getByRole('navigation', { name: 'Pages of instances' });
    await paging.getByLabel('Per page').selectOption('10');
    await until(async () => (await names()).length, 10);
    const filters = page.getByRole('form', { name: 'Filter instances' });
    await filters.getByLabel('Name').fill('node-');
    await filters.getByLabel('State').selectOption('running');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await until(names, [10, 8, 6, 4, 2, 0].map(node));
    await filters.getByLabel('State').selectOption('');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await until(names, [11, 10, 9, 8, 7, 6, 5, 4, 3, 2].map(node));
    await paging.getByRole('button', { name: 'Next page' }).click();
    await until(names, [1, 0].map(node));
    await page.getByRole('button', { name: 'Created, newest first: sort oldest first' }).click();
    await until(names, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(node));
    await filters.getByLabel('Volume').fill('vol-none');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('No instances here.').waitFor();
  });

  it('marks an instance, shows it and its image as `show` prints them, launches the image and deletes what it launched', async () => {
    const disk = await json('demo', 'eu-west-1', 'volume', 'create', '--name', 'app-disk', '--size', '4MiB');
    const instance = await json(
      'demo',
      'eu-west-1',
      'instance',
      'register',
      '--name',
      'app',
      '--volume',
      `${disk.volumeId}=/dev/vda`,
      '--property',
      'min_disk=4',
      '--stopped',
    );
    const golden = await json(
      'demo',
      'eu-west-1',
      'image',
      'create',
      '--instance',
      instance.instanceId,
      '--name',
      'golden',
      '--file',
      `${disk.volumeId}=${join(work, 'disk.img')}`,
    );
    const page = await newPage();
    await signIn(page, key('demo'));
    await page.getByRole('link', { name: 'Instances' }).click();
    const filters = page.getByRole('form', { name: 'Filter instances' });
    await filters.getByLabel('Volume').fill(disk.volumeId);
    await filters.getByRole('button', { name: 'Filter' }).click();
    await until(namesIn(page, 'Instances'), ['app']);
    await page.getByRole('link', { name: 'app', exact: true }).click();
    await page.getByRole('heading', { name: 'Instance app' }).waitFor();
    await expectFieldsAsCliShows(page, 'Instance fields', 'instance', 'show', instance.instanceId);
    await page.getByRole('button', { name: 'Mark running' }).click();
    await page.getByRole('status').filter({ hasText: 'app is marked running.' }).waitFor();
    expect((await json('demo', 'eu-west-1', 'instance', 'show', instance.instanceId)).state).toBe('running');
    await shot(page, 'instance-detail', true);

    await page.getByRole('link', { name: 'Images' }).click();
    const row = page.locator(`tr[data-image-id="${golden.imageId}"]`);
    await row.locator('[data-state="completed"]').waitFor();
    await shot(page, 'images');
    await row.getByRole('link', { name: 'golden' }).click();
    await page.getByRole('heading', { name: 'Image golden' }).waitFor();
    await expectFieldsAsCliShows(page, 'Image fields', 'image', 'show', golden.imageId);
    expect(await page.getByRole('table', { name: 'Image snapshots' }).locator('tbody').innerText()).toMatch(
      new RegExp(`/dev/vda\\s+0\\s+${disk.volumeId}\\s+snap-\\w+\\s+4 MiB\\s+completed`),
    );
    await shot(page, 'image-detail', true);
    const launch = page.getByRole('form', { name: 'Launch' });
    await launch.getByLabel('New instance name').fill('app-copy');
    await launch.getByRole('button', { name: 'Launch' }).click();
    await page.getByRole('heading', { name: 'Instance app-copy' }).waitFor();
    const launched = await fieldsOf(page, 'Instance fields');
    expect(await json('demo', 'eu-west-1', 'instance', 'show', launched.id ?? '')).toMatchObject({
      name: 'app-copy',
      properties: { min_disk: '4' },
    });
    await page.getByRole('button', { name: 'Delete app-copy' }).click();
    await page
      .getByRole('dialog', { name: 'Delete instance app-copy?' })
      .getByRole('button', { name: 'Delete', exact: true })
      .click();
    await page.getByRole('heading', { name: 'Instances' }).waitFor();
    expect((await run('demo', 'eu-west-1', 'instance', 'show', launched.id ?? '')).code).toBe(3);
  });

  it('creates a policy with a cron, a time to keep and a copy rule, edits it, shows the API’s refusal, and deletes it', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await page.getByRole('link', { name: 'Policies' }).click();
    const form = page.getByRole('form', { name: 'Create a policy' });
    await form.getByLabel('Name').fill('weekly');
    await form.getByLabel('Description').fill('Sunday night');
    await form.getByLabel('Volumes tagged (key=value)').fill('backup=weekly, tier=gold');
    await form.getByLabel('Every').fill('0 3 * * 0');
    await form.getByLabel('Keep the newest').fill('30d');
    await form.getByLabel('Copy to us-east-1').check();
    await form.getByLabel('us-east-1: copies kept').fill('2');
    await form.getByRole('button', { name: 'Create' }).click();
    const row = page.locator('tr[data-policy-id]').filter({ hasText: 'weekly' });
    await row.waitFor();
    expect(await row.innerText()).toMatch(
      /backup=weekly, tier=gold\s+cron 0 3 \* \* 0 \(UTC\)\s+keep for 30d\s+us-east-1 \(keep 2\)\s+yes/,
    );
    const policyId = (await row.getAttribute('data-policy-id')) ?? '';
    await row.getByRole('link', { name: 'weekly' }).click();
    await page.getByRole('heading', { name: 'Policy weekly' }).waitFor();
    await expectFieldsAsCliShows(page, 'Policy fields', 'policy', 'show', policyId);
    const edit = page.getByRole('form', { name: 'Edit the policy' });
    await edit.getByLabel('Keep the newest').fill('5');
    await edit.getByLabel('Copy to us-east-1').uncheck();
    await edit.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'weekly saved.' }).waitFor();
    expect(await json('demo', 'eu-west-1', 'policy', 'show', policyId)).toMatchObject({
      retention: { keep: 5 },
      copyRules: [],
      schedule: { cron: '0 3 * * 0' },
      description: 'Sunday night',
    });
    await shot(page, 'policy-detail', true);
    await edit.getByLabel('Every').fill('61 * * * *');
    await edit.getByRole('button', { name: 'Save' }).click();
    const alert = edit.getByRole('alert');
    await alert.waitFor();
    const refused = await run(
      'demo',
      'eu-west-1',
      '--json',
      'policy',
      'update',
      policyId,
      '--cron',
      '61 * * * *',
    );
    const { error, message } = JSON.parse(refused.stderr);
    expect(await alert.innerText()).toBe(`${message} (${error})`);
    await page.getByRole('button', { name: 'Delete weekly' }).click();
    await page
      .getByRole('dialog', { name: 'Delete policy weekly?' })
      .getByRole('button', { name: 'Delete', exact: true })
      .click();
    await page.getByRole('heading', { name: 'Policies' }).waitFor();
    expect((await run('demo', 'eu-west-1', 'policy', 'show', policyId)).code).toBe(3);
  });

  it('shows an export as `export show` does and deletes it after a confirmation', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await page.getByRole('link', { name: 'Exports' }).click();
    const filters = page.getByRole('form', { name: 'Filter exports' });
    await filters.getByLabel('Snapshot').fill(snapshotId);
    await filters.getByLabel('State').selectOption('completed');
    await filters.getByRole('button', { name: 'Filter' }).click();
    const row = page.locator('tr[data-export-id]');
    await until(async () => (await row.count()) === 1 && (await row.innerText()).includes(snapshotId), true);
    const exportId = (await row.getAttribute('data-export-id')) ?? '';
    await row.getByRole('link', { name: exportId }).click();
    await page.getByRole('heading', { name: `Export ${exportId}` }).waitFor();
    await expectFieldsAsCliShows(page, 'Export fields', 'export', 'show', exportId);
    await page.getByRole('link', { name: '← Exports' }).click();
    const listed = page.locator(`tr[data-export-id="${exportId}"]`);
    await listed.getByRole('button', { name: `Delete ${exportId}` }).click();
    const dialog = page.getByRole('dialog', { name: `Delete export ${exportId}?` });
    expect(await dialog.innerText()).toContain('URLs handed out stop working');
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Export ${exportId} deleted.` })
      .waitFor();
    await listed.waitFor({ state: 'detached' });
    expect((await run('demo', 'eu-west-1', 'export', 'show', exportId)).code).toBe(3);
  });

  it('is usable by keyboard alone: sign in, open a snapshot, open a deletion and cancel it with Escape', async () => {
    const page = await newPage();
    await page.goto(`${endpoint('eu-west-1')}/console`);
    await page.getByLabel('API key').waitFor();
    const tabTo = (target: string) => tabToIn(page, target);
    await tabTo('apiKey');
    await page.keyboard.type(key('demo'));
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await page.locator(`tr[data-snapshot-id="${snapshotId}"]`).waitFor();
    await tabTo('web-nightly');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Snapshot web-nightly' }).waitFor();
    await tabTo('Delete…');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Delete snapshot web-nightly?' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect((await json('demo', 'eu-west-1', 'snapshot', 'show', snapshotId)).state).toBe('completed');
  });

  it('filters a list, sorts it and opens a row by keyboard alone', async () => {
    const page = await newPage();
    await signIn(page, key('demo'));
    await page.evaluate(`location.hash = '/volumes'`);
    await page.getByRole('heading', { name: 'Volumes' }).waitFor();
    const names = namesIn(page, 'Volumes');
    await tabToIn(page, 'filter-name');
    await page.keyboard.type('bulk-1');
    await page.keyboard.press('Enter');
    await until(names, ['bulk-11', 'bulk-10']);
    await tabToIn(page, 'Created ↓');
    await page.keyboard.press('Enter');
    await until(names, ['bulk-10', 'bulk-11']);
    await tabToIn(page, 'bulk-10');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Volume bulk-10' }).waitFor();
    await tabToIn(page, 'Delete…');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Delete volume bulk-10?' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  it('reads on a narrow window, and asked no origin but the regions’ APIs for anything', async () => {
    const page = await newPage({ width: 390 });
    await signIn(page, key('demo'));
    await page.locator(`tr[data-snapshot-id="${snapshotId}"]`).waitFor();
    await shot(page, 'snapshots-narrow');
    const width = () => page.evaluate<number>('document.documentElement.scrollWidth');
    expect(await width()).toBeLessThanOrEqual(390);
    // The new lists and forms too: tables scroll inside their box, forms wrap.
    for (const [route, heading] of [
      ['/instances', 'Instances'],
      ['/policies', 'Policies'],
      ['/exports', 'Exports'],
      ['/images', 'Images'],
    ]) {
      await page.evaluate(`location.hash = ${JSON.stringify(route)}`);
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      await page.locator('.paging').waitFor();
      expect(await width(), route).toBeLessThanOrEqual(390);
    }
    await page.evaluate(`location.hash = '/instances'`);
    await page.locator('tr[data-instance-id]').first().waitFor();
    await shot(page, 'instances-narrow', true);
    const origins = new Set(Object.values(config.regions).map((r) => new URL(r.endpoint).origin));
    const elsewhere = requests.filter((url) => !url.startsWith('data:') && !origins.has(new URL(url).origin));
    expect(elsewhere).toEqual([]);
    expect(dialogs).toEqual([]);
  });
});
