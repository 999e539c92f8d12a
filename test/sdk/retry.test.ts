import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { createClient, isTimeoutError, isUnavailableError, type HushClient } from 'hush-vault-sdk';
import { closedPort, errorBody, scriptServer, unknownToken, type ScriptServer } from './helpers.js';

let s: TestServer;
let proxy: ScriptServer;
let client: HushClient;
const fast = { limit: 3, backoffMs: 10, maxBackoffMs: 20 };

before(async () => {
  s = await startServer({ settings: { 'auth-fail-limit': '1000' } });
  await s.api('POST', '/v1/projects', { name: 'api' });
  await s.api('POST', '/v1/projects/api/envs', { name: 'prod' });
  await s.api('PUT', '/v1/projects/api/envs/prod/secrets/A', { value: '1' });
  proxy = await scriptServer(s.url);
  client = createClient({ addr: proxy.url, token: s.rootToken, retries: fast });
});
after(async () => {
  await proxy.close();
  await s.close();
});

/** Fail the first `n` requests with `status`, then pass through to the real server. */
function failFirst(n: number, status: number, headers?: Record<string, string>) {
  proxy.requests = [];
  proxy.script = (i) => (i < n ? { status, headers, body: errorBody(status === 429 ? 'rate_limited' : 'storage_unavailable') } : 'proxy');
}

describe('retries', () => {
  test('a GET is retried after 503 and then succeeds', async () => {
    failFirst(2, 503);
    const r = await client.secrets.getAll('api', 'prod');
    assert.equal(r.secrets.A, '1');
    assert.equal(proxy.requests.length, 3);
    // One request id for the call and its retries.
    assert.equal(new Set(proxy.requests.map((q) => q.headers['x-request-id'])).size, 1);
  });

  test('502 and 504 are retried too, for PUT and DELETE', async () => {
    failFirst(1, 502);
    await client.secrets.set('api', 'prod', 'B', '2');
    assert.equal(proxy.requests.length, 2);
    failFirst(1, 504);
    await client.secrets.delete('api', 'prod', 'B');
    assert.equal(proxy.requests.length, 2);
  });

  test('retries stop at the limit and throw UnavailableError', async () => {
    failFirst(100, 503);
    const err = await client.projects.list().catch((e: unknown) => e);
    assert.ok(isUnavailableError(err));
    assert.equal(err.code, 'storage_unavailable');
    assert.equal(err.status, 503);
    assert.equal(proxy.requests.length, 4);
  });

  test('POST and PATCH are never retried, even after 503', async () => {
    failFirst(1, 503);
    await assert.rejects(client.projects.create('web'), { name: 'UnavailableError' });
    assert.equal(proxy.requests.length, 1);
    failFirst(1, 503);
    await assert.rejects(client.secrets.bulk('api', 'prod', { set: { X: '1' } }), { name: 'UnavailableError' });
    assert.equal(proxy.requests.length, 1);
  });

  test('a PUT with cas is not retried after 503 (a replay could fake a conflict)', async () => {
    failFirst(1, 503);
    await assert.rejects(client.secrets.set('api', 'prod', 'A', '2', { cas: 1 }), { status: 503 });
    assert.equal(proxy.requests.length, 1);
  });

  test('400 is not retried', async () => {
    proxy.requests = [];
    proxy.script = () => 'proxy';
    await assert.rejects(client.secrets.set('api', 'prod', 'not-a-valid-name!', 'v'), { name: 'ValidationError', status: 400 });
    assert.equal(proxy.requests.length, 1);
  });

  test('401 is not retried', async () => {
    proxy.requests = [];
    proxy.script = () => 'proxy';
    const bad = createClient({ addr: proxy.url, token: unknownToken(), retries: fast });
    await assert.rejects(bad.secrets.getAll('api', 'prod'), { name: 'AuthError', status: 401 });
    assert.equal(proxy.requests.length, 1);
  });

  test('403, 404 and 409 are not retried', async () => {
    proxy.requests = [];
    proxy.script = () => 'proxy';
    await assert.rejects(client.secrets.get('api', 'prod', 'MISSING'), { status: 404 });
    await assert.rejects(client.secrets.set('api', 'prod', 'A', 'x', { cas: 0 }), { status: 409 });
    assert.equal(proxy.requests.length, 2);
    failFirst(1, 403);
    await assert.rejects(client.secrets.get('api', 'prod', 'A'), { name: 'ForbiddenError' });
    assert.equal(proxy.requests.length, 1);
  });

  test('429 is retried after the Retry-After the server asked for', async () => {
    failFirst(1, 429, { 'retry-after': '1' });
    const started = Date.now();
    await client.secrets.getAll('api', 'prod');
    const waited = Date.now() - started;
    assert.equal(proxy.requests.length, 2);
    assert.ok(waited >= 950, `waited only ${waited} ms`);
  });

  test('a network error is retried, then thrown as UnavailableError network_error', async () => {
    const c = createClient({ addr: await closedPort(), token: s.rootToken, retries: fast });
    const err = await c.projects.list().catch((e: unknown) => e);
    assert.ok(isUnavailableError(err));
    assert.equal(err.code, 'network_error');
    assert.equal(err.status, undefined);
    assert.match(err.message, /ECONNREFUSED/);
  });
});

describe('timeouts and offline checks', () => {
  test('a server that never answers gives TimeoutError after timeoutMs, without retrying', async () => {
    const hang = await scriptServer();
    hang.script = () => 'hang';
    try {
      const c = createClient({ addr: hang.url, token: s.rootToken, timeoutMs: 200, retries: fast });
      const err = await c.secrets.getAll('api', 'prod').catch((e: unknown) => e);
      assert.ok(isTimeoutError(err), String(err));
      assert.equal(err.code, 'timeout');
      assert.equal(err.timeoutMs, 200, "the client's timeout ended it");
      assert.equal(hang.requests.length, 1);
      // A per-call timeout overrides the client's (10 s by default): the error names the one that fired.
      await assert.rejects(createClient({ addr: hang.url, token: s.rootToken }).health({ timeoutMs: 100 }), {
        code: 'timeout',
        timeoutMs: 100,
      });
    } finally {
      await hang.close();
    }
  });

  test('an aborted signal rejects with its reason, not a HushError', async () => {
    const hang = await scriptServer();
    hang.script = () => 'hang';
    try {
      const c = createClient({ addr: hang.url, token: s.rootToken });
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('caller gave up')), 50);
      await assert.rejects(c.projects.list({ signal: ac.signal }), { message: 'caller gave up' });
    } finally {
      await hang.close();
    }
  });

  test('a malformed token is rejected offline: no request is made and the token is not echoed', async () => {
    proxy.requests = [];
    const bad = s.rootToken.slice(0, 20) + (s.rootToken[20] === 'a' ? 'b' : 'a') + s.rootToken.slice(21);
    for (const token of [bad, 'hush_short', 'ghp_notahushtoken']) {
      assert.throws(
        () => createClient({ addr: proxy.url, token }),
        (e: unknown) => {
          assert.equal((e as Error).name, 'AuthError');
          assert.equal((e as { code: string }).code, 'token_malformed');
          assert.ok(!(e as Error).message.includes(token));
          return true;
        },
      );
    }
    const saved = process.env.HUSH_TOKEN;
    process.env.HUSH_TOKEN = bad;
    try {
      assert.throws(() => createClient({ addr: proxy.url }), /HUSH_TOKEN is not a valid Hush token/);
    } finally {
      if (saved === undefined) delete process.env.HUSH_TOKEN;
      else process.env.HUSH_TOKEN = saved;
    }
    assert.equal(proxy.requests.length, 0);
  });
});
