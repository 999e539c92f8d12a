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

for (const backend of BACKENDS) {
  describe(`web UI sessions, review fixes (${backend})`, onBackend(backend), () => {
    let s: TestServer;
    // Idle timeout 2 s: the last-use time moves at most every second.
    before(async () => { s = await startOn(backend, { 'ui-idle-timeout': '2s', 'auth-fail-limit': '5' }); });
    after(async () => { await s?.close(); });

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
  });
}
