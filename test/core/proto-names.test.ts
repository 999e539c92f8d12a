import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jsonRequest } from '../helpers/http.js';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';

/**
 * Secret names that are Object.prototype's (`__proto__`, `constructor`,
 * `toString`) are names like any other: accepted by the bulk PATCH as by
 * PUT .../secrets/:key (the bulk body is parsed into null-prototype
 * objects), and never reaching Object.prototype. Other bodies keep
 * refusing a `__proto__` key.
 */
for (const backend of BACKENDS) {
  describe(`names that are Object.prototype's (${backend})`, onBackend(backend), () => {
    let s: TestServer;
    const base = '/v1/projects/proto/envs/prod';
    const raw = (method: string, path: string, body: string) => jsonRequest(s.url, method, path, { token: s.rootToken, raw: body });
    before(async () => {
      s = await startOn(backend);
      assert.equal((await s.api('POST', '/v1/projects', { name: 'proto' })).status, 201);
      assert.equal((await s.api('POST', '/v1/projects/proto/envs', { name: 'prod' })).status, 201);
    });
    after(async () => {
      await s?.close();
    });

    it('bulk set and delete take __proto__, constructor and toString, as PUT does', async () => {
      const set = await raw('PATCH', `${base}/secrets`, '{"set":{"__proto__":"p1","constructor":"c1","toString":"t1","A":"a"}}');
      assert.equal(set.status, 200, set.text);
      assert.deepEqual([...set.body.added].sort(), ['A', '__proto__', 'constructor', 'toString']);
      assert.equal((await s.api('GET', `${base}/secrets/__proto__`)).body.value, 'p1');
      assert.equal((await s.api('GET', `${base}/secrets/constructor`)).body.value, 'c1');
      // The same name by PUT, then changed by PATCH.
      assert.equal((await s.api('PUT', `${base}/secrets/__proto__`, { value: 'p2' })).status, 200);
      const again = await raw('PATCH', `${base}/secrets`, '{"set":{"__proto__":"p3"}}');
      assert.equal(again.status, 200, again.text);
      assert.deepEqual(again.body.changed, ['__proto__']);
      assert.equal((await s.api('GET', `${base}/secrets/__proto__`)).body.value, 'p3');
      const del = await s.api('PATCH', `${base}/secrets`, { delete: ['__proto__', 'constructor', 'toString'] });
      assert.equal(del.status, 200, del.text);
      assert.deepEqual((await s.api('GET', `${base}/secrets`)).body.secrets, { A: 'a' });
    });

    it('a non-string value under __proto__ is a schema error; other bodies still refuse a __proto__ key', async () => {
      const nested = await raw('PATCH', `${base}/secrets`, '{"set":{"__proto__":{"polluted":"x"}}}');
      assert.equal(nested.status, 400);
      assert.equal(nested.body.error.code, 'invalid_request');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      const top = await raw('PATCH', `${base}/secrets`, '{"__proto__":{"set":{"B":"b"}}}');
      assert.equal(top.status, 400);
      assert.equal((await s.api('GET', `${base}/secrets/B`)).status, 404);
      const other = await raw('POST', '/v1/projects', '{"name":"x","__proto__":{"admin":true}}');
      assert.equal(other.status, 400);
      assert.equal(other.body.error.code, 'invalid_json');
    });
  });
}
