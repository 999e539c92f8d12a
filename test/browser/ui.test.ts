import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { spawnServer, waitFor, type Listening } from '../helpers/cli.js';
import { apiOk } from '../helpers/http.js';
import { BACKENDS, freshPgDatabase, onBackend, tempDir } from '../helpers/server.js';

/**
 * The web UI in Debian's chromium (one launch for the file), driven by
 * playwright-core, against a real `hush server` process with a SQLite data
 * dir, then one on PostgreSQL (HUSH_TEST_PG_URL). The SQLite run saves every
 * page as a screenshot: into a temporary directory, or into the directory
 * HUSH_UI_SCREENSHOTS names (`HUSH_UI_SCREENSHOTS=docs/ui` refreshes the
 * ones docs/ui.md shows), so a test run leaves the checkout as it was. The browser's CSP
 * violation reports are collected for each whole run: there must be none.
 */
const CHROMIUM = process.env.HUSH_TEST_CHROMIUM || '/usr/bin/chromium';
const SKIP = existsSync(CHROMIUM) ? false : `needs chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`;
const SHOTS = process.env.HUSH_UI_SCREENSHOTS ? resolve(process.env.HUSH_UI_SCREENSHOTS) : mkdtempSync(join(tmpdir(), 'hush-ui-shots-'));

let browser: Browser;
before(async () => {
  if (!SKIP) browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
});
after(async () => {
  await browser?.close();
});

for (const backend of BACKENDS)
  describe(`the web UI in a real browser (${backend})`, { skip: SKIP || onBackend(backend).skip }, () => {
    let srv: Listening;
    let page: Page;
    let dropDb: (() => Promise<void>) | null = null;
    const violations: string[] = [];
    const consoleErrors: string[] = [];
    /** The whole page (or the top of a long one, the audit log's 50 rows) into SHOTS/NAME.png. */
    const shot = async (name: string, fullPage = true) => {
      if (backend !== 'sqlite') return;
      if (!fullPage) await page.evaluate('window.scrollTo(0, 0)');
      await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
    };
    const api = (method: string, path: string, body?: unknown) => apiOk(srv.url, srv.rootToken!, method, path, body);

    before(async () => {
      const db = backend === 'postgres' ? await freshPgDatabase() : null;
      dropDb = db?.drop ?? null;
      srv = await spawnServer([
        '--data-dir',
        join(tempDir(), 'data'),
        '--listen',
        '127.0.0.1:0',
        ...(db ? ['--database-url', db.url] : []),
      ]);
      await api('POST', '/v1/projects', { name: 'shop' });
      await api('POST', '/v1/projects/shop/envs', { name: 'prod' });
      await api('POST', '/v1/projects/shop/envs', { name: 'staging' });
      await api('PATCH', '/v1/projects/shop/envs/prod/secrets', {
        set: { DATABASE_URL: 'postgres://db/shop', API_KEY: 'sk-live-123456', LOG_LEVEL: 'info' },
      });
      await api('PATCH', '/v1/projects/shop/envs/staging/secrets', { set: { DATABASE_URL: 'postgres://db/staging', LOG_LEVEL: 'debug' } });
      const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 }, permissions: ['clipboard-read', 'clipboard-write'] });
      page = await ctx.newPage();
      page.on('console', (m) => {
        if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
        // Any other error the browser logs (a favicon 404, a failed request) is recorded too.
        else if (m.type() === 'error') consoleErrors.push(`${m.text()} ${m.location().url}`);
      });
      page.on('pageerror', (e) => violations.push(`page error: ${e.message}`));
      // Reports from the page itself, collected in the page and read at the end.
      await ctx.addInitScript(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));",
      );
    });
    after(async () => {
      await page?.context().close();
      await srv?.stop();
      await dropDb?.();
    });

    /** Form fields of the page without a label (a <label for>, a wrapping label, or aria-label). */
    const unlabelled = async () =>
      page.evaluate<string[]>(`[...document.querySelectorAll('input, select, textarea')]
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.outerHTML)`);
    const audit = async (action: string) => (await api('GET', `/v1/audit?action=${action}&order=desc&limit=5`)).events;

    it('logs in with a token; the token is kept nowhere in the page', async () => {
      await page.goto(`${srv.url}/`);
      assert.equal(new URL(page.url()).pathname, '/ui/');
      // From the keyboard: Enter in the field submits.
      await page.getByLabel('Token').fill(srv.rootToken!);
      await shot('login');
      await page.getByLabel('Token').press('Enter');
      await page.getByRole('heading', { name: 'Projects' }).waitFor();
      const cookies = await page.context().cookies();
      const c = cookies.find((x) => x.name === 'hush_session')!;
      assert.ok(c.httpOnly && c.sameSite === 'Strict');
      assert.equal(await page.evaluate('document.cookie'), '', 'no script sees the session cookie');
      assert.equal(await page.evaluate('localStorage.length + sessionStorage.length'), 0);
      assert.ok(!(await page.content()).includes(srv.rootToken!));
      await page.getByRole('link', { name: 'prod' }).waitFor();
      await shot('projects');
    });

    it('reveals one value (an audited read), edits, adds and deletes', async () => {
      await page.getByRole('link', { name: 'prod' }).click();
      await page.getByText('API_KEY').waitFor();
      assert.ok(!(await page.content()).includes('sk-live-123456'), 'masked');
      await page.getByRole('button', { name: 'Reveal API_KEY' }).click();
      await page.getByText('sk-live-123456').waitFor();
      const ev = (await audit('secret.read'))[0];
      assert.equal(ev.target.key, 'API_KEY');
      assert.equal(ev.env, 'prod');
      assert.equal(ev.actor.id, (await api('GET', '/v1/tokens/self')).id, 'recorded as the token logged in with');
      await shot('secrets');
      assert.deepEqual(await unlabelled(), []);
      // Keyboard: Tab reaches the buttons, and the focused one shows a visible outline.
      await page.getByRole('button', { name: 'Reveal DATABASE_URL' }).focus();
      await page.keyboard.press('Tab');
      const focused = await page.evaluate<string[]>(
        `(() => { const e = document.activeElement;` +
          ` const st = getComputedStyle(e);` +
          (` return [e.getAttribute('aria-label'),` + ` st.outlineStyle, st.outlineWidth]; })()`),
      );
      assert.equal(focused[0], 'Copy DATABASE_URL');
      assert.notEqual(focused[1], 'none');
      assert.notEqual(focused[2], '0px');
      // Copy without revealing: the value goes to the clipboard, not into the page, and is one more audited read.
      await page.getByRole('button', { name: 'Copy DATABASE_URL' }).click();
      await page.getByText('Copied').waitFor();
      assert.equal(await page.evaluate('navigator.clipboard.readText()'), 'postgres://db/shop');
      assert.ok(!(await page.content()).includes('postgres://db/shop'));
      assert.equal((await audit('secret.read'))[0].target.key, 'DATABASE_URL');
      await page.getByRole('button', { name: 'Edit LOG_LEVEL' }).click();
      await page.getByLabel('New value of LOG_LEVEL').fill('warn');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByLabel('New value of LOG_LEVEL').waitFor({ state: 'detached' });
      assert.equal((await api('GET', '/v1/projects/shop/envs/prod/secrets/LOG_LEVEL')).value, 'warn');
      await page.getByLabel('Name', { exact: true }).fill('FEATURE_X');
      await page.getByLabel('Value', { exact: true }).fill('on');
      await page.getByRole('button', { name: 'Add', exact: true }).click();
      await page.getByRole('button', { name: 'Delete FEATURE_X' }).click();
      await page.getByRole('button', { name: 'Confirm delete FEATURE_X' }).click();
      await page.getByRole('button', { name: 'Delete FEATURE_X' }).waitFor({ state: 'detached' });
      assert.deepEqual(Object.keys((await api('GET', '/v1/projects/shop/envs/prod/secrets')).secrets).sort(), [
        'API_KEY',
        'DATABASE_URL',
        'LOG_LEVEL',
      ]);
      // Away from the page, no value is left in it.
      await page.getByRole('link', { name: 'Tokens' }).click();
      await page.getByRole('heading', { name: 'Tokens' }).waitFor();
      assert.ok(!(await page.content()).includes('sk-live-123456'));
      assert.ok(!page.url().includes('sk-live'));
    });

    it('bulk paste previews added, changed and removed, then applies in one change', async () => {
      await page.goto(`${srv.url}/ui/#/p/shop/e/prod/bulk`);
      await page
        .getByLabel('Paste a .env file')
        .fill('# pasted\nDATABASE_URL=postgres://db/shop2\nNEW_ONE="two words"\nAPI_KEY=sk-live-123456\n');
      await page.getByLabel('Also delete the names that are not in the paste').check();
      await page.getByRole('button', { name: 'Preview' }).click();
      const preview = page.getByRole('region', { name: 'Preview' });
      await preview.waitFor();
      const text = await preview.innerText();
      assert.match(text, /Added \(1\)\s+NEW_ONE/);
      assert.match(text, /Changed \(1\)\s+DATABASE_URL/);
      assert.match(text, /Removed \(1\)\s+LOG_LEVEL/);
      assert.match(text, /1 unchanged/);
      assert.ok(!text.includes('shop2'), 'names only');
      await shot('bulk-paste');
      assert.deepEqual(await unlabelled(), []);
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.getByText(/Applied: revision/).waitFor();
      assert.deepEqual((await api('GET', '/v1/projects/shop/envs/prod/secrets')).secrets, {
        API_KEY: 'sk-live-123456',
        DATABASE_URL: 'postgres://db/shop2',
        NEW_ONE: 'two words',
      });
    });

    it('history shows a diff and rolls back; two envs compare', async () => {
      await page.goto(`${srv.url}/ui/#/p/shop/e/prod/history`);
      const before = (await api('GET', '/v1/projects/shop/envs/prod/history')).revision;
      await page.getByRole('button', { name: 'Diff to now' }).first().waitFor();
      await page.getByRole('button', { name: `Roll back to ${before - 1}` }).click();
      await page.getByText(`Rolled back to revision ${before - 1}`).waitFor();
      // A diff names names; its values come only on request, as one audited read.
      await page.getByRole('button', { name: 'Diff to now' }).first().click();
      const diff = page.getByRole('region', { name: 'Difference' });
      await diff.waitFor();
      await diff.getByRole('button', { name: /Show the values/ }).click();
      await diff.getByRole('table').waitFor();
      const read = (await audit('secret.read'))[0];
      assert.equal(read.detail.diff, true);
      await shot('history');
      assert.equal((await api('GET', '/v1/projects/shop/envs/prod/secrets/LOG_LEVEL')).value, 'warn');
      await page.goto(`${srv.url}/ui/#/p/shop/e/prod/compare`);
      await page.getByLabel(/Compare shop\/prod with/).selectOption('shop/staging');
      await page.getByRole('button', { name: 'Compare' }).click();
      const cmp = page.getByRole('region', { name: 'Comparison' });
      await cmp.waitFor();
      await cmp.getByRole('button', { name: /Show the values/ }).click();
      await cmp.getByText('postgres://db/staging').waitFor();
      await shot('compare');
    });

    it('creates a token with the scope builder (shown once) and revokes it', async () => {
      await page.getByRole('link', { name: 'Tokens' }).click();
      await page.getByRole('heading', { name: 'Tokens' }).waitFor();
      assert.ok(!(await page.content()).includes('postgres://db/staging'), 'the compared values are gone with their page');
      // The session's own token is marked, once.
      await page.getByTestId('this-session').waitFor();
      assert.equal(await page.getByTestId('this-session').count(), 1);
      const sessionId = (await audit('session.create'))[0].target.tokenId as string;
      assert.ok((await page.locator('tr:has([data-testid=this-session])').innerText()).includes(sessionId), "on the session token's row");
      await page.getByLabel('Name', { exact: true }).fill('deploy-bot');
      await page.getByLabel('Grant').selectOption('read');
      await page.getByLabel('Project (or *)').fill('shop');
      await page.getByLabel('Env (or *)').fill('prod');
      await page.getByRole('button', { name: 'Add scope' }).click();
      await page.getByRole('button', { name: 'Create token' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      const token = (await page.getByTestId('new-token').innerText()).trim();
      assert.match(token, /^hush_[0-9A-Za-z]{49}$/);
      await shot('token-created');
      assert.deepEqual(await unlabelled(), []);
      const self = await apiOk(srv.url, token, 'GET', '/v1/tokens/self');
      assert.deepEqual(self.scopes, ['read:shop/prod']);
      await dialog.getByRole('button', { name: 'Close' }).click();
      await page.getByTestId('new-token').waitFor({ state: 'detached' });
      assert.ok(!(await page.content()).includes(token), 'shown once: gone after the dialog');
      await shot('tokens');
      await page.getByRole('button', { name: 'Revoke deploy-bot' }).click();
      await page.getByRole('button', { name: 'Confirm revoke deploy-bot' }).click();
      await page.getByRole('button', { name: 'Revoke deploy-bot' }).waitFor({ state: 'detached' });
      const r = await fetch(`${srv.url}/v1/tokens/self`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 401);
    });

    it('audit log: filters, pages, and verify', async () => {
      await page.goto(`${srv.url}/ui/#/audit`);
      await page.getByRole('button', { name: 'Verify the audit chain' }).click();
      const result = page.getByTestId('verify-result');
      await result.waitFor();
      assert.match(await result.innerText(), /^Intact: \d+ events checked/);
      // Paging: more events than one page (50) of reads, then Older shows the next ones down.
      for (let i = 0; i < 55; i++) await api('GET', '/v1/projects/shop/envs/prod/secrets/API_KEY');
      await page.getByRole('button', { name: 'Filter' }).click();
      const seqs = async () => (await page.locator('table.audit tbody tr td:nth-child(1)').allInnerTexts()).map(Number);
      await waitFor(async () => (await seqs()).length === 50, 'a full first page');
      const first = await seqs();
      await page.getByRole('button', { name: 'Older' }).click();
      await waitFor(async () => (await seqs())[0] < Math.min(...first), 'the second page');
      assert.equal((await seqs())[0], Math.min(...first) - 1, 'the next event down, none skipped');
      await page.getByRole('button', { name: 'Newer' }).click();
      await waitFor(async () => (await seqs())[0] === first[0], 'back to the first page');
      await page.getByLabel('Action').fill('secret.read');
      await page.getByRole('button', { name: 'Filter' }).click();
      // The table is replaced once the filtered page arrives: every row then is a secret.read.
      const actions = () => page.locator('table.audit tbody tr td:nth-child(4)').allInnerTexts();
      await waitFor(async () => {
        const a = await actions();
        return a.length > 0 && a.every((x) => x === 'secret.read');
      }, 'the filtered audit page');
      assert.ok((await actions()).length >= 1);
      await shot('audit', false);
      assert.deepEqual(await unlabelled(), []);
    });

    it('health and backup status; every page readable on a phone', async () => {
      await page.goto(`${srv.url}/ui/#/health`);
      await page.getByText('Last backup', { exact: true }).waitFor();
      assert.match(await page.locator('dl.facts').innerText(), /Status\s+ok/);
      await shot('health');
      // A small phone (375 px): no page may scroll sideways.
      await page.setViewportSize({ width: 375, height: 800 });
      const pages: [string, string][] = [
        ['#/', 'Projects'],
        ['#/p/shop/e/prod', 'API_KEY'],
        ['#/p/shop/e/prod/bulk', 'Paste a .env file'],
        ['#/p/shop/e/prod/history', 'Roll back'],
        ['#/p/shop/e/prod/compare', 'Compare'],
        ['#/tokens', 'Create a token'],
        ['#/audit', 'Verify the audit chain'],
        ['#/health', 'Last backup'],
      ];
      const wide: string[] = [];
      for (const [hash, text] of pages) {
        await page.goto(`${srv.url}/ui/${hash}`);
        await page.getByText(text).first().waitFor();
        const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
        if (overflow > 1) wide.push(`${hash}: ${overflow}px too wide`);
        if (hash === '#/p/shop/e/prod') await shot('phone-secrets');
      }
      assert.deepEqual(wide, [], 'no sideways scrolling on a phone');
      await page.setViewportSize({ width: 1100, height: 760 });
    });

    it("bulk paste: names that are Object.prototype's are names like any other; a __proto__ line is shown as not importable", async () => {
      await api('POST', '/v1/projects/shop/envs', { name: 'dev' });
      await api('PATCH', '/v1/projects/shop/envs/dev/secrets', { set: { LOG_LEVEL: 'debug' } });
      await page.goto(`${srv.url}/ui/#/p/shop/e/dev/bulk`);
      await page.getByLabel('Paste a .env file').fill('constructor=a\ntoString=b\nhasOwnProperty=c\n__proto__=d\nLOG_LEVEL=debug\n');
      await page.getByLabel('Also delete the names that are not in the paste').check();
      await page.getByRole('button', { name: 'Preview' }).click();
      const preview = page.getByRole('region', { name: 'Preview' });
      await preview.waitFor();
      const text = await preview.innerText();
      assert.match(text, /Added \(3\)\s+constructor\s+toString\s+hasOwnProperty/);
      assert.doesNotMatch(text, /Changed|Removed/);
      assert.match(text, /Not importable.*\(1\)\s+__proto__/);
      assert.match(text, /1 unchanged/);
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.getByText(/Applied: revision/).waitFor();
      assert.deepEqual((await api('GET', '/v1/projects/shop/envs/dev/secrets')).secrets, {
        LOG_LEVEL: 'debug',
        constructor: 'a',
        hasOwnProperty: 'c',
        toString: 'b',
      });
    });

    it('edit never overwrites a change made meanwhile: cas with the version shown', async () => {
      await page.goto(`${srv.url}/ui/#/p/shop/e/dev`);
      await page.getByText('LOG_LEVEL').waitFor();
      await page.getByRole('button', { name: 'Edit LOG_LEVEL' }).click();
      await page.getByLabel('New value of LOG_LEVEL').fill('warn');
      // Someone else changes it while the form is open.
      await api('PUT', '/v1/projects/shop/envs/dev/secrets/LOG_LEVEL', { value: 'trace' });
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByText(/LOG_LEVEL was changed meanwhile/).waitFor();
      assert.equal((await api('GET', '/v1/projects/shop/envs/dev/secrets/LOG_LEVEL')).value, 'trace', 'not overwritten');
      // The browser logs the 409 it was answered: expected here.
      for (let i = consoleErrors.length - 1; i >= 0; i--) if (/status of 409/.test(consoleErrors[i])) consoleErrors.splice(i, 1);
      // Saved again, knowingly, against the version now shown.
      await page.getByText('v2 ·').waitFor();
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByLabel('New value of LOG_LEVEL').waitFor({ state: 'detached' });
      assert.equal((await api('GET', '/v1/projects/shop/envs/dev/secrets/LOG_LEVEL')).value, 'warn');
    });

    it('a session cookie planted by another port of this host (longer path) is refused: both cleared, the login shows', async () => {
      // What a page on another port can do (cookies do not separate ports): set hush_session with Path=/v1,
      // sent before ours. Here the planter's own session.
      const planted = await fetch(`${srv.url}/v1/ui/session`, {
        method: 'POST',
        headers: { authorization: `Bearer ${srv.rootToken!}`, origin: srv.url },
      });
      const value = (planted.headers.get('set-cookie') ?? '').split(';')[0].split('=')[1];
      await page
        .context()
        .addCookies([{ name: 'hush_session', value, domain: '127.0.0.1', path: '/v1', httpOnly: false, sameSite: 'Lax' }]);
      await page.goto(`${srv.url}/ui/#/tokens`);
      await page.getByText(/set a second session cookie/).waitFor();
      await page.getByLabel('Token').waitFor();
      assert.deepEqual(
        (await page.context().cookies()).filter((c) => c.name === 'hush_session'),
        [],
        'both cleared',
      );
      // The browser logs the 401 it was answered: expected here.
      for (let i = consoleErrors.length - 1; i >= 0; i--) if (/status of 401/.test(consoleErrors[i])) consoleErrors.splice(i, 1);
      // Log in again for what follows.
      await page.getByLabel('Token').fill(srv.rootToken!);
      await page.getByLabel('Token').press('Enter');
      await page.getByRole('heading', { name: 'Tokens' }).waitFor();
      await page.goto(`${srv.url}/ui/#/`);
      await page.getByRole('heading', { name: 'Projects' }).waitFor();
    });

    it('logs out: the session token is revoked', async () => {
      const id = (await audit('session.create'))[0].target.tokenId;
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByLabel('Token').waitFor();
      const tokens = (await api('GET', '/v1/tokens?includeRevoked=true')).tokens as { id: string; revokedAt: string | null }[];
      assert.notEqual(tokens.find((t) => t.id === id)!.revokedAt, null);
      assert.deepEqual(await page.context().cookies(), [], 'the cookie is cleared');
      const end = (await audit('session.end'))[0];
      assert.equal(end.detail.reason, 'logout');
      assert.equal(end.target.tokenId, id);
    });

    it('the browser reported no CSP violation, and logged no error, during the whole run', async () => {
      const inPage = await page.evaluate<string[]>('window.__csp');
      assert.deepEqual([...violations, ...inPage], []);
      assert.deepEqual(consoleErrors, []);
    });
  });
