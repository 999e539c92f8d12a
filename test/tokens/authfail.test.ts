/**
 * Every kind of bad credential gets the same 401, byte for byte apart from
 * the request id. Why it failed is for operators: it is in the log line and
 * in the auth.fail audit event, never in the response. Error responses never
 * echo a token.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { formatToken } from 'hush-vault-sdk/token-format';
import { LOOPBACK_ALIASES_SKIP } from '../helpers/preconditions.js';
import { capturedLogs, startServer, type TestServer } from '../helpers/server.js';
import { logLeakCheck, mint, rawRequest, remember, seed, secretValue, type RawResponse } from './support.js';

interface Case {
  name: string;
  reason: string;
  authorization: () => Promise<string | undefined>;
}

describe('401 responses', { skip: LOOPBACK_ALIASES_SKIP }, () => {
  let s: TestServer;
  const results = new Map<string, { r: RawResponse; ip: string }>();
  const oneCharOff = (t: string) => t.slice(0, 10) + (t[10] === 'a' ? 'b' : 'a') + t.slice(11);

  const cases: Case[] = [
    { name: 'no Authorization header', reason: 'missing', authorization: async () => undefined },
    { name: 'a malformed token', reason: 'malformed', authorization: async () => `Bearer ${remember('not-a-token-at-all')}` },
    {
      name: 'a token with one wrong character',
      reason: 'malformed',
      authorization: async () => `Bearer ${remember(oneCharOff((await mint(s, ['root'])).token))}`,
    },
    {
      name: 'a non-Bearer scheme',
      reason: 'malformed',
      authorization: async () => `Basic ${remember(Buffer.from('user:pass-xyz').toString('base64'))}`,
    },
    { name: 'an unknown token', reason: 'unknown', authorization: async () => `Bearer ${remember(formatToken((n) => randomBytes(n)))}` },
    {
      name: 'an expired token',
      reason: 'expired',
      authorization: async () => {
        const t = await mint(s, ['root'], { ttl: '1s' });
        await new Promise((r) => setTimeout(r, Date.parse(t.body.expiresAt) - Date.now() + 50));
        return `Bearer ${t.token}`;
      },
    },
    {
      name: 'a revoked token',
      reason: 'revoked',
      authorization: async () => {
        const t = await mint(s, ['root']);
        assert.equal((await s.api('DELETE', `/v1/tokens/${t.id}`)).status, 200);
        return `Bearer ${t.token}`;
      },
    },
    {
      name: 'a token whose parent was revoked',
      reason: 'revoked',
      authorization: async () => {
        const p = await mint(s, ['root']);
        const c = await mint(s, ['root'], { parent: p.token });
        assert.equal((await s.api('DELETE', `/v1/tokens/${p.id}`)).status, 200);
        return `Bearer ${c.token}`;
      },
    },
    {
      name: 'a token used from outside its CIDR allowlist',
      reason: 'cidr',
      authorization: async () => `Bearer ${(await mint(s, ['root'], { cidrs: ['10.0.0.0/8'] })).token}`,
    },
  ];

  before(async () => {
    s = await startServer({ settings: { 'auth-fail-limit': 10_000 } });
    remember(s.rootToken);
    await seed(s, { api: { prod: { DB_URL: secretValue('af') } } });
    // Each case from its own loopback address, so each is the first failure
    // of its address and its audit event is written at once.
    let n = 20;
    for (const c of cases) {
      const ip = `127.0.${n++}.1`; // one /24 each: auth.fail events are aggregated per network
      const authorization = await c.authorization();
      if (authorization) remember(authorization);
      const r = await rawRequest(s.url, { path: '/v1/projects/api/envs/prod/secrets', authorization, localAddress: ip });
      results.set(c.name, { r, ip });
    }
  });
  after(async () => {
    await s?.close();
  });

  const canonical = (r: RawResponse) => r.text.replace(r.body.error.requestId, 'REQ');

  test('every kind of bad credential gets a byte-identical 401 body apart from requestId', () => {
    const bodies = new Map<string, string[]>();
    for (const [name, { r }] of results) {
      assert.equal(r.status, 401, name);
      const b = canonical(r);
      bodies.set(b, [...(bodies.get(b) ?? []), name]);
    }
    assert.equal(bodies.size, 1, `bodies differ: ${JSON.stringify([...bodies])}`);
    assert.equal(
      [...bodies.keys()][0],
      '{"error":{"code":"unauthorized","message":"missing, invalid, expired or revoked token","requestId":"REQ"}}',
    );
  });

  test('every 401 carries the same WWW-Authenticate challenge and security headers', () => {
    for (const [name, { r }] of results) {
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="hush"', name);
      assert.equal(r.headers['cache-control'], 'no-store', name);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', name);
      assert.equal(r.headers['x-request-id'], r.body.error.requestId, name);
    }
  });

  for (const c of cases) {
    test(`the log line for ${c.name} names the reason "${c.reason}"`, () => {
      const { r } = results.get(c.name)!;
      const lines = capturedLogs.map((l) => JSON.parse(l)).filter((l) => l.reqId === r.body.error.requestId && l.authFail !== undefined);
      assert.equal(lines.length, 1, `no authentication-failure log line for ${r.body.error.requestId}`);
      assert.equal(lines[0].authFail, c.reason);
    });

    test(`the auth.fail audit event for ${c.name} records the reason "${c.reason}" and the client address`, async () => {
      const { r, ip } = results.get(c.name)!;
      const a = await s.api('GET', '/v1/audit?action=auth.fail&limit=1000');
      assert.equal(a.status, 200);
      const ev = a.body.events.find((e: { ip: string }) => e.ip === ip);
      assert.ok(ev, `no auth.fail event from ${ip}`);
      assert.equal(ev.outcome, 'denied');
      assert.equal(ev.requestId, r.body.error.requestId);
      assert.equal(ev.detail.reason, c.reason);
      assert.equal(ev.actor.id, 'anonymous');
      assert.ok(!JSON.stringify(ev).includes('hush_'), 'the audit event holds a token');
    });
  }
});

describe('error responses never echo a token', () => {
  let s: TestServer;
  let t: string;
  before(async () => {
    s = await startServer({ settings: { 'auth-fail-limit': 10_000 } });
    remember(s.rootToken);
    t = remember(formatToken((n) => randomBytes(n)));
  });
  after(async () => {
    await s?.close();
  });

  const probes: [string, string, string, unknown?][] = [
    ['a token in an unknown URL', 'GET', '/v1/nothing/TOKEN'],
    ['a token in the query string', 'GET', '/v1/tokens?token=TOKEN'],
    ['a token as a token id', 'DELETE', '/v1/tokens/TOKEN'],
    ['a token as a scope', 'POST', '/v1/tokens', { name: 'x', scopes: ['TOKEN'] }],
    ['a token inside a scope', 'POST', '/v1/tokens', { name: 'x', scopes: ['read:TOKEN/prod'] }],
    ['a token as a CIDR', 'POST', '/v1/tokens', { name: 'x', scopes: ['root'], cidrs: ['TOKEN'] }],
    ['a token as a TTL', 'POST', '/v1/tokens', { name: 'x', scopes: ['root'], ttl: 'TOKEN' }],
    ['a token as a project name', 'POST', '/v1/projects', { name: 'TOKEN' }],
    ['a token in a project path', 'GET', '/v1/projects/TOKEN/envs'],
    ['a token as an unknown body field', 'POST', '/v1/tokens', { name: 'x', scopes: ['root'], token: 'TOKEN' }],
  ];
  for (const [what, method, path, body] of probes) {
    test(`${what} is not echoed in the ${method} error response`, async () => {
      const fill = (v: string) => v.replaceAll('TOKEN', t);
      const r = await s.api(method, fill(path), body === undefined ? undefined : JSON.parse(fill(JSON.stringify(body))));
      assert.ok(r.status >= 400 && r.status < 500, `${what}: status ${r.status}`);
      const text = JSON.stringify(r.body);
      assert.ok(!text.includes(t.slice(5, 25)), `${what}: ${text}`);
    });
  }

  test('a 401 never echoes the Authorization value it was given', async () => {
    for (const authorization of [`Bearer ${t}`, `Bearer ${t.slice(0, 30)}`, `Token ${t}`, `Bearer ${t} extra`]) {
      const r = await rawRequest(s.url, { path: '/v1/tokens/self', authorization });
      assert.equal(r.status, 401);
      assert.ok(!r.text.includes(t.slice(5, 25)));
      assert.ok(!JSON.stringify(r.headers).includes(t.slice(5, 25)));
    }
  });
});

logLeakCheck();
