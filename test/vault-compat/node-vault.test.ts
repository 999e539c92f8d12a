/**
 * The Vault KV v2-compatible API (docs/vault-compat.md), driven end to end
 * by node-vault, the npm Vault client, against a real server on a port
 * (both engines). node-vault sends LIST as the method.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodeVault from 'node-vault';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';
import { seed } from '../helpers/seed.js';
import { allEvents, createToken } from '../audit/util.js';

type VaultError = Error & { response?: { statusCode: number; body: unknown } };
const statusOf = async (p: Promise<unknown>): Promise<[number, unknown]> => {
  try {
    await p;
    return [200, null];
  } catch (e) {
    const r = (e as VaultError).response;
    if (!r) throw e;
    return [r.statusCode, r.body];
  }
};

for (const backend of BACKENDS) {
  describe(`KV v2 through node-vault on ${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, onBackend(backend), () => {
    let s: TestServer;
    let vault: ReturnType<typeof nodeVault>;

    before(async () => {
      s = await startOn(backend);
      await seed(s.api, { api: { prod: {}, staging: { EXISTING: 'x' } }, web: { prod: {} } });
      vault = nodeVault({ apiVersion: 'v1', endpoint: s.url, token: s.rootToken });
    });
    after(async () => {
      await s?.close();
    });

    it("writes and reads an environment's map; the version is the env revision", async () => {
      const w = await vault.write('secret/data/api/prod', { data: { DB_URL: 'postgres://db/app', API_KEY: 'k1' } });
      assert.equal(w.data.version, 1);
      const r = await vault.read('secret/data/api/prod');
      assert.deepEqual(r.data.data, { API_KEY: 'k1', DB_URL: 'postgres://db/app' });
      assert.equal(r.data.metadata.version, 1);
      assert.equal(r.data.metadata.destroyed, false);
      assert.equal(r.data.metadata.deletion_time, '');
      assert.match(r.data.metadata.created_time, /^\d{4}-\d\d-\d\dT/);
      // The native API sees the same values.
      const native = await s.api('GET', '/v1/projects/api/envs/prod/secrets');
      assert.deepEqual(native.body, { secrets: { API_KEY: 'k1', DB_URL: 'postgres://db/app' }, revision: 1 });
    });

    it('a write replaces the whole map; older versions stay readable (?version=N) and metadata lists them', async () => {
      const w = await vault.write('secret/data/api/prod', { data: { API_KEY: 'k2' }, options: { cas: 1 } });
      assert.equal(w.data.version, 2);
      assert.deepEqual((await vault.read('secret/data/api/prod')).data.data, { API_KEY: 'k2' });
      const v1 = await vault.read('secret/data/api/prod?version=1');
      assert.deepEqual(v1.data.data, { API_KEY: 'k1', DB_URL: 'postgres://db/app' });
      assert.equal(v1.data.metadata.version, 1);
      const m = await vault.read('secret/metadata/api/prod');
      assert.equal(m.data.current_version, 2);
      assert.deepEqual(Object.keys(m.data.versions), ['1', '2']);
    });

    it("a cas that does not match is 400 with Vault's message, and changes nothing", async () => {
      const [status, body] = await statusOf(vault.write('secret/data/api/prod', { data: { API_KEY: 'stale' }, options: { cas: 1 } }));
      assert.equal(status, 400);
      assert.deepEqual(body, { errors: ['check-and-set parameter did not match the current version'] });
      assert.deepEqual((await vault.read('secret/data/api/prod')).data.data, { API_KEY: 'k2' });
    });

    it('PATCH merges (application/merge-patch+json); null deletes a name', async () => {
      await vault.update('secret/data/api/prod', { data: { EXTRA: 'e', API_KEY: null } });
      assert.deepEqual((await vault.read('secret/data/api/prod')).data.data, { EXTRA: 'e' });
    });

    it('LIST (the method) lists projects, then the envs of one, as the token sees them', async () => {
      assert.deepEqual((await vault.list('secret/metadata/')).data.keys, ['api/', 'web/']);
      assert.deepEqual((await vault.list('secret/metadata/api')).data.keys, ['prod', 'staging']);
      assert.deepEqual((await vault.list('secret/metadata/api/')).data.keys, ['prod', 'staging']);
      const [status, body] = await statusOf(vault.list('secret/metadata/nope'));
      assert.deepEqual([status, body], [404, { errors: [] }]);
    });

    it('DELETE deletes the values as a new version; the data then reads as not found, history keeps them', async () => {
      await vault.delete('secret/data/api/prod');
      const [status, body] = await statusOf(vault.read('secret/data/api/prod'));
      assert.deepEqual([status, body], [404, { errors: [] }]);
      const m = await vault.read('secret/metadata/api/prod');
      assert.equal(m.data.current_version, 4);
      assert.notEqual(m.data.versions['4'].deletion_time, '');
      assert.deepEqual((await vault.read('secret/data/api/prod?version=3')).data.data, { EXTRA: 'e' });
    });

    it('a token scoped to another env gets 403 permission denied, and the denial is audited naming the route family', async () => {
      const t = await createToken(s, 'staging-reader', ['read:api/staging']);
      const scoped = nodeVault({ apiVersion: 'v1', endpoint: s.url, token: t.token });
      assert.deepEqual((await scoped.read('secret/data/api/staging')).data.data, { EXISTING: 'x' });
      const [status, body] = await statusOf(scoped.read('secret/data/api/prod'));
      assert.equal(status, 403);
      assert.match((body as { errors: string[] }).errors[0], /^permission denied/);
      const [wstatus] = await statusOf(scoped.write('secret/data/api/staging', { data: { A: 'b' } }));
      assert.equal(wstatus, 403);
      assert.deepEqual((await scoped.list('secret/metadata/')).data.keys, ['api/']);
      assert.deepEqual((await scoped.list('secret/metadata/api')).data.keys, ['staging']);
      const denied = await allEvents(s, 'outcome=denied&actor=' + t.id);
      assert.ok(
        denied.some((e) => e.action === 'secret.read' && String(e.target.route).startsWith('/v1/secret/data/')),
        JSON.stringify(denied.map((e) => e.target)),
      );
      const reads = await allEvents(s, 'action=secret.read&actor=' + t.id);
      assert.ok(reads.some((e) => e.outcome === 'ok' && e.detail.via === 'kv-v2'));
      const bad = nodeVault({ apiVersion: 'v1', endpoint: s.url, token: 'hush_not-a-token' });
      assert.equal((await statusOf(bad.read('secret/data/api/staging')))[0], 403);
    });

    it('an unknown project, env or version is 404 with an empty errors list', async () => {
      for (const path of [
        'secret/data/nope/prod',
        'secret/data/api/nope',
        'secret/data/api/staging?version=99',
        'secret/data/web/prod',
        'secret/metadata/api/nope',
        'secret/no-such-route',
      ]) {
        assert.deepEqual(await statusOf(vault.read(path)), [404, { errors: [] }], path);
      }
    });

    it("bad input is a 400 in Vault's shape, never a 500", async () => {
      const [status, body] = await statusOf(vault.write('secret/data/api/staging', { data: { N: 1 } }));
      assert.equal(status, 400);
      assert.match((body as { errors: string[] }).errors[0], /must be a string/);
      assert.equal((await statusOf(vault.write('secret/data/api/staging', { data: { 'bad-name': 'x' } })))[0], 400);
      assert.equal((await statusOf(vault.write('secret/data/api/staging', { nodata: true })))[0], 400);
    });

    it('references: resolved on read, kept through a read-modify-write, and checked on write as the native routes check them', async () => {
      await seed(s.api, { refs: { src: { SHARED: 'shared-value' }, dst: {} } });
      await vault.write('secret/data/refs/dst', { data: { HOST: 'db.internal', URL: 'pg://${HOST}/app', CROSS: '${src.SHARED}' } });
      const read = await vault.read('secret/data/refs/dst');
      assert.deepEqual(read.data.data, { CROSS: 'shared-value', HOST: 'db.internal', URL: 'pg://db.internal/app' });
      // A client that writes back what it read (hvac's patch does) with one change: the references stay references.
      await vault.write('secret/data/refs/dst', { data: { ...read.data.data, NEW: '1' } });
      const raw = await s.api('GET', '/v1/projects/refs/envs/dst/secrets?raw=1');
      assert.deepEqual(raw.body.secrets, { CROSS: '${src.SHARED}', HOST: 'db.internal', NEW: '1', URL: 'pg://${HOST}/app' });
      // A reader of dst only still cannot read src's value through CROSS.
      const { token: dstOnly } = await createToken(s, 'dst-only', ['read:refs/dst']);
      const denied = await s.api('GET', '/v1/secret/data/refs/dst', undefined, null, { 'x-vault-token': dstOnly });
      assert.equal(denied.status, 403);
      assert.ok(!denied.text.includes('shared-value'));
      // A malformed reference (400) and a cycle (422, as on the native routes) are refused on write, and nothing is stored.
      for (const [data, want] of [
        [{ BAD: 'a${' }, 400],
        [{ C1: '${C2}', C2: '${C1}' }, 422],
      ] as const) {
        const [status] = await statusOf(vault.write('secret/data/refs/dst', { data }));
        assert.equal(status, want, JSON.stringify(data));
      }
      assert.deepEqual(Object.keys((await s.api('GET', '/v1/projects/refs/envs/dst/secrets?raw=1')).body.secrets).sort(), [
        'CROSS',
        'HOST',
        'NEW',
        'URL',
      ]);
    });

    it('token lookup-self, health and mounts answer as Vault clients expect', async () => {
      const self = await vault.tokenLookupSelf();
      assert.equal(self.data.display_name, 'root');
      assert.ok(!JSON.stringify(self).includes(s.rootToken), 'the token string is not echoed');
      const health = await vault.health();
      assert.equal(health.initialized, true);
      assert.equal(health.sealed, false);
      assert.equal(health.standby, false);
      assert.equal(typeof health.version, 'string');
      const mounts = await vault.mounts();
      assert.equal(mounts.data['secret/'].options.version, '2');
    });
  });
}
