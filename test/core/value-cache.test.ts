import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { spawnServer } from '../helpers/cli.js';
import { loadConfig } from '../../vault/config.js';
import { valueCacheFactory } from '../../vault/services/secret/value-cache.js';
import { apiFor } from '../audit/util.js';
import { BACKENDS, onBackend, startOn, tempDir, NEEDS_PG } from '../helpers/server.js';

const base = '/v1/projects/api/envs/prod';

for (const backend of BACKENDS) {
  describe(`decrypted-value cache on ${backend}`, onBackend(backend), () => {
    it('every change is seen by the next read: put, delete, bulk, only=, env re-created', async () => {
      const s = await startOn(backend);
      try {
        await s.api('POST', '/v1/projects', { name: 'api' });
        await s.api('POST', '/v1/projects/api/envs', { name: 'prod' });
        await s.api('PATCH', `${base}/secrets`, { set: { A: '1', B: '2' } });
        const read = async (q = '') => (await s.api('GET', `${base}/secrets${q}`)).body.secrets;
        assert.deepEqual(await read(), { A: '1', B: '2' });
        assert.deepEqual(await read(), { A: '1', B: '2' });
        await s.api('PUT', `${base}/secrets/A`, { value: 'one' });
        assert.deepEqual(await read(), { A: 'one', B: '2' });
        assert.deepEqual(await read('?only=B,ZZ'), { B: '2' });
        await s.api('DELETE', `${base}/secrets/B`);
        assert.deepEqual(await read(), { A: 'one' });
        await s.api('PATCH', `${base}/secrets`, { set: { C: '3' }, delete: ['A'] });
        assert.deepEqual(await read(), { C: '3' });
        assert.equal((await s.api('DELETE', '/v1/projects/api/envs/prod')).status, 200);
        await s.api('POST', '/v1/projects/api/envs', { name: 'prod' });
        assert.deepEqual(await read(), {});
        await s.api('PUT', `${base}/secrets/C`, { value: 'new env' });
        assert.deepEqual(await read(), { C: 'new env' });
      } finally {
        await s.close();
      }
    });
  });
}

describe('decrypted-value cache settings and bounds', () => {
  it('--value-cache takes a size; 0 turns the cache off, so every read decrypts the stored rows', async () => {
    assert.equal(loadConfig({}, {}).valueCacheBytes, 16 * 1024 * 1024);
    assert.equal(loadConfig({ 'value-cache': '0' }, {}).valueCacheBytes, 0);
    assert.equal(loadConfig({}, { HUSH_VALUE_CACHE: '4MiB' }).valueCacheBytes, 4 * 1024 * 1024);
    // Copies A's ciphertext into B's row behind the server's back (the env's revision does not move):
    // a cached read still serves the values it decrypted before, an uncached one meets the altered row.
    const readAfterTampering = async (settings: Record<string, unknown>) => {
      const s = await startOn('sqlite', settings);
      try {
        await s.api('POST', '/v1/projects', { name: 'api' });
        await s.api('POST', '/v1/projects/api/envs', { name: 'prod' });
        await s.api('PATCH', `${base}/secrets`, { set: { A: 'x', B: 'y' } });
        assert.deepEqual((await s.api('GET', `${base}/secrets`)).body.secrets, { A: 'x', B: 'y' });
        const db = s.server.container.db;
        const rows = await db('secret_versions as v')
          .join('secrets as s', function () {
            this.on('s.id', '=', 'v.secret_id').andOn('s.version', '=', 'v.version');
          })
          .select('v.id', 's.name', 'v.nonce', 'v.ciphertext')
          .orderBy('s.name');
        await db('secret_versions').where({ id: rows[1].id }).update({ nonce: rows[0].nonce, ciphertext: rows[0].ciphertext });
        return await s.api('GET', `${base}/secrets`);
      } finally {
        await s.close();
      }
    };
    const cached = await readAfterTampering({});
    assert.equal(cached.status, 200);
    assert.deepEqual(cached.body.secrets, { A: 'x', B: 'y' }, 'with the cache on, the second read is served from it');
    const uncached = await readAfterTampering({ 'value-cache': '0' });
    assert.equal(uncached.status, 500, 'with --value-cache 0 the second read decrypts the altered row');
    assert.equal(uncached.body.error.code, 'integrity_error');
  });

  it('an entry is only served for its exact env, creation time and revision, and the cache stays within its size', () => {
    const c = valueCacheFactory(4096);
    const env = { id: 1, createdAt: 100, revision: 3 };
    c.set(7, env, ['A'], { A: 'a' });
    assert.deepEqual(c.get(7, env)?.values, { A: 'a' });
    assert.equal(c.get(7, { ...env, revision: 4 }), null);
    c.set(7, env, ['A'], { A: 'a' });
    assert.equal(c.get(7, { ...env, createdAt: 101 }), null);
    c.set(7, env, ['A'], { A: 'a' });
    assert.equal(c.get(8, env), null, 'another project');
    // An older revision never replaces a newer one.
    c.set(7, { ...env, revision: 5 }, ['A'], { A: 'five' });
    c.set(7, env, ['A'], { A: 'three' });
    assert.deepEqual(c.get(7, { ...env, revision: 5 })?.values, { A: 'five' });
    for (let i = 10; i < 200; i++) c.set(7, { id: i, createdAt: 1, revision: 1 }, ['K'], { K: 'v'.repeat(100) });
    assert.ok(c.size.bytes <= 4096, `${c.size.bytes} bytes`);
    assert.ok(c.get(7, { id: 199, createdAt: 1, revision: 1 }), 'the most recent entry is kept');
    assert.equal(c.get(7, { id: 10, createdAt: 1, revision: 1 }), null, 'the oldest entries were evicted');
  });
});

describe('decrypted-value cache across processes (PostgreSQL)', NEEDS_PG, () => {
  it('a write made through one server is returned by the next read on the other', async () => {
    const a = await startOn('postgres');
    const b = await spawnServer([
      '--database-url',
      a.config.databaseUrl!,
      '--master-key-file',
      join(a.dataDir, 'master.key'),
      '--data-dir',
      join(tempDir(), 'b'),
      '--listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
    ]);
    try {
      const apiB = apiFor(b.url, a.rootToken);
      await a.api('POST', '/v1/projects', { name: 'api' });
      await a.api('POST', '/v1/projects/api/envs', { name: 'prod' });
      await a.api('PUT', `${base}/secrets/A`, { value: 'first' });
      assert.deepEqual((await a.api('GET', `${base}/secrets`)).body.secrets, { A: 'first' });
      assert.deepEqual((await apiB('GET', `${base}/secrets`)).body.secrets, { A: 'first' });
      for (let i = 0; i < 5; i++) {
        assert.equal((await apiB('PUT', `${base}/secrets/A`, { value: `b-${i}` })).status, 200);
        assert.deepEqual((await a.api('GET', `${base}/secrets`)).body.secrets, { A: `b-${i}` });
        assert.equal((await a.api('PUT', `${base}/secrets/A`, { value: `a-${i}` })).status, 200);
        assert.deepEqual((await apiB('GET', `${base}/secrets`)).body.secrets, { A: `a-${i}` });
      }
    } finally {
      await b.stop();
      await a.close();
    }
  });
});
