/**
 * Two limits: a strict per-address limit on failed authentications, and
 * @fastify/rate-limit on every route. Both answer 429 with Retry-After.
 * "Another address" on one machine is another loopback source address:
 * the server listens on 127.0.0.1 and Linux routes all of 127/8 to lo.
 * On PostgreSQL both limits are the shared ones (services/limits/): one
 * server must behave exactly as the in-process limits do on SQLite.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { formatToken } from 'hush-vault-sdk/token-format';
import { waitFor } from '../helpers/cli.js';
import { LOOPBACK_ALIASES_SKIP } from '../helpers/preconditions.js';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';
import { logLeakCheck, mint, rawRequest, remember, seed, secretValue, type Minted, type RawResponse } from './support.js';

const badToken = () => remember(formatToken((n) => randomBytes(n)));

function assertRetryAfter(r: RawResponse, maxSeconds: number) {
  const ra = r.headers['retry-after'];
  assert.equal(typeof ra, 'string', 'a 429 must carry Retry-After');
  const n = Number(ra);
  assert.ok(Number.isInteger(n) && n >= 1 && n <= maxSeconds, `Retry-After ${ra} is not 1..${maxSeconds} seconds`);
}

/** LIMIT bad tokens from `ip`: the address is then blocked. Each test blocks its own address, so it runs alone as well as in order. */
async function block(s: TestServer, ip: string, limit: number): Promise<void> {
  for (let i = 0; i < limit; i++)
    assert.equal((await rawRequest(s.url, { path: '/v1/tokens/self', token: badToken(), localAddress: ip })).status, 401);
  assert.equal((await rawRequest(s.url, { path: '/v1/tokens/self', token: badToken(), localAddress: ip })).status, 429);
}

const skipOn = (backend: 'sqlite' | 'postgres') => (LOOPBACK_ALIASES_SKIP ? { skip: LOOPBACK_ALIASES_SKIP } : onBackend(backend));

for (const backend of BACKENDS) {
  describe(`failed-authentication limit per client address on ${backend}`, skipOn(backend), () => {
    const LIMIT = 10;
    let s: TestServer;
    let good: Minted;
    before(async () => {
      s = await startOn(backend, { 'auth-fail-limit': LIMIT, 'auth-fail-window': '60s' });
      remember(s.rootToken);
      await seed(s, { api: { prod: { DB_URL: secretValue('rl') } } });
      good = await mint(s, ['read:api/prod']);
    });
    after(async () => {
      await s?.close();
    });

    test(`50 bad tokens from one address: the first ${LIMIT} get 401, the rest 429 with Retry-After`, async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 50; i++) {
        const r = await rawRequest(s.url, { path: '/v1/projects/api/envs/prod/secrets', token: badToken(), localAddress: '127.0.0.1' });
        statuses.push(r.status);
        if (r.status === 429) {
          assertRetryAfter(r, 60);
          assert.equal(r.body.error.code, 'rate_limited');
          assert.equal(r.headers['cache-control'], 'no-store');
        }
      }
      assert.deepEqual(statuses, [...Array(LIMIT).fill(401), ...Array(50 - LIMIT).fill(429)]);
    });

    test('meanwhile a good token from another address still works', async () => {
      await block(s, '127.0.0.10', LIMIT);
      const r = await rawRequest(s.url, { path: '/v1/projects/api/envs/prod/secrets', token: good.token, localAddress: '127.0.0.2' });
      assert.equal(r.status, 200);
    });

    test('a blocked address is refused even with a good token, so a correct guess looks like a wrong one', async () => {
      await block(s, '127.0.0.11', LIMIT);
      const r = await rawRequest(s.url, { path: '/v1/projects/api/envs/prod/secrets', token: good.token, localAddress: '127.0.0.11' });
      assert.equal(r.status, 429);
      assertRetryAfter(r, 60);
    });

    test('routes that need no token stay open to a blocked address', async () => {
      await block(s, '127.0.0.12', LIMIT);
      const r = await rawRequest(s.url, { path: '/v1/sys/health', localAddress: '127.0.0.12' });
      assert.equal(r.status, 200);
    });
  });

  describe(`the failed-authentication window ends on ${backend}`, skipOn(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend, { 'auth-fail-limit': 3, 'auth-fail-window': '1s' });
      remember(s.rootToken);
    });
    after(async () => {
      await s?.close();
    });

    test('an address is let back in once its window has passed', async () => {
      for (let i = 0; i < 3; i++)
        assert.equal((await rawRequest(s.url, { path: '/v1/tokens/self', token: badToken(), localAddress: '127.0.0.3' })).status, 401);
      const blocked = await rawRequest(s.url, { path: '/v1/tokens/self', token: s.rootToken, localAddress: '127.0.0.3' });
      assert.equal(blocked.status, 429);
      assertRetryAfter(blocked, 1);
      // A refused request does not extend the block: ask until the good token is let in (the deadline only ends a failing test).
      await waitFor(
        async () => (await rawRequest(s.url, { path: '/v1/tokens/self', token: s.rootToken, localAddress: '127.0.0.3' })).status === 200,
        'the good token let in again',
      );
    });
  });

  describe(`general rate limit (@fastify/rate-limit) on ${backend}`, skipOn(backend), () => {
    const WINDOW = backend === 'postgres' ? '1d' : '60s';
    const WINDOW_S = backend === 'postgres' ? 86_400 : 60;
    let s: TestServer;
    before(async () => {
      // PostgreSQL's windows are aligned to the epoch: a day-long one cannot end during these tests (a minute could).
      s = await startOn(backend, { 'rate-limit': 5, 'rate-limit-window': WINDOW });
      remember(s.rootToken);
    });
    after(async () => {
      await s?.close();
    });

    test('the request after the configured maximum gets 429 with Retry-After, on a route that needs no token', async () => {
      const statuses: number[] = [];
      let last: RawResponse | undefined;
      for (let i = 0; i < 7; i++) {
        last = await rawRequest(s.url, { path: '/v1/openapi.json', localAddress: '127.0.0.4' });
        statuses.push(last.status);
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
      assertRetryAfter(last!, WINDOW_S);
      assert.equal(last!.body.error.code, 'rate_limited');
      assert.equal(typeof last!.body.error.requestId, 'string');
      assert.equal(last!.headers['x-content-type-options'], 'nosniff');
    });

    test('the limit also covers authenticated routes, and counts per address', async () => {
      for (let i = 0; i < 5; i++)
        assert.equal((await rawRequest(s.url, { path: '/v1/tokens/self', token: s.rootToken, localAddress: '127.0.0.5' })).status, 200);
      assert.equal((await rawRequest(s.url, { path: '/v1/tokens/self', token: s.rootToken, localAddress: '127.0.0.5' })).status, 429);
      assert.equal((await rawRequest(s.url, { path: '/v1/tokens/self', token: s.rootToken, localAddress: '127.0.0.6' })).status, 200);
    });

    test('health checks are exempt, so a load balancer probing from a limited address still gets 200', async () => {
      for (let i = 0; i < 5; i++)
        assert.equal((await rawRequest(s.url, { path: '/v1/openapi.json', localAddress: '127.0.0.7' })).status, 200);
      assert.equal(
        (await rawRequest(s.url, { path: '/v1/openapi.json', localAddress: '127.0.0.7' })).status,
        429,
        'the address is limited',
      );
      for (let i = 0; i < 7; i++)
        assert.equal((await rawRequest(s.url, { path: '/v1/sys/health', localAddress: '127.0.0.7' })).status, 200);
    });
  });

  describe(`the general rate limit window resets on ${backend}`, skipOn(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend, { 'rate-limit': 3, 'rate-limit-window': '1s' });
      remember(s.rootToken);
    });
    after(async () => {
      await s?.close();
    });

    test('a limited address gets its full allowance back once the window has passed', async () => {
      const ask = () => rawRequest(s.url, { path: '/v1/openapi.json', localAddress: '127.0.0.8' });
      const untilLimited = async () => {
        let r: RawResponse | undefined;
        await waitFor(async () => (r = await ask()).status === 429, 'a 429 from the general limit');
        return r!;
      };
      assertRetryAfter(await untilLimited(), 1);
      await waitFor(async () => (await ask()).status === 200, 'the window reset: a 200 again');
      // The new window has its own count, and the limit applies in it again.
      assertRetryAfter(await untilLimited(), 1);
    });
  });
}

logLeakCheck();
