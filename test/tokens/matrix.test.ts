/**
 * The authorisation matrix: every route x every kind of caller. Each cell is
 * one test that asserts the exact status (and, for denials, the error code).
 *
 * Callers ("columns") come in three groups:
 * - authentication failures, each otherwise a root-scoped token so that the
 *   failure alone decides: no token, malformed, unknown, expired, revoked,
 *   revoked parent, wrong CIDR;
 * - each grant kind in scope of the target api/prod (plus wildcard forms);
 * - grant kinds out of scope (another env, another project, a wildcard that
 *   does not match). audit, backup, metrics and root have no project, so they have
 *   no out-of-scope form: audit, backup and metrics are out of scope for every
 *   project route, which the in-scope columns already show.
 *
 * The expected outcome of every cell is written out here as a list of the
 * columns each route allows, not computed with the server's own grant code.
 */
import assert from 'node:assert/strict';
import { masterKeyFromBase64 } from '../../vault/crypto/keyring.js';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { formatToken } from 'hush-vault-sdk/token-format';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';
import { logLeakCheck, mint, remember, seed, secretValue } from './support.js';

type Column = { name: string; group: 'auth' | 'in' | 'out' };

const AUTH_COLUMNS = ['no token', 'malformed', 'unknown', 'expired', 'revoked', 'revoked parent', 'wrong CIDR'];
const IN_SCOPE = [
  'read:api/prod',
  'list:api/prod',
  'write:api/prod',
  'admin:api',
  'audit',
  'backup',
  'metrics',
  'root',
  'read:api/*',
  'write:*/prod',
  'admin:a*',
];
const OUT_OF_SCOPE = ['read:api/staging', 'list:api/staging', 'write:api/staging', 'admin:web', 'read:web*/*'];
const COLUMNS: Column[] = [
  ...AUTH_COLUMNS.map((name) => ({ name, group: 'auth' as const })),
  ...IN_SCOPE.map((name) => ({ name, group: 'in' as const })),
  ...OUT_OF_SCOPE.map((name) => ({ name, group: 'out' as const })),
];
const GRANT_COLUMNS = [...IN_SCOPE, ...OUT_OF_SCOPE];

// Who may do what to api/prod, spelled out.
const ADMIN_API = ['admin:api', 'admin:a*', 'root'];
const WRITE_PROD = ['write:api/prod', 'write:*/prod', ...ADMIN_API];
const READ_PROD = ['read:api/prod', 'read:api/*', ...WRITE_PROD];
const LIST_PROD = ['list:api/prod', ...READ_PROD];
const AUDIT = ['audit', 'root'];
const BACKUP = ['backup', 'root'];
const METRICS = ['metrics', 'root'];
const ROOT = ['root'];
const ANY = GRANT_COLUMNS;
/** Every grant that mentions project api in any way. */
const SEES_API = [...LIST_PROD, 'read:api/staging', 'list:api/staging', 'write:api/staging'];

interface Fixture {
  s: TestServer;
  tokens: Map<string, string | null>;
  masterKey: string;
  webhookId: string;
  reset(): Promise<void>;
}

interface Row {
  /** Method and path pattern as registered. */
  route: string;
  path: string | ((fx: Fixture) => Promise<string>);
  body?: Record<string, unknown> | ((fx: Fixture) => unknown);
  /** 'public' routes answer every caller; otherwise the grant columns allowed. */
  allowed: 'public' | string[];
  /** Status when allowed (a non-auth 4xx such as 409 counts as allowed: the request got past authorisation). */
  ok: number;
  /** Status when a valid token is not allowed. */
  denied?: number;
  /** Status with no credential at all, for a route that answers that (the UI's session probe: "no session", not a failure). */
  anonymous?: number;
  /** Text the 403 message must contain (the missing grant). */
  names?: string;
  /** The request changes fixtures; restore them after an allowed cell. */
  destructive?: boolean;
  /** A Vault-compatible route: errors in Vault's shape, a missing or bad token is 403 (docs/vault-compat.md). */
  vault?: boolean;
  /** Extra assertion on the side effect. */
  check?: (fx: Fixture, allowed: boolean, ctx: { path: string }) => Promise<void>;
}

const P = '/v1/projects/api/envs/prod';
/** Read on both api/prod and api/staging. */
const READ_BOTH = ['read:api/*', ...ADMIN_API];
/** Read on api/staging and write on api/prod. */
const COPY_TO_PROD = ADMIN_API;
const KV = '/v1/secret';

const ROWS: Row[] = [
  { route: 'GET /v1/sys/health', path: '/v1/sys/health', allowed: 'public', ok: 200 },
  { route: 'GET /v1/openapi.json', path: '/v1/openapi.json', allowed: 'public', ok: 200 },
  { route: 'GET /v1/sys/seal-status', path: '/v1/sys/seal-status', allowed: 'public', ok: 200 },
  { route: 'GET /v1/sys/metrics', path: '/v1/sys/metrics', allowed: METRICS, ok: 200, names: 'metrics' },
  { route: 'POST /v1/sys/unseal', path: '/v1/sys/unseal', body: { reset: true }, allowed: 'public', ok: 200 },
  {
    route: 'POST /v1/sys/seal',
    path: '/v1/sys/seal',
    body: {},
    allowed: ROOT,
    ok: 200,
    names: 'root',
    // Root seals the fixture: it is opened again the way a restart opens a file-sealed vault (runtime.start with its key).
    check: async (fx, allowed) => {
      assert.equal((await fx.s.api('GET', '/v1/sys/health')).status, allowed ? 503 : 200);
      if (allowed) await fx.s.server.runtime.start(async () => ({ mk: await masterKeyFromBase64(fx.masterKey, 'the fixture key') }));
      assert.equal((await fx.s.api('GET', '/v1/sys/health')).status, 200);
    },
  },
  {
    route: 'POST /v1/sys/rotate-master',
    path: '/v1/sys/rotate-master',
    body: (fx) => ({ newKey: fx.masterKey }),
    allowed: ROOT,
    ok: 200,
    names: 'root',
  },
  { route: 'GET /v1/projects', path: '/v1/projects', allowed: ANY, ok: 200 },
  { route: 'POST /v1/projects', path: '/v1/projects', body: { name: 'api' }, allowed: ADMIN_API, ok: 409, names: 'admin:api' },
  { route: 'DELETE /v1/projects/:p', path: '/v1/projects/api', allowed: ADMIN_API, ok: 200, names: 'admin:api', destructive: true },
  { route: 'POST /v1/projects/:p/rotate', path: '/v1/projects/api/rotate', body: {}, allowed: ADMIN_API, ok: 200, names: 'admin:api' },
  { route: 'GET /v1/projects/:p/envs', path: '/v1/projects/api/envs', allowed: SEES_API, ok: 200, names: 'api' },
  {
    route: 'POST /v1/projects/:p/envs',
    path: '/v1/projects/api/envs',
    body: { name: 'prod' },
    allowed: ADMIN_API,
    ok: 409,
    names: 'admin:api',
  },
  { route: 'DELETE /v1/projects/:p/envs/:e', path: P, allowed: ADMIN_API, ok: 200, names: 'admin:api', destructive: true },
  { route: 'GET /v1/projects/:p/envs/:e/secrets', path: `${P}/secrets`, allowed: READ_PROD, ok: 200, names: 'read:api/prod' },
  {
    route: 'PATCH /v1/projects/:p/envs/:e/secrets',
    path: `${P}/secrets`,
    body: () => ({ set: { OTHER: secretValue('patch') } }),
    allowed: WRITE_PROD,
    ok: 200,
    names: 'write:api/prod',
  },
  { route: 'GET /v1/projects/:p/envs/:e/keys', path: `${P}/keys`, allowed: LIST_PROD, ok: 200, names: 'list:api/prod' },
  { route: 'GET /v1/projects/:p/envs/:e/secrets/:key', path: `${P}/secrets/DB_URL`, allowed: READ_PROD, ok: 200, names: 'read:api/prod' },
  {
    route: 'PUT /v1/projects/:p/envs/:e/secrets/:key',
    path: `${P}/secrets/DB_URL`,
    body: () => ({ value: secretValue('put') }),
    allowed: WRITE_PROD,
    ok: 200,
    names: 'write:api/prod',
  },
  {
    route: 'DELETE /v1/projects/:p/envs/:e/secrets/:key',
    path: `${P}/secrets/DB_URL`,
    allowed: WRITE_PROD,
    ok: 200,
    names: 'write:api/prod',
    destructive: true,
  },
  {
    route: 'GET /v1/projects/:p/envs/:e/secrets/:key/versions',
    path: `${P}/secrets/DB_URL/versions`,
    allowed: LIST_PROD,
    ok: 200,
    names: 'list:api/prod',
  },
  { route: 'GET /v1/projects/:p/envs/:e/history', path: `${P}/history`, allowed: LIST_PROD, ok: 200, names: 'list:api/prod' },
  { route: 'GET /v1/projects/:p/envs/:e/diff', path: `${P}/diff?fromRevision=0`, allowed: READ_PROD, ok: 200, names: 'read:api/prod' },
  { route: 'GET /v1/projects/:p/envs/:e/diff', path: `${P}/diff?other=api/staging`, allowed: READ_BOTH, ok: 200 },
  {
    route: 'POST /v1/projects/:p/envs/:e/rollback',
    path: `${P}/rollback`,
    body: { toRevision: 0 },
    allowed: WRITE_PROD,
    ok: 200,
    names: 'write:api/prod',
    destructive: true,
  },
  {
    route: 'POST /v1/projects/:p/envs/:e/copy',
    path: `${P}/copy`,
    body: { from: { project: 'api', env: 'staging' } },
    allowed: COPY_TO_PROD,
    ok: 200,
    destructive: true,
  },
  { route: 'GET /v1/secret/data/:p/:e', path: `${KV}/data/api/prod`, allowed: READ_PROD, ok: 200, names: 'read:api/prod', vault: true },
  {
    route: 'POST /v1/secret/data/:p/:e',
    path: `${KV}/data/api/prod`,
    body: () => ({ data: { DB_URL: secretValue('kv-post') } }),
    allowed: WRITE_PROD,
    ok: 200,
    names: 'write:api/prod',
    vault: true,
    destructive: true,
  },
  {
    route: 'PUT /v1/secret/data/:p/:e',
    path: `${KV}/data/api/prod`,
    body: () => ({ data: { DB_URL: secretValue('kv-put') } }),
    allowed: WRITE_PROD,
    ok: 200,
    names: 'write:api/prod',
    vault: true,
    destructive: true,
  },
  {
    route: 'PATCH /v1/secret/data/:p/:e',
    path: `${KV}/data/api/prod`,
    body: () => ({ data: { OTHER: secretValue('kv-patch') } }),
    allowed: WRITE_PROD,
    ok: 200,
    names: 'write:api/prod',
    vault: true,
    destructive: true,
  },
  {
    route: 'DELETE /v1/secret/data/:p/:e',
    path: `${KV}/data/api/prod`,
    allowed: WRITE_PROD,
    ok: 204,
    names: 'write:api/prod',
    vault: true,
    destructive: true,
  },
  // Folders without ?list=true: any token gets past authorisation, then 400 (what a folder's metadata would be is not kept).
  { route: 'GET /v1/secret/metadata', path: `${KV}/metadata`, allowed: ANY, ok: 400, vault: true },
  { route: 'GET /v1/secret/metadata/:p', path: `${KV}/metadata/api`, allowed: ANY, ok: 400, vault: true },
  {
    route: 'GET /v1/secret/metadata/:p/:e',
    path: `${KV}/metadata/api/prod`,
    allowed: LIST_PROD,
    ok: 200,
    names: 'list:api/prod',
    vault: true,
  },
  { route: 'GET /v1/secret/config', path: `${KV}/config`, allowed: ANY, ok: 200, vault: true },
  { route: 'GET /v1/auth/token/lookup-self', path: '/v1/auth/token/lookup-self', allowed: ANY, ok: 200, vault: true },
  { route: 'GET /v1/sys/mounts', path: '/v1/sys/mounts', allowed: ANY, ok: 200, vault: true },
  {
    route: 'POST /v1/projects/:p/envs/:e/secrets/:key/generate',
    path: `${P}/secrets/GENERATED/generate`,
    body: { charset: 'hex', length: 16 },
    allowed: WRITE_PROD,
    ok: 200,
    names: 'write:api/prod',
  },
  {
    route: 'GET /v1/projects/:p/envs/:e/secrets/:key/policy',
    path: `${P}/secrets/DB_URL/policy`,
    allowed: LIST_PROD,
    ok: 200,
    names: 'list:api/prod',
  },
  {
    route: 'PUT /v1/projects/:p/envs/:e/secrets/:key/policy',
    path: `${P}/secrets/DB_URL/policy`,
    body: { rotateEvery: '90d' },
    allowed: WRITE_PROD,
    ok: 200,
    names: 'write:api/prod',
  },
  { route: 'GET /v1/secrets/stale', path: '/v1/secrets/stale', allowed: ANY, ok: 200 },
  {
    route: 'POST /v1/tokens',
    path: '/v1/tokens',
    body: { name: 'matrix-child', scopes: ['read:api/prod'] },
    allowed: READ_PROD,
    ok: 201,
    names: 'read:api/prod',
  },
  { route: 'GET /v1/tokens', path: '/v1/tokens', allowed: ANY, ok: 200 },
  { route: 'GET /v1/tokens/self', path: '/v1/tokens/self', allowed: ANY, ok: 200 },
  // Web UI sessions (test/ui/session.test.ts covers them with a browser's Origin and cookie): a bearer login without the
  // UI's Origin is refused as cross-site (403 csrf_refused), and a logout needs the session cookie (400).
  { route: 'POST /v1/ui/session', path: '/v1/ui/session', allowed: ANY, ok: 403 },
  { route: 'GET /v1/ui/session', path: '/v1/ui/session', allowed: ANY, ok: 200, anonymous: 200 },
  { route: 'DELETE /v1/ui/session', path: '/v1/ui/session', allowed: ANY, ok: 400 },
  {
    // A token the caller may not manage is answered 404, exactly like an id
    // that does not exist; the side effect shows which one happened.
    route: 'DELETE /v1/tokens/:id',
    path: async (fx) => `/v1/tokens/${(await mint(fx.s, ['read:api/prod'], { name: 'victim' })).id}`,
    allowed: ADMIN_API,
    ok: 200,
    denied: 404,
    check: async (fx, allowed, { path }) => {
      const id = path.split('/').pop()!;
      const r = await fx.s.api('GET', `/v1/tokens?includeRevoked=true&name=victim`);
      const victim = r.body.tokens.find((t: { id: string }) => t.id === id);
      assert.equal(victim.revokedAt !== null, allowed, allowed ? 'the victim should be revoked' : 'the victim must survive');
    },
  },
  { route: 'GET /v1/audit', path: '/v1/audit?limit=5', allowed: AUDIT, ok: 200, names: 'audit' },
  { route: 'GET /v1/audit/verify', path: '/v1/audit/verify', allowed: AUDIT, ok: 200, names: 'audit' },
  // JWT auth roles: managed by root or admin of every project the role's scopes name (role mx: read:api/prod, made by the fixture).
  {
    route: 'POST /v1/auth/jwt/roles',
    path: '/v1/auth/jwt/roles',
    body: { name: 'mx', issuer: 'https://issuer.example', audience: 'hush', scopes: ['read:api/prod'], ttl: '15m' },
    allowed: ADMIN_API,
    ok: 409,
  },
  { route: 'GET /v1/auth/jwt/roles', path: '/v1/auth/jwt/roles', allowed: ANY, ok: 200 },
  { route: 'GET /v1/auth/jwt/roles/:name', path: '/v1/auth/jwt/roles/mx', allowed: ADMIN_API, ok: 200, denied: 404 },
  {
    route: 'DELETE /v1/auth/jwt/roles/:name',
    path: async (fx) => {
      const name = `victim-${randomBytes(4).toString('hex')}`;
      const r = await fx.s.api('POST', '/v1/auth/jwt/roles', {
        name,
        issuer: 'https://issuer.example',
        audience: 'hush',
        scopes: ['read:api/prod'],
        ttl: '15m',
      });
      assert.equal(r.status, 201, r.text);
      return `/v1/auth/jwt/roles/${name}`;
    },
    allowed: ADMIN_API,
    ok: 200,
    denied: 404,
    check: async (fx, allowed, { path }) => {
      assert.equal((await fx.s.api('GET', path)).status, allowed ? 404 : 200, allowed ? 'the role is gone' : 'the role must survive');
    },
  },
  // Public: a JWT that is not valid for the role answers 401 to every caller, whatever token it sends.
  { route: 'POST /v1/auth/jwt/login', path: '/v1/auth/jwt/login', body: { role: 'mx', jwt: 'a.b.c' }, allowed: 'public', ok: 401 },
  // Webhooks: root manages every one, admin of a project that project's (webhook wx: project api, made by the fixture).
  {
    route: 'POST /v1/webhooks',
    path: '/v1/webhooks',
    body: { url: 'https://hooks.example.com/hush', events: ['secret.changed'], project: 'api' },
    allowed: ADMIN_API,
    ok: 201,
    names: 'admin:api',
  },
  { route: 'GET /v1/webhooks', path: '/v1/webhooks', allowed: ANY, ok: 200 },
  { route: 'GET /v1/webhooks/:id', path: async (fx) => `/v1/webhooks/${fx.webhookId}`, allowed: ADMIN_API, ok: 200, denied: 404 },
  {
    route: 'GET /v1/webhooks/:id/deliveries',
    path: async (fx) => `/v1/webhooks/${fx.webhookId}/deliveries`,
    allowed: ADMIN_API,
    ok: 200,
    denied: 404,
  },
  {
    route: 'POST /v1/webhooks/:id/test',
    path: async (fx) => `/v1/webhooks/${fx.webhookId}/test`,
    body: {},
    allowed: ADMIN_API,
    ok: 202,
    denied: 404,
  },
  {
    route: 'POST /v1/webhooks/:id/deliveries/:delivery/redeliver',
    path: async (fx) => {
      const d = await fx.s.api('GET', `/v1/webhooks/${fx.webhookId}/deliveries?limit=1`);
      assert.equal(d.status, 200, d.text);
      return `/v1/webhooks/${fx.webhookId}/deliveries/${d.body.deliveries[0].id}/redeliver`;
    },
    body: {},
    allowed: ADMIN_API,
    ok: 202,
    denied: 404,
  },
  {
    route: 'DELETE /v1/webhooks/:id',
    path: async (fx) => {
      const r = await fx.s.api('POST', '/v1/webhooks', {
        url: 'https://hooks.example.com/victim',
        events: ['secret.changed'],
        project: 'api',
      });
      assert.equal(r.status, 201, r.text);
      return `/v1/webhooks/${r.body.webhook.id}`;
    },
    allowed: ADMIN_API,
    ok: 200,
    denied: 404,
    check: async (fx, allowed, { path }) => {
      assert.equal((await fx.s.api('GET', path)).status, allowed ? 404 : 200, allowed ? 'the webhook is gone' : 'the webhook must survive');
    },
  },
  {
    route: 'POST /v1/backups',
    path: '/v1/backups',
    body: () => ({ passphrase: remember(`backup-pass-${randomBytes(6).toString('hex')}`), armor: true }),
    allowed: BACKUP,
    ok: 200,
    names: 'backup',
  },
];

const LAYOUT = () => ({
  api: { prod: { DB_URL: secretValue('api-prod') }, staging: { DB_URL: secretValue('api-staging') } },
  web: { prod: { X: secretValue('web-prod') } },
});

async function buildFixture(backend: 'sqlite' | 'postgres'): Promise<Fixture> {
  const masterKey = remember(randomBytes(32).toString('base64'));
  // The matrix makes hundreds of failing requests from one address on purpose.
  const s = await startOn(backend, { 'master-key': masterKey, 'auth-fail-limit': 1_000_000, 'rate-limit': 1_000_000 });
  remember(s.rootToken);
  await seed(s, LAYOUT());
  assert.equal(
    (
      await s.api('POST', '/v1/auth/jwt/roles', {
        name: 'mx',
        issuer: 'https://issuer.example',
        audience: 'hush',
        scopes: ['read:api/prod'],
        ttl: '15m',
      })
    ).status,
    201,
  );
  const wh = await s.api('POST', '/v1/webhooks', { url: 'https://hooks.example.com/matrix', events: ['secret.changed'], project: 'api' });
  assert.equal(wh.status, 201, wh.text);
  remember(wh.body.secret);
  // A delivery for the redeliver row (the receiver's name does not resolve here: it stays pending).
  assert.equal((await s.api('POST', `/v1/webhooks/${wh.body.webhook.id}/test`, {})).status, 202);
  const tokens = new Map<string, string | null>();
  const expiring = await mint(s, ['root'], { name: 'expired', ttl: '1s' });
  const expiresAt = Date.parse(expiring.body.expiresAt);
  tokens.set('expired', expiring.token);
  tokens.set('no token', null);
  tokens.set('malformed', remember('not-a-hush-token'));
  // Right shape, right checksum, never issued.
  tokens.set('unknown', remember(formatToken((n) => randomBytes(n))));
  const revoked = await mint(s, ['root'], { name: 'revoked' });
  assert.equal((await s.api('DELETE', `/v1/tokens/${revoked.id}`)).status, 200);
  tokens.set('revoked', revoked.token);
  const parent = await mint(s, ['root'], { name: 'parent' });
  const child = await mint(s, ['root'], { name: 'child-of-revoked', parent: parent.token });
  assert.equal((await s.api('DELETE', `/v1/tokens/${parent.id}`)).status, 200);
  tokens.set('revoked parent', child.token);
  tokens.set('wrong CIDR', (await mint(s, ['root'], { name: 'cidr', cidrs: ['10.0.0.0/8'] })).token);
  for (const g of GRANT_COLUMNS) tokens.set(g, (await mint(s, [g], { name: g })).token);
  const wait = expiresAt - Date.now() + 50;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  return { s, tokens, masterKey, webhookId: wh.body.webhook.id, reset: () => seed(s, LAYOUT()) };
}

function expectation(row: Row, col: Column): { status: number; code?: string } {
  if (row.allowed === 'public') return { status: row.ok };
  if (col.name === 'no token' && row.anonymous !== undefined) return { status: row.anonymous };
  if (col.group === 'auth') return row.vault ? { status: 403 } : { status: 401, code: 'unauthorized' };
  if (row.allowed.includes(col.name)) return { status: row.ok };
  const denied = row.denied ?? 403;
  return { status: denied, code: denied === 403 && !row.vault ? 'forbidden' : undefined };
}

export const CELLS_PER_BACKEND = ROWS.length * COLUMNS.length;

for (const backend of BACKENDS) {
  describe(
    `authorisation matrix on ${backend}: ${ROWS.length} routes x ${COLUMNS.length} callers = ${CELLS_PER_BACKEND} cells`,
    onBackend(backend),
    () => {
      let fx: Fixture;
      before(async () => {
        fx = await buildFixture(backend);
      });
      after(async () => {
        await fx?.s.close();
      });

      test('the route table lists every route the server registers, and no other', (t) => {
        const registered = new Set<string>(['GET /v1/openapi.json']);
        const doc = fx.s.server.app.swagger() as { paths: Record<string, Record<string, unknown>> };
        for (const [path, methods] of Object.entries(doc.paths)) {
          for (const m of Object.keys(methods)) if (m !== 'head') registered.add(`${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`);
        }
        assert.deepEqual([...new Set(ROWS.map((r) => r.route))].sort(), [...registered].sort());
        t.diagnostic(`matrix on ${backend}: ${ROWS.length} routes x ${COLUMNS.length} callers = ${CELLS_PER_BACKEND} cells`);
      });

      for (const row of ROWS) {
        describe(row.route, () => {
          for (const col of COLUMNS) {
            const want = expectation(row, col);
            const verdict =
              col.name === 'no token' && row.anonymous !== undefined
                ? `answers without a credential, uncounted (${want.status})`
                : want.status === 401
                  ? 'is unauthenticated (401)'
                  : want.code === 'forbidden' || (row.vault && want.status === 403)
                    ? 'is forbidden (403)'
                    : row.allowed !== 'public' && !row.allowed.includes(col.name)
                      ? `is refused without revealing the target (${want.status})`
                      : `is allowed (${want.status})`;
            test(`${row.route} with ${col.name} ${verdict}`, async () => {
              const path = typeof row.path === 'function' ? await row.path(fx) : row.path;
              const body = typeof row.body === 'function' ? row.body(fx) : row.body;
              const r = await fx.s.api(row.route.split(' ')[0], path, body, fx.tokens.get(col.name) ?? null);
              if (r.status === 201 && r.body?.token) remember(r.body.token);
              assert.equal(r.status, want.status, `${row.route} as ${col.name}: ${JSON.stringify(r.body)}`);
              if (want.code) assert.equal(r.body.error.code, want.code);
              const message = row.vault && r.status >= 400 ? r.body.errors[0] : r.body?.error?.message;
              if (row.vault && r.status === 403) assert.match(message, /^permission denied/);
              if (want.status === 403 && row.names && col.group !== 'auth')
                assert.match(message, new RegExp(row.names.replace(/[*/]/g, '\\$&')));
              const allowed = row.allowed === 'public' || (col.group !== 'auth' && row.allowed.includes(col.name));
              if (row.check) await row.check(fx, allowed, { path });
              if (allowed && row.destructive) await fx.reset();
            });
          }
        });
      }
    },
  );
}

logLeakCheck();
