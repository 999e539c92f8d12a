/**
 * Token trees: a child never holds more than its parent (grant, lifetime,
 * network), and revoking a token revokes everything below it on the very
 * next request, on every process sharing the database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openDb } from '../../vault/store/db.js';
import { BACKENDS, onBackend, freshPgDatabase, startOn, startServer, type TestServer } from '../helpers/server.js';
import { logLeakCheck, mint, remember, seed, secretValue } from './support.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

for (const backend of BACKENDS) {
  describe(`token trees on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend, { 'token-default-ttl': '2d', 'token-max-ttl': '10d', 'auth-fail-limit': 10_000 });
      remember(s.rootToken);
      await seed(s, { api: { prod: { DB_URL: secretValue('children') }, staging: {} }, web: { prod: {} } });
    });
    after(async () => {
      await s?.close();
    });

    const wider: [string, string][] = [
      ['read:api/prod', 'write:api/prod'],
      ['read:api/prod', 'read:api/*'],
      ['read:api/prod', 'read:*/prod'],
      ['read:api/prod', 'read:api/staging'],
      ['list:api/prod', 'read:api/prod'],
      ['write:api/*', 'admin:api'],
      ['admin:api', 'admin:api*'],
      ['admin:api', 'read:web/prod'],
      ['admin:*', 'audit'],
      ['audit', 'backup'],
      ['write:*/*', 'root'],
    ];
    for (const [parent, child] of wider) {
      test(`a ${parent} token cannot create a ${child} child (403 naming the grant)`, async () => {
        const p = await mint(s, [parent]);
        const r = await s.api('POST', '/v1/tokens', { name: 'escape', scopes: [child] }, p.token);
        assert.equal(r.status, 403);
        assert.equal(r.body.error.code, 'forbidden');
        assert.ok(r.body.error.message.includes(child), r.body.error.message);
      });
    }

    test('one out-of-scope grant among in-scope ones refuses the whole child', async () => {
      const p = await mint(s, ['read:api/prod']);
      const r = await s.api('POST', '/v1/tokens', { name: 'mixed', scopes: ['list:api/prod', 'read:api/staging'] }, p.token);
      assert.equal(r.status, 403);
      const list = await s.api('GET', '/v1/tokens?name=mixed');
      assert.deepEqual(list.body.tokens, []);
    });

    test('a child may narrow its parent: write:api/* creates read:api/prod', async () => {
      const p = await mint(s, ['write:api/*']);
      const c = await mint(s, ['read:api/prod'], { parent: p.token });
      assert.equal(c.body.parentId, p.id);
      assert.deepEqual(c.body.scopes, ['read:api/prod']);
      assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets', undefined, c.token)).status, 200);
    });

    test('a child cannot ask for a TTL longer than its parent has left (403)', async () => {
      const p = await mint(s, ['read:api/prod'], { ttl: '1h' });
      const r = await s.api('POST', '/v1/tokens', { name: 'long', scopes: ['read:api/prod'], ttl: '2h' }, p.token);
      assert.equal(r.status, 403);
      assert.match(r.body.error.message, /remaining lifetime/);
    });

    test('a child that asks for no TTL expires with its parent, not after the default', async () => {
      const p = await mint(s, ['read:api/prod'], { ttl: '1h' });
      const c = await mint(s, ['read:api/prod'], { parent: p.token });
      assert.equal(c.body.expiresAt, p.body.expiresAt);
    });

    test('a token created without a TTL gets the configured default', async () => {
      const before = Date.now();
      const t = await mint(s, ['read:api/prod']);
      const exp = Date.parse(t.body.expiresAt);
      assert.ok(exp >= before + 2 * DAY && exp <= Date.now() + 2 * DAY, t.body.expiresAt);
    });

    test('a TTL above the configured maximum is refused (400), even for root', async () => {
      const r = await s.api('POST', '/v1/tokens', { name: 'too-long', scopes: ['read:api/prod'], ttl: '11d' });
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /maximum of 10d/);
      assert.equal((await s.api('POST', '/v1/tokens', { name: 'max', scopes: ['read:api/prod'], ttl: '10d' })).status, 201);
    });

    test('a malformed TTL is refused (400)', async () => {
      for (const ttl of ['30', 'forever', '-1d', '0s', '1d2']) {
        const r = await s.api('POST', '/v1/tokens', { name: 'bad-ttl', scopes: ['read:api/prod'], ttl });
        assert.equal(r.status, 400, ttl);
      }
    });

    test("a child cannot widen its parent's CIDR allowlist (403)", async () => {
      const p = await mint(s, ['read:api/prod'], { cidrs: ['127.0.0.0/8'] });
      for (const cidrs of [['0.0.0.0/0'], ['10.0.0.0/8'], ['127.0.0.0/7'], ['127.0.0.1/32', '192.168.0.0/16']]) {
        const r = await s.api('POST', '/v1/tokens', { name: 'wide', scopes: ['read:api/prod'], cidrs }, p.token);
        assert.equal(r.status, 403, JSON.stringify(cidrs));
        assert.match(r.body.error.message, /outside the creating token's allowlist/);
      }
    });

    test('a child of a CIDR-bound parent inherits the allowlist, or narrows it', async () => {
      const p = await mint(s, ['read:api/prod'], { cidrs: ['127.0.0.0/8'] });
      const inherit = await mint(s, ['read:api/prod'], { parent: p.token });
      assert.deepEqual(inherit.body.cidrs, ['127.0.0.0/8']);
      const narrow = await mint(s, ['read:api/prod'], { parent: p.token, cidrs: ['127.0.0.1/32'] });
      assert.deepEqual(narrow.body.cidrs, ['127.0.0.1/32']);
      assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets', undefined, narrow.token)).status, 200);
    });

    test('revoking a token kills its grandchild on the very next request', async () => {
      const a = await mint(s, ['write:api/*'], { name: 'a' });
      const b = await mint(s, ['write:api/prod'], { name: 'b', parent: a.token });
      const c = await mint(s, ['read:api/prod'], { name: 'c', parent: b.token });
      assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets', undefined, c.token)).status, 200);
      const r = await s.api('DELETE', `/v1/tokens/${a.id}`);
      assert.equal(r.status, 200);
      assert.deepEqual([...r.body.revoked].sort(), [a.id, b.id, c.id].sort());
      for (const t of [c, b, a]) assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets', undefined, t.token)).status, 401);
    });

    test('revoking a child leaves its parent working', async () => {
      const a = await mint(s, ['read:api/prod']);
      const b = await mint(s, ['read:api/prod'], { parent: a.token });
      assert.equal((await s.api('DELETE', `/v1/tokens/${b.id}`, undefined, a.token)).status, 200);
      assert.equal((await s.api('GET', '/v1/tokens/self', undefined, b.token)).status, 401);
      assert.equal((await s.api('GET', '/v1/tokens/self', undefined, a.token)).status, 200);
    });

    test('a token can revoke itself', async () => {
      const a = await mint(s, ['read:api/prod']);
      assert.equal((await s.api('DELETE', `/v1/tokens/${a.id}`, undefined, a.token)).status, 200);
      assert.equal((await s.api('GET', '/v1/tokens/self', undefined, a.token)).status, 401);
    });

    test('a token cannot revoke its parent or a sibling: 404, as for an unknown id', async () => {
      const p = await mint(s, ['write:api/*']);
      const c1 = await mint(s, ['read:api/prod'], { parent: p.token });
      const c2 = await mint(s, ['read:api/prod'], { parent: p.token });
      for (const id of [p.id, c2.id, 'tok_doesnotexist']) {
        const r = await s.api('DELETE', `/v1/tokens/${id}`, undefined, c1.token);
        assert.equal(r.status, 404);
        assert.equal(r.body.error.code, 'token_not_found');
      }
      assert.equal((await s.api('GET', '/v1/tokens/self', undefined, p.token)).status, 200);
      assert.equal((await s.api('GET', '/v1/tokens/self', undefined, c2.token)).status, 200);
    });

    test('an admin:api token can revoke a token within api that root created, not one outside it', async () => {
      const admin = await mint(s, ['admin:api']);
      const inside = await mint(s, ['read:api/prod', 'write:api/staging']);
      const outside = await mint(s, ['read:api/prod', 'read:web/prod']);
      assert.equal((await s.api('DELETE', `/v1/tokens/${outside.id}`, undefined, admin.token)).status, 404);
      assert.equal((await s.api('DELETE', `/v1/tokens/${inside.id}`, undefined, admin.token)).status, 200);
      assert.equal((await s.api('GET', '/v1/tokens/self', undefined, inside.token)).status, 401);
      assert.equal((await s.api('GET', '/v1/tokens/self', undefined, outside.token)).status, 200);
    });

    test('a token in heavy use is refused from the first request after its revocation was answered', async () => {
      const t = await mint(s, ['read:api/prod']);
      const use = () => s.api('GET', '/v1/projects/api/envs/prod/secrets', undefined, t.token);
      let stop = false;
      const codes: number[][] = [[], [], [], []];
      // Several requests at once keep authenticating the token while its
      // revocation is being written (and committed together with them).
      const load = codes.map(async (mine) => {
        while (!stop) mine.push((await use()).status);
      });
      while (codes.some((c) => c.length < 10)) await new Promise((r) => setTimeout(r, 5));
      assert.equal((await s.api('DELETE', `/v1/tokens/${t.id}`, undefined, s.rootToken)).status, 200);
      const seen = codes.map((c) => c.length);
      for (let i = 0; i < 5; i++) assert.equal((await use()).status, 401, `request ${i} after the revocation`);
      stop = true;
      await Promise.all(load);
      codes.forEach((c, i) => {
        assert.ok(c.slice(0, 10).every((x) => x === 200));
        assert.ok(
          c.slice(seen[i] + 1).every((x) => x === 401),
          `served after the revocation: ${c.slice(seen[i] + 1).join(',')}`,
        );
      });
    });

    test("a child whose parent was revoked behind revokeTree's back is still refused", async () => {
      // Models a child inserted while its parent was being revoked (by
      // another process sharing the database): the parent row is revoked,
      // the child row is not. All three were used, so this process has read
      // them before.
      const p = await mint(s, ['read:api/prod']);
      const c = await mint(s, ['read:api/prod'], { parent: p.token });
      const g = await mint(s, ['read:api/prod'], { parent: c.token });
      for (const t of [g, c]) assert.equal((await s.api('GET', '/v1/tokens/self', undefined, t.token)).status, 200);
      const other = openDb({ url: s.config.databaseUrl ?? `sqlite:${join(s.dataDir, 'hush.db')}` });
      try {
        await other('tokens').where({ id: p.id }).update({ revoked_at: Date.now() });
      } finally {
        await other.destroy();
      }
      assert.equal((await s.api('GET', '/v1/tokens/self', undefined, g.token)).status, 401);
      assert.equal((await s.api('GET', '/v1/tokens/self', undefined, c.token)).status, 401);
    });

    test('token creation returns the token string once; listings and self never include it or its hash', async () => {
      const t = await mint(s, ['read:api/prod'], { name: 'shown-once' });
      assert.match(t.token, /^hush_/);
      for (const [path, tok] of [
        ['/v1/tokens?includeRevoked=true', s.rootToken],
        ['/v1/tokens/self', t.token],
        ['/v1/tokens', t.token],
      ] as const) {
        const r = await s.api('GET', path, undefined, tok);
        assert.equal(r.status, 200);
        const text = JSON.stringify(r.body);
        assert.ok(!text.includes(t.token), path);
        assert.ok(!/"(token|hash)"/.test(text), `${path} has a token or hash field`);
      }
    });

    test('name and description are stored and shown', async () => {
      const r = await s.api('POST', '/v1/tokens', {
        name: 'deploy-api-prod',
        description: 'used by the deploy job',
        scopes: ['read:api/prod'],
        ttl: '1d',
      });
      remember(r.body.token);
      assert.equal(r.status, 201);
      const self = await s.api('GET', '/v1/tokens/self', undefined, r.body.token);
      assert.equal(self.body.name, 'deploy-api-prod');
      assert.equal(self.body.description, 'used by the deploy job');
      assert.ok(Math.abs(Date.parse(self.body.expiresAt) - Date.now() - DAY) < 60_000);
    });
  });
}

for (const backend of BACKENDS) {
  // Two servers on one database (two connections each; the same as two
  // processes to the database). On SQLite they share one data dir.
  describe(`revocation across server processes sharing one ${backend} database`, onBackend(backend), () => {
    let a: TestServer | undefined;
    let b: TestServer | undefined;
    let drop: (() => Promise<void>) | undefined;
    before(async () => {
      const mk = remember(randomBytes(32).toString('base64'));
      if (backend === 'postgres') {
        const db = (await freshPgDatabase())!;
        drop = db.drop;
        a = await startServer({ settings: { 'database-url': db.url, 'master-key': mk } });
        remember(a.rootToken);
        b = await startServer({ settings: { 'database-url': db.url, 'master-key': mk } });
      } else {
        a = await startServer({ settings: { 'master-key': mk } });
        remember(a.rootToken);
        b = await startServer({ settings: { 'master-key': mk }, dataDir: a.dataDir });
      }
      assert.equal(b.server.init, null, 'the second server must open the vault the first one created');
      await seed(a, { api: { prod: { DB_URL: secretValue(backend) } } });
    });
    after(async () => {
      await b?.close();
      await a?.close();
      await drop?.();
    });

    const use = (srv: TestServer, t: string) => srv.api('GET', '/v1/projects/api/envs/prod/secrets', undefined, t);

    test('a token revoked on one server is refused by the other on the very next request', async () => {
      const parent = await mint(a!, ['read:api/*']);
      const child = await mint(a!, ['read:api/prod'], { parent: parent.token });
      assert.equal((await use(b!, child.token)).status, 200);
      assert.equal((await use(b!, parent.token)).status, 200);
      assert.equal((await a!.api('DELETE', `/v1/tokens/${parent.id}`, undefined, a!.rootToken)).status, 200);
      assert.equal((await use(b!, child.token)).status, 401);
      assert.equal((await use(b!, parent.token)).status, 401);
    });

    test('a revocation made on the second server is seen by the first', async () => {
      const t = await mint(a!, ['read:api/prod']);
      assert.equal((await a!.api('GET', '/v1/tokens/self', undefined, t.token)).status, 200);
      assert.equal((await b!.api('DELETE', `/v1/tokens/${t.id}`, undefined, t.token)).status, 200);
      assert.equal((await a!.api('GET', '/v1/tokens/self', undefined, t.token)).status, 401);
    });

    test('a revocation is seen by a server that is busy serving the token when it lands', async () => {
      const t = await mint(a!, ['read:api/prod']);
      let stop = false;
      const codes: number[] = [];
      // Keeps b reading with the token (and its cache warm) while a revokes it.
      const load = (async () => {
        while (!stop) codes.push((await use(b!, t.token)).status);
      })();
      while (codes.length < 20) await new Promise((r) => setTimeout(r, 5));
      assert.equal((await a!.api('DELETE', `/v1/tokens/${t.id}`, undefined, a!.rootToken)).status, 200);
      const n = codes.length;
      assert.equal((await use(b!, t.token)).status, 401, 'the first request after the revocation answered');
      stop = true;
      await load;
      assert.ok(codes.slice(0, 20).every((c) => c === 200));
      // Requests in flight when the revocation committed may have been served;
      // none that started after the revocation's answer was.
      assert.ok(
        codes.slice(n + 1).every((c) => c === 401),
        `served after revocation: ${codes.slice(n + 1).join(',')}`,
      );
    });
  });
}

logLeakCheck();
