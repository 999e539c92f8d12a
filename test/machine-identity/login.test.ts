/**
 * Machine identity (issue 16), server side, on both engines: JWT auth
 * roles, and the login that exchanges a workload's JWT for a short-lived
 * token. The issuer is a real OIDC issuer on loopback (test/helpers/oidc.ts):
 * discovery, a JWKS, key rotation; plus a Kubernetes-style JWKS given
 * inline and a PEM key. Every "bad input" case of the issue is asserted
 * with its 401 and its audit event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import { apiFor } from '../helpers/http.js';
import { makeKey, pemOf, startIssuer, type Issuer } from '../helpers/oidc.js';
import { BACKENDS, onBackend, startOn, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { runHush, waitFor } from '../helpers/cli.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seed } from '../helpers/seed.js';

const GENERIC = 'JWT login failed: the role does not exist, or the JWT is not valid for it';

async function events(s: TestServer, action: string): Promise<any[]> {
  const r = await s.api('GET', `/v1/audit?action=${action}&limit=500`);
  assert.equal(r.status, 200, r.text);
  return r.body.events;
}

for (const backend of BACKENDS) {
  describe(`JWT auth roles and login (${backend})`, onBackend(backend), () => {
    let s: TestServer;
    let iss: Issuer;
    before(async () => {
      s = await startOn(backend, { 'auth-fail-limit': 1000, 'rate-limit': 100000 });
      iss = await startIssuer();
      await seed(s.api, { api: { prod: { DB_URL: 'postgres://prod' }, dev: { DEBUG: '1' } }, web: { prod: { X: 'x' } } });
    });
    after(async () => {
      await s?.close();
      await iss?.close();
    });

    const role = (name: string, extra: Record<string, unknown> = {}) => ({
      name,
      issuer: iss.url,
      audience: 'hush',
      scopes: ['read:api/prod'],
      ttl: '15m',
      boundClaims: { repository: 'org/app', ref: ['refs/heads/main', 'refs/tags/v*'] },
      boundSubject: 'repo:org/app:*',
      ...extra,
    });
    const claims = (extra: Record<string, unknown> = {}) => ({
      sub: 'repo:org/app:ref:refs/heads/main',
      repository: 'org/app',
      ref: 'refs/heads/main',
      ...extra,
    });
    const login = (r: string, jwt: string) => s.api('POST', '/v1/auth/jwt/login', { role: r, jwt }, null);

    it("a JWT from the issuer (found by OIDC discovery) becomes a token no wider than the role, living at most the role's ttl and the JWT's exp", async () => {
      const c = await s.api('POST', '/v1/auth/jwt/roles', role('deploy'));
      assert.equal(c.status, 201, c.text);
      assert.equal(c.body.keySource, 'discovery');
      assert.equal(c.body.ttlSeconds, 900);

      const jwt = await iss.sign(claims());
      const r = await login('deploy', jwt);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.scopes, ['read:api/prod']);
      assert.equal(r.body.role, 'deploy');
      const ttl = Date.parse(r.body.expiresAt) - Date.now();
      assert.ok(ttl <= 10 * 60_000 + 1000, `at most the JWT's exp (10 min): ${ttl}`);
      const tok = r.body.token;
      const read = await s.api('GET', '/v1/projects/api/envs/prod/secrets/DB_URL', undefined, tok);
      assert.equal(read.body.value, 'postgres://prod');
      assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets/DEBUG', undefined, tok)).status, 403);
      assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/X', { value: 'y' }, tok)).status, 403);

      // The role's ttl bounds it when the JWT lives longer.
      const long = await login('deploy', await iss.sign(claims(), { expiresIn: '2h' }));
      const ttl2 = Date.parse(long.body.expiresAt) - Date.now();
      assert.ok(ttl2 <= 15 * 60_000 + 1000 && ttl2 > 14 * 60_000, `the role's 15m: ${ttl2}`);

      // The token's metadata and the audit event carry the role, iss, sub and the bound claims.
      const self = await s.api('GET', '/v1/tokens/self', undefined, tok);
      assert.equal(self.body.name, 'jwt:deploy');
      assert.match(self.body.description, /role deploy/);
      assert.match(self.body.description, /sub="repo:org\/app:ref:refs\/heads\/main"/);
      assert.match(self.body.description, /repository="org\/app"/);
      const ev = (await events(s, 'auth.jwt.login')).find((e) => e.outcome === 'ok' && e.target.tokenId === r.body.id);
      assert.ok(ev, 'the login event');
      assert.equal(ev.target.role, 'deploy');
      assert.deepEqual(ev.detail.claims, {
        iss: iss.url,
        sub: 'repo:org/app:ref:refs/heads/main',
        repository: 'org/app',
        ref: 'refs/heads/main',
      });
      assert.ok(!JSON.stringify(ev).includes(jwt.split('.')[2]), 'never the JWT');
      // A replay within the JWT's lifetime is accepted (docs/machine-identity.md says so).
      assert.equal((await login('deploy', jwt)).status, 200);
      // A glob on a bound claim: a tag ref matches refs/tags/v*.
      assert.equal(
        (await login('deploy', await iss.sign(claims({ ref: 'refs/tags/v1.2.3', sub: 'repo:org/app:ref:refs/tags/v1.2.3' })))).status,
        200,
      );
    });

    it('a key rotation at the issuer (a new kid) is picked up without a restart', async () => {
      const before_ = iss.jwksFetches;
      const k2 = await iss.rotate('ES256');
      // Refetched on the unknown kid (at most once a second per URL, so the first try may come too soon).
      await waitFor(
        async () => (await login('deploy', await iss.sign(claims(), { key: k2 }))).status === 200,
        'the new kid is picked up',
        10_000,
      );
      assert.ok(iss.jwksFetches > before_, 'the JWKS was fetched again for the unknown kid');
      // Keys of the other allowed algorithms verify too.
      const k3 = await iss.rotate('EdDSA');
      await waitFor(
        async () => (await login('deploy', await iss.sign(claims(), { key: k3 }))).status === 200,
        'an EdDSA key added later is picked up',
        10_000,
      );
    });

    it('a Kubernetes-style JWKS given inline, and a PEM key, for an issuer the server cannot reach', async () => {
      const k8s = await makeKey('RS256', 'k8s-1');
      const k8sIssuer = 'https://kubernetes.default.svc.cluster.local';
      const r1 = await s.api('POST', '/v1/auth/jwt/roles', {
        name: 'k8s-app',
        issuer: k8sIssuer,
        audience: 'hush',
        scopes: ['read:api/*'],
        ttl: '1h',
        boundSubject: 'system:serviceaccount:prod:app',
        jwks: { keys: [k8s.jwk] },
      });
      assert.equal(r1.status, 201, r1.text);
      assert.equal(r1.body.keySource, 'jwks');
      const jwt = await new SignJWT({ sub: 'system:serviceaccount:prod:app', 'kubernetes.io': { namespace: 'prod' } })
        .setProtectedHeader({ alg: 'RS256', kid: 'k8s-1' })
        .setIssuer(k8sIssuer)
        .setAudience(['hush', 'other'])
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(k8s.privateKey);
      const ok = await login('k8s-app', jwt);
      assert.equal(ok.status, 200, ok.text);
      assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets/DEBUG', undefined, ok.body.token)).body.value, '1');

      const ed = await makeKey('EdDSA', 'ed');
      const r2 = await s.api('POST', '/v1/auth/jwt/roles', {
        name: 'pem',
        issuer: 'https://ci.internal',
        audience: 'hush',
        scopes: ['read:web/prod'],
        ttl: '5m',
        publicKey: await pemOf(ed),
      });
      assert.equal(r2.status, 201, r2.text);
      assert.equal(r2.body.keySource, 'public_key');
      const j2 = await new SignJWT({ sub: 'job-1' })
        .setProtectedHeader({ alg: 'EdDSA' })
        .setIssuer('https://ci.internal')
        .setAudience('hush')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(ed.privateKey);
      assert.equal((await login('pem', j2)).status, 200);
    });

    it('every bad input gets the same 401, counts toward the failed-authentication limit, and its precise reason goes to the audit event', async () => {
      const other = await makeKey('RS256', 'k1'); // same kid as the issuer's first key, another key
      const pem = await pemOf(iss.keys[0]);
      const now = Math.floor(Date.now() / 1000);
      const cases: [string, string, () => Promise<string>, RegExp][] = [
        ['wrong signature', 'deploy', () => iss.sign(claims(), { key: other }), /signature/],
        ['wrong iss', 'deploy', () => iss.sign(claims(), { iss: 'https://evil.example' }), /iss/],
        ['wrong aud', 'deploy', () => iss.sign(claims(), { aud: 'someone-else' }), /aud/],
        ['expired', 'deploy', () => iss.sign(claims(), { expiresIn: now - 600 }), /expired/],
        [
          'not yet valid',
          'deploy',
          async () =>
            new SignJWT(claims())
              .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
              .setIssuer(iss.url)
              .setAudience('hush')
              .setIssuedAt()
              .setNotBefore(now + 3600)
              .setExpirationTime(now + 7200)
              .sign(iss.keys[0].privateKey),
          /nbf/,
        ],
        [
          'iat in the future',
          'deploy',
          async () =>
            new SignJWT(claims())
              .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
              .setIssuer(iss.url)
              .setAudience('hush')
              .setIssuedAt(now + 3600)
              .setExpirationTime(now + 7200)
              .sign(iss.keys[0].privateKey),
          /iat/,
        ],
        [
          'alg none',
          'deploy',
          async () => new UnsecuredJWT(claims()).setIssuer(iss.url).setAudience('hush').setIssuedAt().setExpirationTime('10m').encode(),
          /algorithm none/,
        ],
        [
          'HS256 signed with the public key',
          'pem',
          async () =>
            new SignJWT({ sub: 'job-1' })
              .setProtectedHeader({ alg: 'HS256' })
              .setIssuer('https://ci.internal')
              .setAudience('hush')
              .setIssuedAt()
              .setExpirationTime('5m')
              .sign(new TextEncoder().encode(pem)),
          /algorithm HS256/,
        ],
        ['unknown kid', 'deploy', async () => iss.sign(claims(), { key: await makeKey('RS256', 'nobody-knows') }), /kid/],
        ['bound claim mismatch', 'deploy', () => iss.sign(claims({ repository: 'org/other' })), /claim repository/],
        ['sub mismatch', 'deploy', () => iss.sign(claims({ sub: 'repo:evil/app:ref:refs/heads/main' })), /sub/],
        ['role that does not exist', 'no-such-role', () => iss.sign(claims()), /role does not exist/],
        [
          'no aud at all',
          'deploy',
          async () =>
            new SignJWT(claims())
              .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
              .setIssuer(iss.url)
              .setIssuedAt()
              .setExpirationTime('10m')
              .sign(iss.keys[0].privateKey),
          /aud/,
        ],
        ['not a JWT', 'deploy', async () => 'not.a.jwt', /malformed/],
      ];
      const required = await s.api('POST', '/v1/auth/jwt/roles', role('needs-env', { requiredClaims: ['environment'] }));
      assert.equal(required.status, 201, required.text);
      cases.push(['required claim missing', 'needs-env', () => iss.sign(claims()), /required claim environment/]);

      for (const [what, r, make, reason] of cases) {
        const jwt = await make();
        const failuresBefore = (await events(s, 'auth.jwt.login')).filter((e) => e.outcome === 'denied').length;
        const res = await login(r, jwt);
        assert.equal(res.status, 401, `${what}: ${res.text}`);
        assert.equal(res.body.error.code, 'unauthorized', what);
        assert.equal(res.body.error.message, GENERIC, `${what}: one message for every reason`);
        const denied = (await events(s, 'auth.jwt.login')).filter((e) => e.outcome === 'denied');
        assert.equal(denied.length, failuresBefore + 1, `${what}: one audit event`);
        const ev = denied[denied.length - 1];
        assert.match(ev.detail.reason, reason, `${what}: ${ev.detail.reason}`);
        assert.equal(ev.target.role, r);
        assert.equal(ev.ip, '127.0.0.1');
      }
      // A malformed body is a 400, before any verification.
      const bad = await s.api('POST', '/v1/auth/jwt/login', { role: 'deploy' }, null);
      assert.equal(bad.status, 400);
      assert.equal((await s.api('POST', '/v1/auth/jwt/login', { role: 'deploy', jwt: 'x y' }, null)).status, 400);
    });

    it('a JWKS endpoint that hangs, or that returns 10 MB, is a 401 with the reason audited, within the fetch timeout', async () => {
      const slow = await startIssuer();
      try {
        assert.equal(
          (
            await s.api('POST', '/v1/auth/jwt/roles', {
              name: 'slow',
              issuer: slow.url,
              audience: 'hush',
              scopes: ['read:api/prod'],
              ttl: '15m',
              jwksUrl: `${slow.url}/keys`,
            })
          ).status,
          201,
        );
        slow.mode = 'hang';
        const t0 = Date.now();
        const r = await login('slow', await slow.sign({ sub: 'x' }));
        assert.equal(r.status, 401);
        assert.ok(Date.now() - t0 < 15_000, 'bounded by the fetch timeout');
        let ev = (await events(s, 'auth.jwt.login')).filter((e) => e.outcome === 'denied').pop();
        assert.match(ev.detail.reason, /did not answer within 5000 ms/);
        slow.mode = 'huge';
        const big = await login('slow', await slow.sign({ sub: 'x' }));
        assert.equal(big.status, 401);
        ev = (await events(s, 'auth.jwt.login')).filter((e) => e.outcome === 'denied').pop();
        assert.match(ev.detail.reason, /larger than/);
        // And once the issuer is back, logins work again.
        slow.mode = 'ok';
        assert.equal((await login('slow', await slow.sign({ sub: 'x' }))).status, 200);
      } finally {
        await slow.close();
      }
    });

    it('outside review: no regex backtracking, roles act for their creator, public keys only, own claims only, redacted names, fuller audit', async () => {
      // A pattern that backtracks exponentially as a RegExp: linear here (the test would hang otherwise).
      assert.equal(
        (await s.api('POST', '/v1/auth/jwt/roles', role('redos', { boundSubject: '*a*a*a*a*a*a*b', boundClaims: {} }))).status,
        201,
      );
      const slow = await login('redos', await iss.sign({ sub: 'a'.repeat(4000) }));
      assert.equal(slow.status, 401);
      assert.equal((await s.api('POST', '/v1/auth/jwt/roles', role('stars', { boundSubject: '*'.repeat(17) }))).status, 400);

      // A role acts for the token that created it: its tokens are that token's children.
      const adm = await s.api('POST', '/v1/tokens', { name: 'short-admin', scopes: ['admin:api'], ttl: '1h', cidrs: ['127.0.0.0/8'] });
      assert.equal(adm.status, 201, adm.text);
      assert.equal((await s.api('POST', '/v1/auth/jwt/roles', role('by-admin', { ttl: '24h' }), adm.body.token)).status, 201);
      const r = await login('by-admin', await iss.sign(claims(), { expiresIn: '2h' }));
      assert.equal(r.status, 200, r.text);
      const self = await s.api('GET', '/v1/tokens/self', undefined, r.body.token);
      assert.equal(self.body.parentId, adm.body.id);
      assert.deepEqual(self.body.cidrs, ['127.0.0.0/8']);
      assert.ok(Date.parse(r.body.expiresAt) <= Date.parse(adm.body.expiresAt), 'never past the creator');
      assert.equal((await s.api('DELETE', `/v1/tokens/${adm.body.id}`)).status, 200);
      assert.equal((await s.api('GET', '/v1/projects', undefined, r.body.token)).status, 401, 'revoked with its creator');
      assert.equal((await login('by-admin', await iss.sign(claims()))).status, 401);
      let ev = (await events(s, 'auth.jwt.login')).filter((e) => e.outcome === 'denied').pop();
      assert.match(ev.detail.reason, /created the role .*revoked/);

      // Public keys only in an inline JWKS.
      const k = await makeKey('RS256', 'priv');
      const { exportJWK } = await import('jose');
      const priv = await s.api(
        'POST',
        '/v1/auth/jwt/roles',
        role('priv', { jwks: { keys: [{ ...(await exportJWK(k.privateKey)), kid: 'priv' }] } }),
      );
      assert.equal(priv.status, 400, priv.text);
      assert.match(priv.body.error.message, /private or secret key material/);
      // Only the public members of each key are kept: nothing else a document carries is stored.
      const extra = await s.api(
        'POST',
        '/v1/auth/jwt/roles',
        role('extra', { jwks: { keys: [{ ...k.jwk, D: 'not-a-member', note: 'x' }], d: 'top-level junk' } }),
      );
      assert.equal(extra.status, 400, 'unknown top-level members are refused by the schema');
      const pub = await s.api(
        'POST',
        '/v1/auth/jwt/roles',
        role('pub-only', { jwks: { keys: [{ ...k.jwk, D: 'not-a-member', note: 'x' }] } }),
      );
      assert.equal(pub.status, 201, pub.text);
      const stored = await s.server.container.stores.jwtRoles.get('pub-only');
      assert.ok(stored && !stored.jwks!.includes('not-a-member') && !stored.jwks!.includes('note'), stored?.jwks ?? '');

      // Only claims the JWT holds: constructor is not "present".
      assert.equal((await s.api('POST', '/v1/auth/jwt/roles', role('own', { requiredClaims: ['constructor', 'toString'] }))).status, 201);
      assert.equal((await login('own', await iss.sign(claims()))).status, 401);

      // A token pasted as the role name never reaches the audit log.
      const fake = `hush_${'A'.repeat(49)}`;
      assert.equal((await login(fake, await iss.sign(claims()))).status, 401);
      ev = (await events(s, 'auth.jwt.login')).filter((e) => e.outcome === 'denied').pop();
      assert.equal(ev.target.role, '[not a role name]');
      const body = fake.slice('hush_'.length).toLowerCase().slice(0, 40);
      assert.equal((await login(body, await iss.sign(claims()))).status, 401);
      ev = (await events(s, 'auth.jwt.login')).filter((e) => e.outcome === 'denied').pop();
      assert.equal(ev.target.role, body, 'a name that could be a role is recorded as given');
      assert.equal(ev.detail.claims.sub, 'repo:org/app:ref:refs/heads/main', 'the claimed sub, for an unknown role too');

      // A refused JWT's claimed iss and sub are in the event, marked unverified.
      assert.equal((await login('deploy', await iss.sign(claims(), { aud: 'elsewhere' }))).status, 401);
      ev = (await events(s, 'auth.jwt.login')).filter((e) => e.outcome === 'denied').pop();
      assert.equal(ev.detail.claims.sub, 'repo:org/app:ref:refs/heads/main');
      assert.equal(ev.detail.claims.unverified, true);

      // The role's events say what it matches and where its keys come from.
      const created = (await events(s, 'auth.role.create')).find((e) => e.target.role === 'k8s-app');
      assert.ok(
        created.detail.keySha256 && created.detail.boundSubject === 'system:serviceaccount:prod:app',
        JSON.stringify(created.detail),
      );
    });

    it('roles are managed by root, or by admin of every project their scopes name; stored, listed, deleted, audited', async () => {
      const adm = await s.api('POST', '/v1/tokens', { name: 'api-admin', scopes: ['admin:api'], ttl: '1h' });
      const a = adm.body.token;
      assert.equal(
        (await s.api('POST', '/v1/auth/jwt/roles', role('api-ci', { scopes: ['read:api/prod', 'write:api/dev'] }), a)).status,
        201,
      );
      const wide = await s.api('POST', '/v1/auth/jwt/roles', role('too-wide', { scopes: ['read:api/prod', 'read:web/prod'] }), a);
      assert.equal(wide.status, 403);
      assert.equal((await s.api('POST', '/v1/auth/jwt/roles', role('sys', { scopes: ['audit'] }), a)).status, 403);
      assert.equal((await s.api('POST', '/v1/auth/jwt/roles', role('api-ci'))).status, 409);
      const mine = await s.api('GET', '/v1/auth/jwt/roles', undefined, a);
      assert.ok(
        mine.body.roles.every((r: any) => r.scopes.every((x: string) => x.includes(':api/'))),
        JSON.stringify(mine.body.roles.map((r: any) => r.name)),
      );
      assert.ok(!mine.body.roles.some((r: any) => r.name === 'pem'), 'a role on web is not listed to an api admin');
      assert.equal((await s.api('GET', '/v1/auth/jwt/roles/pem', undefined, a)).status, 404);
      assert.equal((await s.api('DELETE', '/v1/auth/jwt/roles/pem', undefined, a)).status, 404);
      const reader = await s.api('POST', '/v1/tokens', { name: 'r', scopes: ['read:api/prod'], ttl: '1h' });
      assert.equal((await s.api('POST', '/v1/auth/jwt/roles', role('r1'), reader.body.token)).status, 403);

      for (const [what, body] of [
        ['issuer not a URL', role('x1', { issuer: 'not a url' })],
        ['two key sources', role('x2', { jwksUrl: 'https://a/keys', publicKey: '-----BEGIN PUBLIC KEY-----' })],
        ['a JWKS that is not one', role('x3', { jwks: { keys: [{ kty: 'nope' }] } })],
        ['a PEM that is not one', role('x4', { publicKey: 'not a key' })],
        ['ttl under a minute', role('x5', { ttl: '10s' })],
        ['bad scope', role('x6', { scopes: ['read:API'] })],
        ['bad name', role('X Y')],
      ] as const) {
        const r = await s.api('POST', '/v1/auth/jwt/roles', body);
        assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
      }
      assert.equal((await s.api('DELETE', '/v1/auth/jwt/roles/api-ci', undefined, a)).status, 200);
      assert.equal((await login('api-ci', await iss.sign(claims()))).status, 401, 'a deleted role logs nobody in');
      const acts = (await events(s, 'auth.role.create')).length + (await events(s, 'auth.role.delete')).length;
      assert.ok(acts >= 5);
    });
  });
}

describe('JWT login failures count toward the failed-authentication limit', () => {
  it('after the limit, even a valid JWT gets 429 with Retry-After', async (t) => {
    const s = await startOn('sqlite', { 'auth-fail-limit': 3 });
    const iss = await startIssuer();
    t.after(async () => {
      await s.close();
      await iss.close();
    });
    assert.equal(
      (await s.api('POST', '/v1/auth/jwt/roles', { name: 'ci', issuer: iss.url, audience: 'hush', scopes: ['read:api/prod'], ttl: '15m' }))
        .status,
      201,
    );
    const api = apiFor(s.url, '');
    for (let i = 0; i < 3; i++)
      assert.equal(
        (await api('POST', '/v1/auth/jwt/login', { role: 'ci', jwt: await iss.sign({ sub: 'x' }, { aud: 'wrong' }) }, null)).status,
        401,
      );
    const locked = await api('POST', '/v1/auth/jwt/login', { role: 'ci', jwt: await iss.sign({ sub: 'x' }) }, null);
    assert.equal(locked.status, 429, locked.text);
    assert.ok(Number(locked.headers.get('retry-after')) > 0);
  });
});

describe('JWT auth roles in backups (format 3)', () => {
  it('a backup carries the roles; the restored vault logs the same workload in', async (t) => {
    const s = await startOn('sqlite');
    const iss = await startIssuer();
    const dir = tempDir('hush-mi-backup-');
    t.after(async () => {
      await s.close();
      await iss.close();
    });
    await seed(s.api, { api: { prod: { DB_URL: 'restored-value' } } });
    assert.equal(
      (
        await s.api('POST', '/v1/auth/jwt/roles', {
          name: 'ci',
          issuer: iss.url,
          audience: 'hush',
          scopes: ['read:api/prod'],
          ttl: '15m',
          boundClaims: { repository: 'org/app' },
        })
      ).status,
      201,
    );
    const pass = join(dir, 'pass');
    writeFileSync(pass, 'backup passphrase for the roles test\n', { mode: 0o600 });
    const env = { HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken };
    const made = await runHush(['backup', 'create', '--passphrase-file', pass, '--out', join(dir, 'vault.pgp')], { env });
    assert.equal(made.code, 0, made.stderr);
    const restored = await runHush([
      'backup',
      'restore',
      join(dir, 'vault.pgp'),
      '--passphrase-file',
      pass,
      '--data-dir',
      join(dir, 'restored'),
    ]);
    assert.equal(restored.code, 0, restored.stderr);
    const r = await startServer({ dataDir: join(dir, 'restored') });
    t.after(() => r.close());
    const roles = await apiFor(r.url, s.rootToken)('GET', '/v1/auth/jwt/roles');
    assert.deepEqual(
      roles.body.roles.map((x: any) => [x.name, x.boundClaims]),
      [['ci', { repository: ['org/app'] }]],
    );
    const login = await apiFor(r.url, '')(
      'POST',
      '/v1/auth/jwt/login',
      { role: 'ci', jwt: await iss.sign({ sub: 'x', repository: 'org/app' }) },
      null,
    );
    assert.equal(login.status, 200, login.text);
    assert.equal((await apiFor(r.url, login.body.token)('GET', '/v1/projects/api/envs/prod/secrets/DB_URL')).body.value, 'restored-value');
  });
});
