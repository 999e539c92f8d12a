/**
 * One deterministic test per bug the reliability suites found, named after
 * the bug, so a regression fails here with a readable name even when a
 * property test would need the right seed to hit it again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, onBackend, capturedLogs, startOn, type TestServer } from '../helpers/server.js';
import {
  assertErrorShape,
  assertNoLeaks,
  auditEvents,
  call,
  makeEnv,
  observe,
  rawHttp,
  rememberSecret,
  scanText,
  secretValue,
} from './support.js';

const BASE = '/v1/projects/reg/envs/prod/secrets';

/** The standard error shape plus the headers every answer carries. */
function standard(r: { status: number; body: any; headers: Headers }, status: number, code: string) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assertErrorShape(r, code);
  assert.equal(r.body.error.code, code);
  assert.equal(r.headers.get('x-request-id'), r.body.error.requestId);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
}

for (const backend of BACKENDS) {
  describe(`regressions on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    let token: string;
    before(async () => {
      s = await startOn(backend);
      token = s.rootToken;
      rememberSecret(token);
      await makeEnv(s.url, token, 'reg', 'prod');
    });
    after(async () => {
      await s.close();
    });

    it('invalid UTF-8 in a JSON body is refused (it was stored as U+FFFD)', async () => {
      const body = Buffer.concat([Buffer.from('{"value":"'), Buffer.from([0x61, 0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80]), Buffer.from('"}')]);
      const r = await call(s.url, 'PUT', `${BASE}/UTF8`, { token, raw: body });
      standard(r, 400, 'invalid_json');
      assert.match(r.body.error.message, /UTF-8/);
      assert.equal((await call(s.url, 'GET', `${BASE}/UTF8`, { token })).status, 404, 'nothing was stored');
      const ok = await call(s.url, 'PUT', `${BASE}/UTF8`, { token, raw: Buffer.from('{"value":"é € 💩 \u202e"}') });
      assert.equal(ok.status, 200);
      assert.equal((await call(s.url, 'GET', `${BASE}/UTF8`, { token })).body.value, 'é € 💩 \u202e');
    });

    it("bad percent-encoding gets the standard error shape, without echoing the path (it was Fastify's " + 'own shape)', async () => {
      const r = await call(s.url, 'GET', '/v1/projects/%E0%A4%A/envs', { token });
      standard(r, 400, 'invalid_request');
      assert.doesNotMatch(r.text, /%E0%A4%A/);
    });

    it('a path segment over 300 characters gets 414 uri_too_long in the standard shape', async () => {
      const r = await call(s.url, 'GET', `/v1/projects/${'a'.repeat(301)}/envs`, { token });
      standard(r, 414, 'uri_too_long');
      assert.doesNotMatch(r.text, /aaaaaaaaaa/);
    });

    it("overlong headers get 431 headers_too_large in the standard shape (it was Fastify's own shape)", async () => {
      const r = await rawHttp(
        s.url,
        Buffer.from(`GET /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Big: ` + `${'b'.repeat(20_000)}\r\n\r\n`),
      );
      assert.equal(r.status, 431);
      const body = JSON.parse(r.body);
      assertErrorShape({ status: r.status, body }, '431');
      assert.equal(body.error.code, 'headers_too_large');
      assert.equal(r.headers['x-request-id'], body.error.requestId);
      assert.equal(r.headers['cache-control'], 'no-store');
    });

    it('malformed HTTP gets 400 in the standard shape and its bytes (Authorization included) are never ' + 'logged', async () => {
      const before_ = capturedLogs.length;
      const r = await rawHttp(
        s.url,
        Buffer.from(`GET /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Nul: a\u0000b\r\n\r\n`, 'latin1'),
      );
      assert.equal(r.status, 400);
      assert.equal(JSON.parse(r.body).error.code, 'invalid_request');
      await new Promise((res) => setTimeout(res, 50));
      for (const l of capturedLogs.slice(before_)) assert.ok(!l.includes(token.slice(5, 25)), 'the raw request reached the log');
    });

    it('a token-shaped X-Request-Id is replaced, never echoed into bodies, logs or audit events', async () => {
      const fake = `hush_${'Ab1'.repeat(16)}x`;
      const r = await call(s.url, 'GET', `${BASE}/NOPE`, { token, headers: { 'x-request-id': fake } });
      assert.equal(r.status, 404);
      assert.notEqual(r.body.error.requestId, fake);
      assert.match(r.body.error.requestId, /^req_[0-9a-f]{16}$/);
    });

    it(
      "a client's X-Request-Id never becomes the request id: the server keeps its own and records the " + "client's beside it (finding 9)",
      async () => {
        // The attack: replay the request id of an earlier event (here a backup's) so a new event is filed under it.
        const earlier = await call(s.url, 'GET', `${BASE}/NOPE`, { token });
        const replayed = earlier.body.error.requestId as string;
        const r = await call(s.url, 'GET', '/v1/projects/reg-nope', { token, headers: { 'x-request-id': replayed } });
        assert.equal(r.status, 404);
        assert.notEqual(r.body.error.requestId, replayed, "the response names the server's id, not the one sent");
        assert.match(r.body.error.requestId, /^req_[0-9a-f]{16}$/);
        assert.equal(r.headers.get('x-request-id'), r.body.error.requestId);
        const w = await call(s.url, 'PUT', `${BASE}/RID_CHECK`, {
          token,
          body: { value: secretValue() },
          headers: { 'x-request-id': replayed },
        });
        assert.equal(w.status, 200, w.text);
        const ev = (await auditEvents(s.url, token)).filter((e: any) => e.target.key === 'RID_CHECK');
        assert.equal(ev.length, 1);
        assert.equal(ev[0].requestId, w.headers.get('x-request-id'), "the event is filed under the server's id");
        assert.notEqual(ev[0].requestId, replayed);
        assert.equal(ev[0].detail.clientRequestId, replayed, "the client's id is kept, in its own field");
      },
    );

    it(
      'a bulk set of names like "constructor" and "toString" on an empty env reports them as added ' + '(they were "changed")',
      async () => {
        await makeEnv(s.url, token, 'reg', 'proto');
        const r = await call(s.url, 'PATCH', '/v1/projects/reg/envs/proto/secrets', {
          token,
          body: { set: { constructor: secretValue(), toString: secretValue(), valueOf: secretValue() } },
        });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual([...r.body.added].sort(), ['constructor', 'toString', 'valueOf']);
        assert.deepEqual(r.body.changed, []);
      },
    );

    it(
      'NUL in a token description, a token name filter or an audit filter is a 400, not a 500 ' + '(PostgreSQL could not store it)',
      async () => {
        standard(
          await call(s.url, 'POST', '/v1/tokens', {
            token,
            body: { name: 'n', scopes: ['read:reg/prod'], ttl: '1h', description: 'a\u0000b' },
          }),
          400,
          'invalid_request',
        );
        standard(
          await call(s.url, 'POST', '/v1/tokens', { token, body: { name: 'n\ud800', scopes: ['read:reg/prod'], ttl: '1h' } }),
          400,
          'invalid_request',
        );
        for (const q of ['actor', 'action', 'project', 'env'])
          standard(await call(s.url, 'GET', `/v1/audit?${q}=a%00b`, { token }), 400, 'invalid_request');
        standard(await call(s.url, 'GET', '/v1/tokens?name=a%00b', { token }), 400, 'invalid_request');
        standard(await call(s.url, 'GET', '/v1/projects/reg/envs/prod/secrets?only=A%00,B', { token }), 400, 'invalid_request');
      },
    );

    it(
      'a NUL in a path parameter is refused before it can reach the audit log, and never fails the ' +
        'requests batched with it (PostgreSQL: every concurrent write got 503)',
      async () => {
        const statuses = new Map<string, number>();
        const tally = (k: string) => statuses.set(k, (statuses.get(k) ?? 0) + 1);
        const good = async (i: number) => {
          for (let n = 0; n < 25; n++) {
            const r = await call(s.url, 'PUT', `${BASE}/BATCH_${i}`, { token, body: { value: secretValue() } });
            tally(`good ${r.status}`);
          }
        };
        const bad = async () => {
          for (let n = 0; n < 25; n++) {
            const r = await call(s.url, 'GET', '/v1/projects/a%00b/envs/prod/secrets/K', { token });
            assert.equal(r.status, 400);
            tally(`bad ${r.status}`);
          }
        };
        await Promise.all([good(1), good(2), good(3), bad(), bad()]);
        assert.deepEqual(Object.fromEntries(statuses), { 'good 200': 75, 'bad 400': 50 });
      },
    );

    it('no value or token in any log line, error body or audit event', async (t) => {
      await auditEvents(s.url, token);
      for (const l of capturedLogs) observe('server log', l);
      assertNoLeaks(t, `regressions ${backend}`);
    });
  });
}

describe('the leak scan itself', () => {
  it('finds a planted secret value, a planted token and a token-shaped string (positive control)', () => {
    const v = secretValue('-planted');
    assert.equal(scanText(`{"msg":"oops ${v}"}`).length, 1);
    const tok = `hush_${'Zz9'.repeat(16)}q`;
    rememberSecret(tok);
    assert.deepEqual(
      scanText(`Authorization: Bearer ${tok}`).map((l) => l.what),
      ['token'],
    );
    assert.deepEqual(
      scanText(`x hush_${'Q1'.repeat(12)} y`).map((l) => l.what),
      ['token-shaped string'],
    );
    assert.deepEqual(scanText('{"msg":"[redacted-token] and SECRETv-not-a-value"}'), []);
  });
});
