/**
 * Machine identity (issue 16), client side, against a real server: the SDK
 * logging in with a JWT (`createClient({ auth })`) and renewing its token,
 * `hush auth roles`, `hush run --role --jwt-file` on both of its parsers and
 * in the single-file client, and `hush login --oidc github-actions`. The
 * JWTs come from real signers: the loopback OIDC issuer of
 * test/helpers/oidc.ts, a stand-in for the GitHub Actions ID-token endpoint
 * (a loopback HTTP server that checks the request token and signs for the
 * audience asked), and a Kubernetes-style issuer known only by a JWKS file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { createClient, isAuthError, type HushClient } from 'hush-vault-sdk';
import { resolveConnection } from '../../cli/connection.js';
import { parseRunFast } from '../../cli/run/fast.js';
import { cli, oneErrorLine, type Cli } from '../cli/helpers.js';
import { runProgram } from '../client/support.js';
import { SINGLE_FILE_CLI, waitFor } from '../helpers/cli.js';
import { assertNoLeaks, observe, remember } from '../helpers/leaks.js';
import { makeKey, pemOf, startIssuer, type Issuer, type IssuerKey } from '../helpers/oidc.js';
import { seed } from '../helpers/seed.js';
import { capturedLogs, longPollArrived, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { hush, startHush } from '../run/util.js';

const DB_URL = 'postgres://app:pw@db/app';
const GENERIC = /JWT login failed: the role does not exist, or the JWT is not valid for it/;
const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const K8S_SUB = 'system:serviceaccount:prod:app';

/** Claims of a GitHub Actions job on main of org/app. */
const ghClaims = (extra: Record<string, unknown> = {}) => ({
  sub: 'repo:org/app:ref:refs/heads/main',
  repository: 'org/app',
  ref: 'refs/heads/main',
  ...extra,
});

let s: TestServer;
let iss: Issuer;
let root: HushClient;
let dir: string;
let k8sKey: IssuerKey;
let k8sJwksFile: string;

/** A JWT for the roles on `iss`, remembered for the leak scan. */
async function ghJwt(extra: Record<string, unknown> = {}, opts: Parameters<Issuer['sign']>[1] = {}): Promise<string> {
  return remember(await iss.sign(ghClaims(extra), opts));
}

/** A Kubernetes service-account token (projected, audience hush) signed by the key of the JWKS file. */
async function k8sJwt(sub = K8S_SUB, expiresIn: string | number = '1h'): Promise<string> {
  return remember(
    await new SignJWT({ sub, 'kubernetes.io': { namespace: 'prod', serviceaccount: { name: 'app' } } })
      .setProtectedHeader({ alg: 'RS256', kid: k8sKey.kid })
      .setIssuer(K8S_ISSUER)
      .setAudience(['hush'])
      .setIssuedAt()
      .setExpirationTime(expiresIn)
      .sign(k8sKey.privateKey),
  );
}

function writeJwt(name: string, jwt: string): string {
  const p = join(dir, name);
  writeFileSync(p, `${jwt}\n`, { mode: 0o600 });
  return p;
}

/** The environment of `hush` in a job: the server, the target, a HOME without a profile, no token. */
const jobEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: dir,
  XDG_CONFIG_HOME: join(dir, 'config'),
  HUSH_ADDR: s.url,
  HUSH_PROJECT: 'app',
  HUSH_ENV: 'prod',
  ...extra,
});

/** Observes a CLI's output for the leak scan and returns it. */
function seen<T extends { stdout?: string | Buffer; stderr: string }>(label: string, r: T): T {
  observe(`${label} stderr`, r.stderr);
  return r;
}

async function loginsOk(role: string): Promise<number> {
  const r = await s.api('GET', '/v1/audit?action=auth.jwt.login&limit=1000');
  assert.equal(r.status, 200, r.text);
  return r.body.events.filter((e: any) => e.outcome === 'ok' && e.target.role === role).length;
}

before(async () => {
  s = await startServer({ settings: { 'auth-fail-limit': '1000' } });
  remember(s.rootToken);
  iss = await startIssuer();
  dir = tempDir('hush-mi-clients-');
  await seed(s.api, { app: { prod: { DB_URL, REGION: 'eu-west-1' }, dev: { DB_URL: 'sqlite://dev' } } });
  root = createClient({ addr: s.url, token: s.rootToken });
  k8sKey = await makeKey('RS256', 'k8s-1');
  // What `kubectl get --raw /openid/v1/jwks` prints.
  k8sJwksFile = join(dir, 'k8s-jwks.json');
  writeFileSync(k8sJwksFile, JSON.stringify({ keys: [k8sKey.jwk] }));
  await root.auth.roles.create({
    name: 'deploy',
    issuer: iss.url,
    audience: 'hush',
    scopes: ['read:app/prod'],
    ttl: '15m',
    boundSubject: 'repo:org/app:*',
    boundClaims: { repository: 'org/app', ref: ['refs/heads/main', 'refs/tags/v*'] },
  });
});
after(async () => {
  await s?.close();
  await iss?.close();
});

describe('SDK: createClient({ auth: { role, jwt } })', () => {
  test('logs in on the first call that needs a token, and concurrent calls share that one login', async () => {
    let jwts = 0;
    const c = createClient({
      addr: s.url,
      auth: {
        role: 'deploy',
        jwt: async () => {
          jwts++;
          return `${await ghJwt()}\n`;
        },
      },
    });
    assert.equal((await c.health()).status, 'ok');
    assert.equal(jwts, 0, 'health needs no token, so no login');
    const before_ = await loginsOk('deploy');
    const values = await Promise.all(Array.from({ length: 6 }, () => c.secrets.get('app', 'prod', 'DB_URL')));
    assert.deepEqual(
      values.map((v) => v.value),
      Array(6).fill(DB_URL),
    );
    assert.equal(jwts, 1, 'one JWT asked for');
    assert.equal(await loginsOk('deploy'), before_ + 1, 'one login for six concurrent calls');
    const me = await c.tokens.self();
    assert.equal(me.name, 'jwt:deploy');
    assert.deepEqual(me.scopes, ['read:app/prod']);
    assert.equal(jwts, 1, 'the token is kept for later calls');
    await assert.rejects(c.secrets.get('app', 'dev', 'DB_URL'), { name: 'ForbiddenError' });
  });

  test(
    'logs in again before the token expires: a JWT that expires in 8 s bounds the token, which is ' + 'renewed in its last half',
    { timeout: 30_000 },
    async () => {
      let jwts = 0;
      const c = createClient({
        addr: s.url,
        auth: {
          role: 'deploy',
          jwt: () => {
            jwts++;
            return ghJwt({}, { expiresIn: '8s' });
          },
        },
      });
      const first = await c.tokens.self();
      const expires = Date.parse(first.expiresAt!);
      assert.ok(expires - Date.now() <= 8_000, `the token lives at most until the JWT's exp: ${expires - Date.now()} ms`);
      // Renewal is due once less than max(30 s, 20%) of the lifetime is left, capped at half of it: here the last ~4 s.
      const lifetime = expires - Date.parse(first.createdAt);
      await new Promise((r) => setTimeout(r, Math.max(0, expires - lifetime / 2 - Date.now()) + 300));
      const second = await c.tokens.self();
      assert.ok(Date.now() < expires, 'renewed while the first token was still valid');
      assert.notEqual(second.id, first.id, 'a new token');
      assert.equal(jwts, 2, 'a second JWT, read afresh');
      assert.equal((await c.secrets.get('app', 'prod', 'DB_URL')).value, DB_URL);
      assert.equal(jwts, 2, 'the new token is kept');
    },
  );

  test('a call answered 401 (its token was revoked) logs in once more and is repeated once', async () => {
    let jwts = 0;
    const c = createClient({
      addr: s.url,
      auth: {
        role: 'deploy',
        jwt: () => {
          jwts++;
          return ghJwt();
        },
      },
    });
    const first = await c.tokens.self();
    await root.tokens.revoke(first.id);
    assert.equal((await c.secrets.get('app', 'prod', 'REGION')).value, 'eu-west-1');
    assert.equal(jwts, 2);
    assert.notEqual((await c.tokens.self()).id, first.id);
  });

  test('a JWT the role refuses rejects the call with AuthError unauthorized, naming the role and never ' + 'the JWT', async () => {
    const jwt = await ghJwt({ repository: 'evil/app' });
    const c = createClient({ addr: s.url, auth: { role: 'deploy', jwt: () => jwt } });
    const err = await c.secrets.getAll('app', 'prod').then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    );
    assert.ok(isAuthError(err), String(err));
    assert.equal(err.code, 'unauthorized');
    assert.equal(err.status, 401);
    assert.match(err.message, GENERIC);
    assert.match(err.message, /role "deploy"/);
    observe('SDK error', `${err.message} ${JSON.stringify(err)}`);
    // A role that does not exist gets the very same answer.
    const none = createClient({ addr: s.url, auth: { role: 'no-such-role', jwt: () => ghJwt() } });
    await assert.rejects(none.projects.list(), (e: any) => e.code === 'unauthorized' && GENERIC.test(e.message));
  });

  test('the jwt function failing rejects the call with jwt_unavailable, and nothing is sent', async () => {
    const c = createClient({
      addr: s.url,
      auth: {
        role: 'deploy',
        jwt: () => {
          throw new Error('ENOENT: /var/run/secrets/tokens/hush');
        },
      },
    });
    await assert.rejects(
      c.projects.list(),
      (e: any) =>
        e.name === 'AuthError' && e.code === 'jwt_unavailable' && /cannot get the JWT to log in to role "deploy": ENOENT/.test(e.message),
    );
    const empty = createClient({ addr: s.url, auth: { role: 'deploy', jwt: () => '  \n' } });
    await assert.rejects(empty.projects.list(), { code: 'jwt_unavailable', message: 'the JWT to log in to role "deploy" is empty' });
  });

  test('{ token } or { tokenFile } with { auth }, and { auth } with a fallback cache, are configuration ' + 'errors', () => {
    const auth = { role: 'deploy', jwt: () => 'x' };
    assert.throws(() => createClient({ addr: s.url, token: s.rootToken, auth }), {
      name: 'ValidationError',
      code: 'invalid_config',
      message: /\{ token \} or \{ auth \}/,
    });
    assert.throws(() => createClient({ addr: s.url, tokenFile: '/dev/null', auth }), { code: 'invalid_config' });
    assert.throws(() => createClient({ addr: s.url, auth, fallback: { path: join(dir, 'cache') } }), {
      code: 'invalid_config',
      message: /fallback/,
    });
    assert.throws(() => createClient({ addr: s.url, auth: { role: '', jwt: () => 'x' } }), { code: 'invalid_config' });
  });

  test(
    'auth.login returns the login answer (the client keeps its own token); auth.roles creates, gets, ' + 'lists and deletes',
    async () => {
      const r = await root.auth.login('deploy', await ghJwt());
      remember(r.token);
      assert.equal(r.role, 'deploy');
      assert.deepEqual(r.scopes, ['read:app/prod']);
      assert.match(r.id, /^tok_/);
      assert.equal((await createClient({ addr: s.url, token: r.token }).secrets.get('app', 'prod', 'DB_URL')).value, DB_URL);
      assert.equal((await root.tokens.self()).name, 'root', 'the root client still uses its token');

      const input = {
        name: 'sdk-role',
        issuer: K8S_ISSUER,
        audience: 'hush',
        scopes: ['read:app/dev'],
        ttl: '5m',
        jwks: JSON.parse(readFileSync(k8sJwksFile, 'utf8')),
      };
      const created = await root.auth.roles.create(input);
      assert.equal(created.keySource, 'jwks');
      assert.equal(created.ttlSeconds, 300);
      assert.deepEqual((await root.auth.roles.get('sdk-role')).scopes, ['read:app/dev']);
      assert.ok((await root.auth.roles.list()).some((x) => x.name === 'sdk-role'));
      await assert.rejects(root.auth.roles.create(input), { name: 'ConflictError', code: 'already_exists' });
      assert.deepEqual(await root.auth.roles.delete('sdk-role'), { name: 'sdk-role', deleted: true });
      await assert.rejects(root.auth.roles.get('sdk-role'), { name: 'NotFoundError' });
    },
  );
});

describe('hush auth roles', () => {
  let u: Cli;
  before(() => {
    u = cli({ HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken });
  });

  test(
    'create with repeated --claim (a list), --sub, --require-claim, two --scope and a --jwks-url; ' + 'list, get and delete',
    async () => {
      const r = await u.json([
        'auth',
        'roles',
        'create',
        'gh-main',
        '--issuer',
        iss.url,
        '--audience',
        'hush',
        '--claim',
        'repository=org/app',
        '--claim',
        'ref=refs/heads/main',
        '--claim',
        'ref=refs/tags/v*',
        '--sub',
        'repo:org/app:*',
        '--require-claim',
        'workflow',
        '--scope',
        'read:app/prod',
        '--scope',
        'read:app/dev',
        '--ttl',
        '10m',
        '--jwks-url',
        `${iss.url}/keys`,
      ]);
      assert.equal(r.name, 'gh-main');
      assert.deepEqual(r.boundClaims, { repository: ['org/app'], ref: ['refs/heads/main', 'refs/tags/v*'] });
      assert.equal(r.boundSubject, 'repo:org/app:*');
      assert.deepEqual(r.requiredClaims, ['workflow']);
      assert.deepEqual(r.scopes, ['read:app/prod', 'read:app/dev']);
      assert.equal(r.ttlSeconds, 600);
      assert.equal(r.keySource, 'jwks_url');

      const human = await u.run(['auth', 'roles', 'list']);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /^NAME\s+ISSUER\s+AUDIENCE\s+MATCH\s+SCOPES\s+TTL\s+KEYS$/m);
      assert.match(
        human.stdout,
        /^gh-main\s.*sub=repo:org\/app:\* repository=org\/app ref=refs\/heads\/main\|refs\/tags\/v\*\s+read:app\/prod read:app\/dev\s+10m\s+jwks_url$/m,
      );
      assert.ok((await u.json(['auth', 'roles', 'list'])).some((x: any) => x.name === 'gh-main'));
      const shown = await u.run(['auth', 'roles', 'get', 'gh-main']);
      assert.match(shown.stdout, /^keys:\s+http:\/\/127\.0\.0\.1:\d+\/keys$/m);

      // The role works: a JWT with the claims it names (and the required one) logs in.
      const ok = await root.auth.login('gh-main', await ghJwt({ workflow: 'deploy' }));
      remember(ok.token);
      await assert.rejects(root.auth.login('gh-main', await ghJwt()), { code: 'unauthorized' });

      const del = await u.run(['auth', 'roles', 'delete', 'gh-main']);
      assert.equal(del.code, 0, del.stderr);
      assert.equal(del.stdout, 'Deleted JWT role gh-main.\n');
      assert.ok(!(await u.json(['auth', 'roles', 'list'])).some((x: any) => x.name === 'gh-main'));
      const again = seen('delete again', await u.run(['auth', 'roles', 'delete', 'gh-main']));
      assert.equal(again.code, 5);
      oneErrorLine(again.stderr);
    },
  );

  test(
    "--jwks-file sends the JWKS read here (a Kubernetes cluster's), --public-key-file the PEM; " + 'without either, OIDC discovery',
    async () => {
      const k = await u.json([
        'auth',
        'roles',
        'create',
        'k8s-app',
        '--issuer',
        K8S_ISSUER,
        '--audience',
        'hush',
        '--sub',
        K8S_SUB,
        '--scope',
        'read:app/prod',
        '--jwks-file',
        k8sJwksFile,
      ]);
      assert.equal(k.keySource, 'jwks');
      const ed = await makeKey('EdDSA', 'ed-1');
      const pemFile = join(dir, 'ci.pem');
      writeFileSync(pemFile, await pemOf(ed));
      const p = await u.json([
        'auth',
        'roles',
        'create',
        'pem-ci',
        '--issuer',
        'https://ci.internal',
        '--audience',
        'hush',
        '--scope',
        'read:app/dev',
        '--ttl',
        '5m',
        '--public-key-file',
        pemFile,
      ]);
      assert.equal(p.keySource, 'public_key');
      const jwt = remember(
        await new SignJWT({ sub: 'job-1' })
          .setProtectedHeader({ alg: 'EdDSA' })
          .setIssuer('https://ci.internal')
          .setAudience('hush')
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(ed.privateKey),
      );
      remember((await root.auth.login('pem-ci', jwt)).token);
      const d = await u.json([
        'auth',
        'roles',
        'create',
        'by-discovery',
        '--issuer',
        iss.url,
        '--audience',
        'hush',
        '--scope',
        'read:app/dev',
      ]);
      assert.equal(d.keySource, 'discovery');
      assert.equal(d.ttl, '15m', "the CLI's default ttl");
      await root.auth.roles.delete('pem-ci');
      await root.auth.roles.delete('by-discovery');
    },
  );

  test(
    'a private key, a JWKS with private members, two key sources or a bad --claim are refused here: ' + 'exit 2, one line, nothing sent',
    async () => {
      const key = await makeKey('RS256', 'priv');
      const { exportPKCS8, exportJWK } = await import('jose');
      const privPem = join(dir, 'private.pem');
      writeFileSync(privPem, await exportPKCS8(key.privateKey));
      const privJwks = join(dir, 'private-jwks.json');
      writeFileSync(privJwks, JSON.stringify({ keys: [{ ...(await exportJWK(key.privateKey)), kid: 'priv' }] }));
      const notJwks = join(dir, 'not-jwks.json');
      writeFileSync(notJwks, '{"keys": []}');
      const base = ['auth', 'roles', 'create', 'refused', '--issuer', iss.url, '--audience', 'hush', '--scope', 'read:app/prod'];
      const roleCreates = async () => (await s.api('GET', '/v1/audit?action=auth.role.create&limit=1000')).body.events.length;
      const before_ = await roleCreates();
      for (const [extra, msg] of [
        [['--public-key-file', privPem], /holds a private key; give the public key/],
        [['--jwks-file', privJwks], /holds private or secret key material \("d"\)/],
        [['--jwks-file', notJwks], /is not a JWKS document/],
        [['--jwks-file', join(dir, 'missing.json')], /cannot read --jwks-file .*ENOENT/],
        [['--jwks-url', `${iss.url}/keys`, '--jwks-file', k8sJwksFile], /give only one of --jwks-url, --jwks-file and --public-key-file/],
        [['--claim', 'no-equals-sign'], /is not NAME=VALUE/],
      ] as [string[], RegExp][]) {
        const r = seen('refused create', await u.run([...base, ...extra]));
        assert.equal(r.code, 2, `${extra.join(' ')}: ${r.stderr}`);
        assert.match(oneErrorLine(r.stderr), msg);
        assert.ok(!r.stderr.includes('PRIVATE KEY'), 'the key is never echoed');
      }
      assert.equal(await roleCreates(), before_, 'no role was created');
    },
  );

  test('a token with admin of another project cannot create a role on this one (exit 4)', async () => {
    const t = await root.tokens.create({ name: 'other-admin', scopes: ['admin:other'], ttl: '1h' });
    remember(t.token);
    const r = seen(
      'forbidden create',
      await cli({ HUSH_ADDR: s.url, HUSH_TOKEN: t.token }).run([
        'auth',
        'roles',
        'create',
        'x',
        '--issuer',
        iss.url,
        '--audience',
        'hush',
        '--scope',
        'read:app/prod',
      ]),
    );
    assert.equal(r.code, 4, r.stderr);
    oneErrorLine(r.stderr);
  });
});

describe('hush run --role --jwt-file', () => {
  before(async () => {
    await root.auth.roles.create({
      name: 'k8s',
      issuer: K8S_ISSUER,
      audience: 'hush',
      boundSubject: K8S_SUB,
      scopes: ['read:app/prod'],
      ttl: '15m',
      jwks: { keys: [k8sKey.jwk] },
    });
  });

  test('the fast path logs in with the Kubernetes service-account token and the command sees the secret', async () => {
    const jwtFile = writeJwt('k8s-token', await k8sJwt());
    const args = ['run', '--role', 'k8s', '--jwt-file', jwtFile, '--', 'sh', '-c', 'echo "$DB_URL"'];
    assert.ok(parseRunFast(args.slice(1)), 'these flags take the fast path');
    const r = seen('run fast', await hush(args, jobEnv()));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, `${DB_URL}\n`);
  });

  test('the yargs path does the same (-p=app is a form only yargs reads)', async () => {
    const jwtFile = writeJwt('k8s-token-2', await k8sJwt());
    const args = ['run', '-p=app', '-e=prod', '--role', 'k8s', '--jwt-file', jwtFile, '--', 'sh', '-c', 'echo "$DB_URL"'];
    assert.equal(parseRunFast(args.slice(1)), null, 'these flags go to yargs');
    const r = seen('run yargs', await hush(args, jobEnv({ HUSH_PROJECT: '', HUSH_ENV: '' })));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, `${DB_URL}\n`);
  });

  test('HUSH_ROLE with HUSH_JWT (a GitLab id_tokens variable) or HUSH_JWT_FILE; the command inherits ' + 'none of them', async () => {
    const jwt = await ghJwt();
    const print = ['sh', '-c', 'echo "$DB_URL|${HUSH_ROLE-unset}|${HUSH_JWT-unset}|${HUSH_JWT_FILE-unset}"'];
    const viaEnv = seen('run HUSH_JWT', await hush(['run', '--', ...print], jobEnv({ HUSH_ROLE: 'deploy', HUSH_JWT: jwt })));
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.equal(viaEnv.out, `${DB_URL}|unset|unset|unset\n`);
    const viaFile = seen(
      'run HUSH_JWT_FILE',
      await hush(['run', '--', ...print], jobEnv({ HUSH_ROLE: 'k8s', HUSH_JWT_FILE: writeJwt('k8s-token-3', await k8sJwt()) })),
    );
    assert.equal(viaFile.code, 0, viaFile.stderr);
    assert.equal(viaFile.out, `${DB_URL}|unset|unset|unset\n`);
  });

  test(
    'a JWT the role refuses: exit 4, one line naming the role and where the JWT came from, never the ' + 'JWT; the command is not started',
    async () => {
      const jwtFile = writeJwt('wrong-sub', await k8sJwt('system:serviceaccount:prod:intruder'));
      const r = seen(
        'run refused',
        await hush(['run', '--role', 'k8s', '--jwt-file', jwtFile, '--', 'sh', '-c', 'echo started'], jobEnv()),
      );
      assert.equal(r.code, 4);
      assert.equal(r.out, '');
      const line = oneErrorLine(r.stderr);
      assert.match(line, GENERIC);
      assert.match(line, /role "k8s"/);
      assert.match(line, new RegExp(`--jwt-file ${jwtFile}`));
      assert.match(line, /the command was not started$/);
    },
  );

  test(
    'usage errors: a role without a JWT, an unreadable --jwt-file, --jwt-file without a role, a token ' +
      'and a role at one level, --fallback with a role',
    async () => {
      const cases: [string[], NodeJS.ProcessEnv, number, RegExp][] = [
        [['--role', 'k8s'], {}, 2, /role k8s is given, but no JWT to log in with: pass --jwt-file FILE, or set HUSH_JWT or HUSH_JWT_FILE/],
        [['--role', 'k8s', '--jwt-file', join(dir, 'nope')], {}, 2, /cannot read --jwt-file .*nope: ENOENT/],
        [['--jwt-file', join(dir, 'k8s-token')], {}, 2, /--jwt-file needs the role to log in to/],
        [
          ['--role', 'k8s', '--jwt-file', join(dir, 'k8s-token'), '--token-file', join(dir, 'k8s-token')],
          {},
          2,
          /give either --token-file or --role, not both/,
        ],
        [[], { HUSH_ROLE: 'k8s', HUSH_JWT: 'x.y.z', HUSH_TOKEN: s.rootToken }, 2, /both a token .* and a role .* are set/],
        [['--role', 'k8s', '--jwt-file', join(dir, 'k8s-token'), '--fallback', join(dir, 'fb')], {}, 2, /--fallback needs a fixed token/],
      ];
      for (const [flags, env, code, msg] of cases) {
        const r = seen('run usage', await hush(['run', ...flags, '--', 'sh', '-c', 'echo started'], jobEnv(env)));
        assert.equal(r.code, code, `${flags.join(' ')}: ${r.stderr}`);
        assert.match(oneErrorLine(r.stderr), msg);
        assert.equal(r.out, '');
      }
      // A --role flag wins over HUSH_TOKEN (a flag beats the environment).
      const r = seen(
        'run role over env token',
        await hush(
          ['run', '--role', 'k8s', '--jwt-file', writeJwt('k8s-token-4', await k8sJwt()), '--', 'sh', '-c', 'echo "$DB_URL"'],
          jobEnv({ HUSH_TOKEN: 'hush_not_even_well_formed' }),
        ),
      );
      assert.equal(r.code, 0, r.stderr);
    },
  );

  test(
    '--watch re-logs in when its token expires (the JWT file rotated as the kubelet does) and still ' + 'restarts on a change',
    { timeout: 90_000 },
    async () => {
      const jwtFile = writeJwt('rotating', await k8sJwt(K8S_SUB, '6s'));
      const loginsBefore = await loginsOk('k8s');
      let logged = capturedLogs.length;
      const h = startHush(
        [
          'run',
          '--watch',
          '--role',
          'k8s',
          '--jwt-file',
          jwtFile,
          '--only',
          'REGION',
          '--',
          'sh',
          '-c',
          'echo "region=$REGION"; exec sleep 600',
        ],
        jobEnv(),
        { timeoutMs: 85_000 },
      );
      try {
        await h.waitOut('region=eu-west-1\n');
        await longPollArrived(logged, 'the first long-poll');
        // The kubelet replaces the token long before it expires; the token hush holds dies with the first JWT's exp.
        writeJwt('rotating', await k8sJwt(K8S_SUB, '10m'));
        // The first long-poll ends after its 25 s wait; the next needs a new token, hence a new login.
        logged = capturedLogs.length;
        await waitFor(
          () => capturedLogs.slice(logged).some((l) => l.includes('"incoming request"') && /"url":"[^"]*[?&]wait=/.test(l)),
          'a long-poll after the first token expired',
          45_000,
        );
        assert.equal(await loginsOk('k8s'), loginsBefore + 2, 'a second login, with the rotated JWT');
        const r = await s.api('PUT', '/v1/projects/app/envs/prod/secrets/REGION', { value: 'us-east-1' });
        assert.equal(r.status, 200, r.text);
        await h.waitOut('region=us-east-1\n', 20_000);
        assert.doesNotMatch(h.stderr(), /watch stopped/);
      } finally {
        try {
          process.kill(-h.child.pid!, 'SIGTERM');
        } catch {
          /* gone */
        }
        await h.done;
        await s.api('PUT', '/v1/projects/app/envs/prod/secrets/REGION', { value: 'eu-west-1' });
      }
      observe('run --watch stderr', h.stderr());
    },
  );

  test('the single-file client runs hush run --role (its fast bundle) and hush auth roles (its full ' + 'bundle)', async () => {
    const env = { ...jobEnv(), PATH: '/usr/bin:/bin' };
    const r = await runProgram(
      process.execPath,
      [SINGLE_FILE_CLI, 'run', '--role', 'k8s', '--jwt-file', writeJwt('k8s-token-5', await k8sJwt()), '--', 'sh', '-c', 'echo "$DB_URL"'],
      env,
    );
    observe('single-file run', r.stderr);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${DB_URL}\n`);
    const l = await runProgram(process.execPath, [SINGLE_FILE_CLI, 'auth', 'roles', 'list', '--json'], { ...env, HUSH_TOKEN: s.rootToken });
    assert.equal(l.status, 0, l.stderr);
    assert.ok((JSON.parse(l.stdout) as { name: string }[]).some((x) => x.name === 'k8s'));
  });
});

/**
 * A stand-in for the GitHub Actions runtime's ID-token endpoint: it checks
 * the request token as the runtime does and answers `{ value }`, a JWT from
 * the test issuer for the audience asked.
 */
async function startActionsRuntime(
  claims: Record<string, unknown>,
): Promise<{ env: NodeJS.ProcessEnv; audiences: string[]; refused: number; close(): Promise<void> }> {
  const requestToken = randomBytes(24).toString('base64url');
  remember(requestToken);
  const state = { env: {} as NodeJS.ProcessEnv, audiences: [] as string[], refused: 0, close: async (): Promise<void> => undefined };
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://runtime');
    if (
      u.pathname !== '/idtoken' ||
      u.searchParams.get('api-version') !== '2.0' ||
      !/^bearer /i.test(req.headers.authorization ?? '') ||
      req.headers.authorization!.slice(7) !== requestToken
    ) {
      state.refused++;
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"bad credentials"}');
      return;
    }
    const aud = u.searchParams.get('audience') ?? '';
    state.audiences.push(aud);
    void iss.sign(claims, { aud }).then((jwt) => {
      remember(jwt);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count: 1, value: jwt }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.env = { ACTIONS_ID_TOKEN_REQUEST_URL: `${url}/idtoken?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken };
  state.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}

describe('hush login --oidc github-actions', () => {
  let runtime: Awaited<ReturnType<typeof startActionsRuntime>>;
  before(async () => {
    runtime = await startActionsRuntime(ghClaims({ workflow: 'deploy', run_id: '42' }));
    await root.auth.roles.create({
      name: 'gh-other-aud',
      issuer: iss.url,
      audience: 'https://vault.example.com',
      boundClaims: { repository: 'org/app' },
      scopes: ['read:app/dev'],
      ttl: '5m',
    });
  });
  after(async () => {
    await runtime?.close();
  });

  test(
    'asks the runtime for an ID token for audience hush, logs in, and saves the token in the profile ' + '(0600) as hush login does',
    async () => {
      const u = cli({ HUSH_ADDR: s.url, ...runtime.env });
      const r = seen('login oidc', await u.run(['login', '--oidc', 'github-actions', '--role', 'deploy']));
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(runtime.audiences, ['hush']);
      assert.match(r.stdout, /^Logged in to http:\/\/127\.0\.0\.1:\d+ as jwt:deploy \(read:app\/prod\)\.$/m);
      assert.match(r.stdout, /^The token expires at /m);
      assert.equal(statSync(u.configFile).mode & 0o777, 0o600);
      const saved = JSON.parse(readFileSync(u.configFile, 'utf8'));
      assert.equal(saved.current, 'default');
      assert.match(saved.profiles.default.token, /^hush_/);
      remember(saved.profiles.default.token);
      assert.equal(saved.profiles.default.addr, s.url);
      assert.ok(!JSON.stringify(saved).includes('.ey'), 'the JWT is not saved');
      // The profile now works for every command, without the runtime.
      const get = await cli({ HOME: u.home, XDG_CONFIG_HOME: u.env.XDG_CONFIG_HOME }).run([
        'secrets',
        'get',
        'DB_URL',
        '-p',
        'app',
        '-e',
        'prod',
      ]);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(get.stdout, DB_URL);
    },
  );

  test('--audience asks for another audience; --json names the role', async () => {
    const u = cli({ HUSH_ADDR: s.url, ...runtime.env });
    const out = await u.json([
      'login',
      '--oidc',
      'github-actions',
      '--role',
      'gh-other-aud',
      '--audience',
      'https://vault.example.com',
      '--profile',
      'ci',
    ]);
    assert.equal(runtime.audiences.at(-1), 'https://vault.example.com');
    assert.equal(out.role, 'gh-other-aud');
    assert.equal(out.profile, 'ci');
    assert.deepEqual(out.token.scopes, ['read:app/dev']);
    assert.equal(out.token.name, 'jwt:gh-other-aud');
    assert.ok(!JSON.stringify(out).includes('hush_'), 'the token is not printed');
    // The same role, asked with the default audience: refused, nothing saved.
    const r = seen(
      'login wrong audience',
      await u.run(['login', '--oidc', 'github-actions', '--role', 'gh-other-aud', '--profile', 'ci2']),
    );
    assert.equal(r.code, 4);
    assert.match(oneErrorLine(r.stderr), /^hush: login failed, nothing saved: JWT login failed: .*\(role "gh-other-aud"\)$/);
    assert.equal(JSON.parse(readFileSync(u.configFile, 'utf8')).profiles.ci2, undefined);
  });

  test('outside GitHub Actions (no ACTIONS_ID_TOKEN_REQUEST_*): one line saying so, exit 4, nothing sent', async () => {
    const refused = runtime.refused;
    const r = seen('login outside actions', await cli({ HUSH_ADDR: s.url }).run(['login', '--oidc', 'github-actions', '--role', 'deploy']));
    assert.equal(r.code, 4);
    const notInActions = new RegExp(
      String.raw`^hush: not running in GitHub Actions with \`permissions: id-token: write\` ` +
        String.raw`\(ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set\)$`,
    );
    assert.match(oneErrorLine(r.stderr), notInActions);
    // A request token the runtime does not accept (a job without id-token: write gets none that works).
    const bad = seen(
      'login bad request token',
      await cli({ HUSH_ADDR: s.url, ...runtime.env, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'not-the-one' }).run([
        'login',
        '--oidc',
        'github-actions',
        '--role',
        'deploy',
      ]),
    );
    assert.equal(bad.code, 4);
    assert.match(oneErrorLine(bad.stderr), /refused the request \(HTTP 401\); does the job have `permissions: id-token: write`\?$/);
    assert.equal(runtime.refused, refused + 1);
    // Usage: --oidc needs a role; --audience goes with --oidc.
    assert.equal((await cli({ HUSH_ADDR: s.url, ...runtime.env }).run(['login', '--oidc', 'github-actions'])).code, 2);
    assert.equal((await cli({ HUSH_ADDR: s.url }).run(['login', '--audience', 'hush', '--token-stdin'], { input: s.rootToken })).code, 2);
  });

  test('hush login --role R --jwt-file F logs in with a JWT from a file', async () => {
    const u = cli({ HUSH_ADDR: s.url });
    const r = seen('login jwt file', await u.run(['login', '--role', 'k8s', '--jwt-file', writeJwt('k8s-login', await k8sJwt())]));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /as jwt:k8s \(read:app\/prod\)/);
  });
});

describe('a role and a token in the connection precedence (no server needed)', () => {
  const home = tempDir('hush-mi-precedence-');
  const profileToken = `hush_${'a'.repeat(49)}`;
  mkdirSync(join(home, 'hush'), { recursive: true });
  writeFileSync(
    join(home, 'hush', 'config.json'),
    JSON.stringify({ current: 'default', profiles: { default: { addr: 'http://127.0.0.1:1', token: profileToken } } }),
  );
  const tokenFile = join(home, 'token');
  writeFileSync(tokenFile, `hush_${'b'.repeat(49)}\n`);
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ XDG_CONFIG_HOME: home, HUSH_ADDR: 'http://127.0.0.1:2', ...extra });

  test('HUSH_ROLE wins over a profile; --token-file wins over HUSH_ROLE; --role wins over HUSH_TOKEN', () => {
    const byEnvRole = resolveConnection({}, env({ HUSH_ROLE: 'deploy', HUSH_JWT: 'a.b.c' }), home);
    assert.equal(byEnvRole.token, null);
    assert.equal(byEnvRole.jwt?.role, 'deploy');
    assert.equal(byEnvRole.jwt?.read?.(), 'a.b.c');
    assert.equal(byEnvRole.sources.token, 'role deploy (HUSH_ROLE) with the JWT from HUSH_JWT');
    const byFlagToken = resolveConnection({ 'token-file': tokenFile }, env({ HUSH_ROLE: 'deploy', HUSH_JWT: 'a.b.c' }), home);
    assert.equal(byFlagToken.jwt, null);
    assert.equal(byFlagToken.sources.token, '--token-file');
    const byFlagRole = resolveConnection({ role: 'deploy', 'jwt-file': tokenFile }, env({ HUSH_TOKEN: profileToken }), home);
    assert.equal(byFlagRole.token, null);
    assert.equal(byFlagRole.jwt?.from, `--jwt-file ${tokenFile}`);
    // Without a role the profile's token is used as before.
    assert.equal(resolveConnection({}, env(), home).token, profileToken);
  });

  test('the JWT comes from --jwt-file, else HUSH_JWT, else HUSH_JWT_FILE, and is read at each login, not ' + 'before', () => {
    const f = join(home, 'rotating-jwt');
    const c = resolveConnection({}, env({ HUSH_ROLE: 'k8s', HUSH_JWT_FILE: f }), home);
    assert.equal(c.jwt?.from, `HUSH_JWT_FILE ${f}`);
    assert.throws(() => c.jwt!.read!(), /cannot read HUSH_JWT_FILE .*ENOENT/);
    writeFileSync(f, 'first.jwt.x\n');
    assert.equal(c.jwt.read!(), 'first.jwt.x');
    writeFileSync(f, 'second.jwt.x\n');
    assert.equal(c.jwt.read!(), 'second.jwt.x');
    assert.equal(resolveConnection({}, env({ HUSH_ROLE: 'k8s', HUSH_JWT: 'env.jwt.x', HUSH_JWT_FILE: f }), home).jwt!.read!(), 'env.jwt.x');
    assert.equal(resolveConnection({ 'jwt-file': f }, env({ HUSH_ROLE: 'k8s', HUSH_JWT: 'env.jwt.x' }), home).jwt!.read!(), 'second.jwt.x');
  });

  test('a JWT is never sent to a server that only a .hush.json names', () => {
    const project = join(home, 'repo');
    mkdirSync(project, { recursive: true });
    writeFileSync(join(project, '.hush.json'), JSON.stringify({ project: 'app', env: 'prod', addr: 'https://evil.example' }));
    assert.throws(() => resolveConnection({ role: 'deploy' }, { XDG_CONFIG_HOME: home, HUSH_JWT: 'a.b.c' }, project), {
      code: 'addr_not_trusted',
      message: /a JWT is only sent to a server you chose/,
    });
    assert.equal(
      resolveConnection({ role: 'deploy' }, { XDG_CONFIG_HOME: home, HUSH_JWT: 'a.b.c', HUSH_ADDR: 'https://vault.example' }, project).addr,
      'https://vault.example',
    );
  });
});

describe('nothing leaks', () => {
  test('no JWT, token or request token in any CLI error, SDK error or server log line', (t) => {
    for (const line of capturedLogs) observe('server log', line);
    assertNoLeaks(t, 'machine identity clients');
  });
});
