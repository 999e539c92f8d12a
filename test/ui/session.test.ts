import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { migrationSource } from '../../migrations/index.js';
import { openDb } from '../../vault/store/db.js';
import { after, before, describe, it } from 'node:test';
import { jsonRequest } from '../helpers/http.js';
import { BACKENDS, capturedLogs, onBackend, startOn, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { OPENSSL_SKIP, selfSigned } from '../helpers/tls.js';

/** The session cookie (name=value) from a login's Set-Cookie. */
const cookieOf = (h: Headers) => (h.get('set-cookie') ?? '').split(';')[0];

async function login(s: TestServer, token: string, origin = s.url) {
  return jsonRequest(s.url, 'POST', '/v1/ui/session', { token, headers: { origin } });
}

/** The id of the newest session's token (its session.create event), and whether that token is revoked, asked with the root token. */
const newestSessionId = async (s: TestServer) =>
  (await s.api('GET', '/v1/audit?action=session.create&order=desc&limit=1')).body.events[0].target.tokenId as string;
const revoked = async (s: TestServer, id: string) =>
  ((await s.api('GET', '/v1/tokens?includeRevoked=true')).body.tokens as { id: string; revokedAt: string | null }[]).find(
    (t) => t.id === id,
  )!.revokedAt !== null;

for (const backend of BACKENDS) {
  describe(`web UI sessions (${backend})`, onBackend(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend, { 'ui-idle-timeout': '2s' });
    });
    after(async () => {
      await s?.close();
    });

    it('GET / redirects to /ui/, served with a strict CSP and no-store', async () => {
      const r = await fetch(`${s.url}/`, { redirect: 'manual' });
      assert.equal(r.status, 302);
      assert.equal(r.headers.get('location'), '/ui/');
      const ui = await fetch(`${s.url}/ui/`);
      assert.equal(ui.status, 200);
      const csp = ui.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /style-src 'self'(;|$)/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
      assert.equal(ui.headers.get('cache-control'), 'no-store');
      const page = await ui.text();
      assert.doesNotMatch(page, /<script>|<style|style=|https?:\/\//, 'no inline script or style, no other origin');
      const js = await fetch(`${s.url}/ui/app.js`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type') ?? '', /javascript/);
      assert.doesNotMatch(await js.text(), /https?:\/\/(?!www\.w3\.org)[a-z]/i, 'the bundle loads nothing from another origin');
    });

    it('login sets an HttpOnly SameSite=Strict cookie bound to a child token; the cookie works for the API; logout revokes it', async () => {
      const r = await login(s, s.rootToken);
      assert.equal(r.status, 201, r.text);
      const set = r.headers.get('set-cookie') ?? '';
      assert.match(set, /^hush_session=hush_[0-9A-Za-z]{49}; Path=\/; HttpOnly; SameSite=Strict$/);
      assert.ok(!set.includes(s.rootToken), 'the cookie is not the token logged in with');
      assert.equal(r.body.idleTimeoutSeconds, 2);
      const cookie = cookieOf(r.headers);
      const sessionToken = cookie.split('=')[1];
      const sessionId = await newestSessionId(s);
      // The session token is a child of the root token, with the same scopes.
      const tokens = (await s.api('GET', '/v1/tokens')).body.tokens as { id: string; name: string; parentId: string; scopes: string[] }[];
      const rootId = (await s.api('GET', '/v1/tokens/self')).body.id;
      const child = tokens.find((t) => t.name === 'web UI session' && t.parentId === rootId);
      assert.ok(child, 'a child token of the one logged in with');
      assert.equal(child.id, sessionId);
      assert.deepEqual(child.scopes, ['root']);
      // The API answers with the cookie as it does with the token logged in with.
      const me = await jsonRequest(s.url, 'GET', '/v1/ui/session', { headers: { cookie } });
      assert.equal(me.status, 200);
      assert.equal(me.body.token.id, rootId);
      assert.equal(
        (await jsonRequest(s.url, 'POST', '/v1/projects', { body: { name: 'web' }, headers: { cookie, origin: s.url } })).status,
        201,
      );
      // The session's token works only in its cookie (where the idle timeout applies), not as a bearer token.
      const bearer = await jsonRequest(s.url, 'GET', '/v1/projects', { token: sessionToken });
      assert.equal(bearer.status, 401);
      assert.equal(bearer.body.error.code, 'unauthorized');
      assert.equal((await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } })).status, 200, 'the session goes on');
      // Logout: 204, the cookie cleared, the session token revoked.
      const out = await jsonRequest(s.url, 'DELETE', '/v1/ui/session', { headers: { cookie, origin: s.url } });
      assert.equal(out.status, 204);
      assert.match(out.headers.get('set-cookie') ?? '', /^hush_session=; .*Max-Age=0/);
      assert.equal((await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } })).status, 401);
      assert.equal(await revoked(s, sessionId), true);
      // The session's token is in no log line and no audit event.
      assert.ok(!capturedLogs.some((l) => l.includes(sessionToken)), 'not logged');
      assert.ok(!(await s.api('GET', '/v1/audit?limit=1000')).text.includes(sessionToken), 'not audited');
      const events = (await s.api('GET', '/v1/audit?action=session.end')).body.events;
      assert.equal(events.at(-1).detail.reason, 'logout');
    });

    it('CSRF: a request that changes something with the cookie from another origin, or none, is refused', async () => {
      const cookie = cookieOf((await login(s, s.rootToken)).headers);
      for (const headers of <Record<string, string>[]>[
        { cookie, origin: 'http://evil.example' },
        { cookie },
        { cookie, origin: s.url, 'sec-fetch-site': 'cross-site' },
      ]) {
        const r = await jsonRequest(s.url, 'POST', '/v1/projects', { body: { name: 'csrf' }, headers });
        assert.equal(r.status, 403, JSON.stringify(headers));
        assert.equal(r.body.error.code, 'csrf_refused');
      }
      assert.equal((await s.api('GET', '/v1/projects/csrf/envs')).status, 404, 'nothing was made');
      // A login from another origin is refused too.
      const cross = await login(s, s.rootToken, 'http://evil.example');
      assert.equal(cross.status, 403);
      assert.equal(cross.headers.get('set-cookie'), null);
      // Reads need no Origin.
      assert.equal((await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } })).status, 200);
    });

    it('revoking the token logged in with ends the session', async () => {
      const made = await s.api('POST', '/v1/tokens', { name: 'person', scopes: ['read:web/*'] });
      const cookie = cookieOf((await login(s, made.body.token)).headers);
      assert.equal((await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } })).status, 200);
      assert.equal((await s.api('DELETE', `/v1/tokens/${made.body.id}`)).status, 200);
      const r = await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } });
      assert.equal(r.status, 401);
      assert.match(r.headers.get('set-cookie') ?? '', /Max-Age=0/);
    });

    it('the session has no more scopes than its token, and tokens made in it belong to that token', async () => {
      const made = await s.api('POST', '/v1/tokens', { name: 'reader', scopes: ['read:web/*'] });
      const cookie = cookieOf((await login(s, made.body.token)).headers);
      const denied = await jsonRequest(s.url, 'POST', '/v1/projects', { body: { name: 'nope' }, headers: { cookie, origin: s.url } });
      assert.equal(denied.status, 403);
      assert.equal(denied.body.error.code, 'forbidden');
      const child = await jsonRequest(s.url, 'POST', '/v1/tokens', {
        body: { name: 'ci', scopes: ['read:web/prod'] },
        headers: { cookie, origin: s.url },
      });
      assert.equal(child.status, 201);
      assert.equal(child.body.parentId, made.body.id);
      await jsonRequest(s.url, 'DELETE', '/v1/ui/session', { headers: { cookie, origin: s.url } });
      assert.equal((await jsonRequest(s.url, 'GET', '/v1/tokens/self', { token: child.body.token })).status, 200, 'outlives the session');
    });

    it('an idle session ends (session_expired) and its token is revoked; sessions nobody comes back to are revoked at the next login', async () => {
      const cookie = cookieOf((await login(s, s.rootToken)).headers);
      const id = await newestSessionId(s);
      assert.equal((await login(s, s.rootToken)).status, 201);
      const left = await newestSessionId(s);
      assert.equal((await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } })).status, 200);
      await new Promise((r) => setTimeout(r, 2600));
      const r = await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } });
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'session_expired');
      assert.match(r.headers.get('set-cookie') ?? '', /Max-Age=0/);
      assert.equal(await revoked(s, id), true);
      // The session left alone: its token is revoked when a login sweeps it.
      assert.equal(await revoked(s, left), false);
      assert.equal((await login(s, s.rootToken)).status, 201);
      assert.equal(await revoked(s, left), true, 'swept at the next login');
      const ends = (await s.api('GET', '/v1/audit?action=session.end&order=desc&limit=2')).body.events;
      assert.ok(
        ends.some((e: { actor: { id: string }; detail: { reason: string } }) => e.actor.id === 'system' && e.detail.reason === 'idle'),
      );
    });

    it('a bearer token in a cookie is no session', async () => {
      const r = await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie: `hush_session=${s.rootToken}` } });
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'session_expired');
    });
  });
}

describe('--no-ui', () => {
  it('turns the UI and its sessions off', async () => {
    const s = await startServer({ settings: { ui: 'false' } });
    try {
      assert.equal((await fetch(`${s.url}/`, { redirect: 'manual' })).status, 404);
      assert.equal((await fetch(`${s.url}/ui/`)).status, 404);
      const r = await login(s, s.rootToken);
      assert.equal(r.status, 404);
      assert.equal(r.headers.get('set-cookie'), null);
    } finally {
      await s.close();
    }
  });
});

describe('a vault made before web UI sessions', () => {
  it('gains the sessions table on the next start and logs in', async () => {
    const dir = tempDir('hush-ui-upgrade-');
    const first = await startServer({ dataDir: dir });
    const root = first.rootToken;
    await first.close({ keepDir: true });
    // The schema as the release before this one left it.
    const db = openDb({ url: `sqlite:${join(dir, 'hush.db')}` });
    try {
      await db.migrate.down({ migrationSource, name: '20261210000000_ui_sessions' });
      assert.equal(await db.schema.hasTable('ui_sessions'), false);
    } finally {
      await db.destroy();
    }
    const next = await startServer({ dataDir: dir });
    try {
      const r = await login(next, root);
      assert.equal(r.status, 201, r.text);
      assert.equal((await jsonRequest(next.url, 'GET', '/v1/projects', { headers: { cookie: cookieOf(r.headers) } })).status, 200);
    } finally {
      await next.close();
    }
  });
});

describe('an address locked out by failed authentications', () => {
  it('gets 429 with its session cookie, which is not cleared', async () => {
    const s = await startServer({ settings: { 'auth-fail-limit': '2' } });
    try {
      const cookie = cookieOf((await login(s, s.rootToken)).headers);
      for (let i = 0; i < 2; i++) assert.equal((await jsonRequest(s.url, 'GET', '/v1/projects', { token: 'hush_wrong' })).status, 401);
      const r = await jsonRequest(s.url, 'GET', '/v1/projects', { headers: { cookie } });
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('set-cookie'), null);
    } finally {
      await s.close();
    }
  });
});

describe('a sealed server', () => {
  it('still serves the UI page, and a login answers 503 sealed', async () => {
    const s = await startServer();
    try {
      assert.equal((await s.api('POST', '/v1/sys/seal', {})).status, 200);
      const page = await fetch(`${s.url}/ui/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
      const r = await login(s, s.rootToken);
      assert.equal(r.status, 503);
      assert.equal(r.body.error.code, 'sealed');
      assert.equal(r.headers.get('set-cookie'), null);
    } finally {
      await s.close();
    }
  });
});

describe('web UI sessions under TLS', { skip: OPENSSL_SKIP }, () => {
  it('the cookie is Secure and __Host- prefixed, and only that name is read', async () => {
    const pair = selfSigned(tempDir('hush-ui-tls-'));
    const s = await startServer({ settings: { 'tls-cert': pair.cert, 'tls-key': pair.key } });
    const ca = readFileSync(pair.cert);
    const call = (method: string, path: string, headers: Record<string, string>) =>
      new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
        const req = request(`${s.url}${path}`, { method, headers, ca }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      assert.match(s.url, /^https:/);
      const r = await call('POST', '/v1/ui/session', { authorization: `Bearer ${s.rootToken}`, origin: s.url });
      assert.equal(r.status, 201);
      const set = String(r.headers['set-cookie']);
      assert.match(set, /^__Host-hush_session=hush_[0-9A-Za-z]{49}; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
      const value = set.split(';')[0].split('=')[1];
      assert.equal((await call('GET', '/v1/projects', { cookie: `__Host-hush_session=${value}` })).status, 200);
      // Without the prefix, the cookie could have been set by a sibling host or over plain HTTP: not read.
      assert.equal((await call('GET', '/v1/projects', { cookie: `hush_session=${value}` })).status, 401);
    } finally {
      await s.close();
    }
  });
});
