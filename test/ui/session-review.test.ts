import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jsonRequest } from '../helpers/http.js';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';

/**
 * Web UI sessions, as an outside review of issue 18 found them wanting
 * (docs/ui.md): the last-use update must be a real write on both engines,
 * a page load is no failed authentication, a second (planted) session
 * cookie is refused, and a cookie request from another site does nothing.
 */

const cookieOf = (h: Headers) => (h.get('set-cookie') ?? '').split(';')[0];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function login(s: TestServer, token = s.rootToken) {
  const r = await jsonRequest(s.url, 'POST', '/v1/ui/session', { token, headers: { origin: s.url } });
  assert.equal(r.status, 201, r.text);
  return cookieOf(r.headers);
}

const countEvents = async (s: TestServer, query: string) =>
  ((await s.api('GET', `/v1/audit?${query}&limit=1000`)).body.events as unknown[]).length;

for (const backend of BACKENDS) {
  describe(`web UI sessions, review fixes (${backend})`, onBackend(backend), () => {
    let s: TestServer;
    // Idle timeout 2 s: the last-use time moves at most every second.
    before(async () => {
      s = await startOn(backend, { 'ui-idle-timeout': '2s', 'auth-fail-limit': '5' });
    });
    after(async () => {
      await s?.close();
    });

    it('a session in constant use lives past the idle timeout (its last-use time is written); left idle, it ends', async () => {
      const cookie = await login(s);
      const started = Date.now();
      // Requests every 400 ms for 5 s: each touch interval (1 s) passes several times, the timeout (2 s) twice over.
      while (Date.now() - started < 5000) {
        const r = await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } });
        assert.equal(r.status, 200, `${Date.now() - started} ms after login: ${r.text}`);
        await sleep(400);
      }
      await sleep(2600);
      const r = await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } });
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'session_expired');
    });

    it("a page load's session probe without a cookie is no failed authentication: 50 of them lock nothing out", async () => {
      const fails = await countEvents(s, 'action=auth.fail');
      for (let i = 0; i < 50; i++) {
        const r = await jsonRequest(s.url, 'GET', '/v1/ui/session');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.token, null);
        assert.equal(r.body.idleTimeoutSeconds, 2);
      }
      assert.equal((await s.api('GET', '/v1/projects')).status, 200, 'a valid token still works from this address');
      assert.equal(await countEvents(s, 'action=auth.fail'), fails, 'no auth.fail event');
      // A bad token on the probe is still a failure, and a session answers its token.
      assert.equal((await jsonRequest(s.url, 'GET', '/v1/ui/session', { token: 'hush_wrong' })).status, 401);
      const me = await jsonRequest(s.url, 'GET', '/v1/ui/session', { headers: { cookie: await login(s) } });
      assert.equal(me.status, 200);
      assert.equal(me.body.token.name, 'root');
      const newest = (await s.api('GET', '/v1/audit?action=session.create&order=desc&limit=1')).body.events[0].target.tokenId;
      assert.equal(me.body.sessionTokenId, newest, "the session's own token, for the token list to mark");
    });

    it('two session cookies (one planted by another page of this host) are refused and cleared on every path', async () => {
      const victim = await login(s);
      const planted = await login(s);
      for (const cookie of [`${planted}; ${victim}`, `${victim}; ${planted}`, `${victim}; ${victim}`]) {
        const r = await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } });
        assert.equal(r.status, 401, cookie);
        assert.equal(r.body.error.code, 'session_ambiguous');
        const set = r.headers.getSetCookie();
        for (const path of ['/', '/v1', '/ui'])
          assert.ok(
            set.some((c) => c.startsWith('hush_session=;') && c.includes(`Path=${path};`) && c.includes('Max-Age=0')),
            `cleared on ${path}: ${set.join(' | ')}`,
          );
      }
      const write = await jsonRequest(s.url, 'POST', '/v1/projects', {
        body: { name: 'fixated' },
        headers: { cookie: `${planted}; ${victim}`, origin: s.url },
      });
      assert.equal(write.status, 401);
      assert.equal((await s.api('GET', '/v1/projects/fixated/envs')).status, 404, 'nothing made in either session');
      // Each alone still works; logout revokes the session of the cookie given.
      assert.equal((await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie: victim } })).status, 200);
      assert.equal((await jsonRequest(s.url, 'DELETE', '/v1/ui/session', { headers: { cookie: victim, origin: s.url } })).status, 204);
      assert.equal((await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie: victim } })).status, 401);
      assert.equal((await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie: planted } })).status, 200);
    });

    it('a read with the cookie from another site (Sec-Fetch-Site same-site or cross-site) is refused: no audited read, session untouched', async () => {
      const cookie = await login(s);
      assert.equal((await s.api('POST', '/v1/projects', { name: 'xsite' })).status, 201);
      assert.equal((await s.api('POST', '/v1/projects/xsite/envs', { name: 'prod' })).status, 201);
      assert.equal((await s.api('PUT', '/v1/projects/xsite/envs/prod/secrets/K', { value: 'v' })).status, 200);
      const reads = await countEvents(s, 'action=secret.read&project=xsite');
      for (const site of ['same-site', 'cross-site']) {
        const r = await jsonRequest(s.url, 'GET', '/v1/projects/xsite/envs/prod/secrets/K', {
          headers: { cookie, 'sec-fetch-site': site },
        });
        assert.equal(r.status, 403, site);
        assert.equal(r.body.error.code, 'csrf_refused');
        assert.equal(r.headers.get('set-cookie'), null, 'the session is kept');
      }
      assert.equal(await countEvents(s, 'action=secret.read&project=xsite'), reads, 'nothing read');
      // The UI itself (same-origin), the address bar (none) and a client that is no browser (no header) read.
      for (const headers of <Record<string, string>[]>[
        { cookie, 'sec-fetch-site': 'same-origin' },
        { cookie, 'sec-fetch-site': 'none' },
        { cookie },
      ]) {
        assert.equal(
          (await jsonRequest(s.url, 'GET', '/v1/projects/xsite/envs/prod/secrets/K', { headers })).status,
          200,
          JSON.stringify(headers),
        );
      }
    });

    it("every answer under /ui and the / redirect carries the page's security headers, 404s included", async () => {
      for (const path of ['/', '/ui', '/ui/', '/ui/nope', '/ui/app.js', '/ui/favicon.svg', '/ui/x/../../ui/y']) {
        const r = await fetch(`${s.url}${path}`, { redirect: 'manual' });
        const csp = r.headers.get('content-security-policy') ?? '';
        assert.match(csp, /default-src 'none'/, `${path} (${r.status})`);
        assert.match(csp, /frame-ancestors 'none'/, path);
        assert.equal(r.headers.get('cache-control'), 'no-store', path);
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
      }
      const icon = await fetch(`${s.url}/ui/favicon.svg`);
      assert.equal(icon.status, 200);
      assert.match(icon.headers.get('content-type') ?? '', /^image\/svg\+xml/);
    });
  });
}
