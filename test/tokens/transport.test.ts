/**
 * Transport: HTTPS with TLS 1.2+, HSTS over TLS, no plain HTTP on a
 * non-loopback address without --insecure-http, security headers on every
 * response, X-Forwarded-For trusted only from --trust-proxy.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecureVersion } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../vault/config.js';
import { buildServer, checkTransport, loadTls } from '../../vault/server.js';
import { LOOPBACK_ALIASES_SKIP } from '../helpers/preconditions.js';
import { OPENSSL_SKIP, selfSigned } from '../helpers/tls.js';
import { startServer, tempDir, type TestServer } from '../helpers/server.js';
import { logLeakCheck, mint, rawRequest, remember, seed, secretValue } from './support.js';

const noOpenssl = OPENSSL_SKIP;

interface TlsResult {
  status: number;
  headers: Record<string, unknown>;
  protocol: string | null;
  body: any;
}

function tlsGet(
  url: string,
  ca: Buffer,
  opts: { path: string; token?: string; minVersion?: SecureVersion; maxVersion?: SecureVersion },
): Promise<TlsResult> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: u.hostname,
        port: u.port,
        path: opts.path,
        ca,
        agent: false,
        minVersion: opts.minVersion,
        maxVersion: opts.maxVersion,
        // Lets this client offer TLS 1.0/1.1 at all, so a refusal is the server's.
        ciphers: 'DEFAULT@SECLEVEL=0',
        headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            protocol: (res.socket as import('node:tls').TLSSocket).getProtocol?.() ?? null,
            body: text ? JSON.parse(text) : null,
          });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS', { skip: noOpenssl }, () => {
  let s: TestServer;
  let ca: Buffer;
  let dir: string;
  before(async () => {
    dir = tempDir('hush-tls-');
    const { cert, key } = selfSigned(dir);
    ca = readFileSync(cert);
    s = await startServer({ settings: { 'tls-cert': cert, 'tls-key': key } });
    remember(s.rootToken);
  });
  after(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the server listens on https when given --tls-cert and --tls-key', () => {
    assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
    test(`a ${v} client is served`, async () => {
      const r = await tlsGet(s.url, ca, { path: '/v1/tokens/self', token: s.rootToken, minVersion: v, maxVersion: v });
      assert.equal(r.status, 200);
      assert.equal(r.protocol, v);
    });
  }

  test('a TLS 1.1 client is refused by the server with a protocol_version alert', async () => {
    await assert.rejects(
      tlsGet(s.url, ca, { path: '/v1/sys/health', minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }),
      (e: Error & { code?: string }) => {
        assert.match(e.message, /alert protocol version|unsupported protocol|wrong version/i, e.message);
        return true;
      },
    );
  });

  test('responses over TLS carry Strict-Transport-Security', async () => {
    for (const [path, token] of [
      ['/v1/sys/health', undefined],
      ['/v1/tokens/self', s.rootToken],
      ['/v1/tokens/self', undefined],
    ] as const) {
      const r = await tlsGet(s.url, ca, { path, token });
      assert.match(String(r.headers['strict-transport-security']), /^max-age=\d{8,}; includeSubDomains$/, `${path} ${r.status}`);
    }
  });
});

describe('plain HTTP only on loopback unless --insecure-http', () => {
  // checkTransport runs before anything touches the data dir, so it is never created.
  const cfg = (flags: Record<string, unknown>) => loadConfig({ 'data-dir': join(tmpdir(), 'hush-transport-never-created'), ...flags }, {});

  for (const listen of ['0.0.0.0:0', '[::]:0', '192.168.1.10:8420', 'vault.internal:8420']) {
    test(`listening on ${listen} without TLS is a ConfigError that names the fix`, () => {
      assert.throws(
        () => checkTransport(cfg({ listen })),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'config_invalid');
          assert.match(e.message, /refusing to serve plain HTTP/);
          assert.match(e.message, /--tls-cert and --tls-key/);
          assert.match(e.message, /--insecure-http/);
          return true;
        },
      );
    });
  }

  for (const listen of ['127.0.0.1:0', '127.0.0.2:8420', '[::1]:0', 'localhost:8420']) {
    test(`listening on loopback ${listen} without TLS is allowed`, () => {
      checkTransport(cfg({ listen }));
    });
  }

  test('buildServer refuses 0.0.0.0 without TLS before opening anything', async () => {
    await assert.rejects(buildServer(cfg({ listen: '0.0.0.0:0' })), (e: Error & { code?: string }) => e.code === 'config_invalid');
  });

  test('with --insecure-http the server starts on 0.0.0.0 and answers', async () => {
    const s = await startServer({ settings: { listen: '0.0.0.0:0', 'insecure-http': true } });
    try {
      remember(s.rootToken);
      const port = new URL(s.url).port;
      const r = await rawRequest(`http://127.0.0.1:${port}`, { path: '/v1/tokens/self', token: s.rootToken });
      assert.equal(r.status, 200);
      assert.equal(r.headers['strict-transport-security'], undefined, 'HSTS on plain HTTP would be ignored and misleading');
    } finally {
      await s.close();
    }
  });

  test('with TLS the server may listen on 0.0.0.0', { skip: noOpenssl }, () => {
    const dir = tempDir('hush-tls-');
    try {
      const { cert, key } = selfSigned(dir);
      checkTransport(cfg({ listen: '0.0.0.0:0', 'tls-cert': cert, 'tls-key': key }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a bad --tls-cert/--tls-key is a one-line error naming the setting', { skip: noOpenssl }, () => {
  test('missing files, a non-PEM file and a key that does not match the certificate', () => {
    const dir = tempDir('hush-tls-');
    try {
      const a = selfSigned(dir);
      const other = join(dir, 'other');
      mkdirSync(other);
      const b = selfSigned(other);
      const junk = join(dir, 'junk.pem');
      writeFileSync(junk, 'not a certificate\n');
      const check = (cert: string, key: string, re: RegExp) =>
        assert.throws(
          () => loadTls(cert, key),
          (e: Error & { code?: string }) => {
            assert.equal(e.code, 'config_invalid');
            assert.match(e.message, re);
            assert.ok(!e.message.includes('\n'));
            assert.ok(!e.message.includes(readFileSync(a.key, 'utf8').split('\n')[1]), 'key bytes are never echoed');
            return true;
          },
        );
      check(join(dir, 'nope.pem'), a.key, /invalid --tls-cert: .* does not exist/);
      check(a.cert, join(dir, 'nope.pem'), /invalid --tls-key: .* does not exist/);
      check(junk, a.key, /invalid --tls-cert\/--tls-key: /);
      check(a.cert, b.key, /invalid --tls-cert\/--tls-key: /);
      assert.ok(loadTls(a.cert, a.key).cert.length > 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('security headers', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ settings: { 'auth-fail-limit': 2, 'rate-limit': 1000 } });
    remember(s.rootToken);
    await seed(s, { api: { prod: { DB_URL: secretValue('hdr') } } });
  });
  after(async () => {
    await s?.close();
  });

  const cases: [string, () => Promise<{ status: number; headers: Headers }>][] = [
    ['a secret read (200)', () => s.api('GET', '/v1/projects/api/envs/prod/secrets')],
    ['a single secret (200)', () => s.api('GET', '/v1/projects/api/envs/prod/secrets/DB_URL')],
    [
      'token creation (201)',
      async () => {
        const r = await s.api('POST', '/v1/tokens', { name: 'h', scopes: ['read:api/prod'] });
        remember(r.body.token);
        return r;
      },
    ],
    ['health (200)', () => s.api('GET', '/v1/sys/health', undefined, null)],
    ['a validation error (400)', () => s.api('POST', '/v1/tokens', { nope: 1 })],
    ['an unknown route (404)', () => s.api('GET', '/v1/nowhere')],
    ['a missing secret (404)', () => s.api('GET', '/v1/projects/api/envs/prod/secrets/NOPE')],
  ];
  for (const [what, call] of cases) {
    test(`${what} carries Cache-Control: no-store and X-Content-Type-Options: nosniff`, async () => {
      const r = await call();
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(r.headers.get('x-frame-options'), 'DENY');
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    });
  }

  test('401, 403 and 429 responses carry the same headers', { skip: LOOPBACK_ALIASES_SKIP }, async () => {
    const t = await mint(s, ['read:api/prod']);
    const forbidden = await rawRequest(s.url, { method: 'DELETE', path: '/v1/projects/api', token: t.token, localAddress: '127.0.0.40' });
    assert.equal(forbidden.status, 403);
    const bad = remember('hush_' + 'x'.repeat(49));
    const unauth = await rawRequest(s.url, { path: '/v1/tokens/self', token: bad, localAddress: '127.0.0.41' });
    assert.equal(unauth.status, 401);
    await rawRequest(s.url, { path: '/v1/tokens/self', token: bad, localAddress: '127.0.0.41' });
    const limited = await rawRequest(s.url, { path: '/v1/tokens/self', token: bad, localAddress: '127.0.0.41' });
    assert.equal(limited.status, 429);
    for (const r of [forbidden, unauth, limited]) {
      assert.equal(r.headers['cache-control'], 'no-store', String(r.status));
      assert.equal(r.headers['x-content-type-options'], 'nosniff', String(r.status));
    }
  });
});

describe('--trust-proxy', () => {
  test('X-Forwarded-For from an untrusted peer is ignored: it cannot satisfy a CIDR allowlist', async () => {
    const s = await startServer({});
    try {
      remember(s.rootToken);
      const t = await mint(s, ['root'], { cidrs: ['10.0.0.0/8'] });
      const r = await rawRequest(s.url, { path: '/v1/tokens/self', token: t.token, headers: { 'x-forwarded-for': '10.1.2.3' } });
      assert.equal(r.status, 401);
    } finally {
      await s.close();
    }
  });

  test('X-Forwarded-For from a trusted proxy is the client address for CIDR checks and limits', async () => {
    const s = await startServer({ settings: { 'trust-proxy': '127.0.0.1/32' } });
    try {
      remember(s.rootToken);
      const t = await mint(s, ['root'], { cidrs: ['10.0.0.0/8'] });
      const inside = await rawRequest(s.url, { path: '/v1/tokens/self', token: t.token, headers: { 'x-forwarded-for': '10.1.2.3' } });
      assert.equal(inside.status, 200);
      const outside = await rawRequest(s.url, { path: '/v1/tokens/self', token: t.token, headers: { 'x-forwarded-for': '192.0.2.7' } });
      assert.equal(outside.status, 401);
    } finally {
      await s.close();
    }
  });
});

logLeakCheck();
