import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';

for (const backend of BACKENDS) {
  describe(`secrets API on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    const base = '/v1/projects/api/envs/prod';
    before(async () => {
      s = await startOn(backend, { 'max-secrets-per-env': '5', 'max-value-bytes': '1KiB', 'body-limit': '64KiB' });
      assert.equal((await s.api('POST', '/v1/projects', { name: 'api' })).status, 201);
      assert.equal((await s.api('POST', '/v1/projects/api/envs', { name: 'prod' })).status, 201);
      assert.equal((await s.api('POST', '/v1/projects/api/envs', { name: 'dev' })).status, 201);
    });
    after(async () => {
      await s.close();
    });

    it('health reports version and storage kind', async () => {
      const r = await s.api('GET', '/v1/sys/health', undefined, null);
      assert.equal(r.status, 200);
      assert.equal(r.body.storage, backend);
      assert.match(r.body.version, /^\d+\.\d+\.\d+$/);
    });

    it('write then read a secret', async () => {
      const w = await s.api('PUT', `${base}/secrets/DB_URL`, { value: 'postgres://u:p@h/db?x=1' });
      assert.equal(w.status, 200);
      assert.equal(w.body.version, 1);
      const r = await s.api('GET', `${base}/secrets/DB_URL`);
      assert.equal(r.status, 200);
      assert.equal(r.body.value, 'postgres://u:p@h/db?x=1');
      assert.equal(r.headers.get('cache-control'), 'no-store');
    });

    it('values keep newlines, "=", quotes and any UTF-8 exactly', async () => {
      const v = 'line1\nline2=x "q" \'s\' ☃ 𝄞 \t end\n';
      await s.api('PUT', `${base}/secrets/MULTI`, { value: v });
      assert.equal((await s.api('GET', `${base}/secrets/MULTI`)).body.value, v);
      await s.api('PUT', `${base}/secrets/EMPTY`, { value: '' });
      assert.equal((await s.api('GET', `${base}/secrets/EMPTY`)).body.value, '');
      await s.api('DELETE', `${base}/secrets/MULTI`);
      await s.api('DELETE', `${base}/secrets/EMPTY`);
    });

    it('keeps version history and reads an old version', async () => {
      await s.api('PUT', `${base}/secrets/HIST`, { value: 'one' });
      await s.api('PUT', `${base}/secrets/HIST`, { value: 'two' });
      const vs = await s.api('GET', `${base}/secrets/HIST/versions`);
      assert.deepEqual(
        vs.body.versions.map((v: { version: number }) => v.version),
        [2, 1],
      );
      assert.equal((await s.api('GET', `${base}/secrets/HIST?version=1`)).body.value, 'one');
      assert.equal((await s.api('DELETE', `${base}/secrets/HIST`)).status, 200);
      assert.equal((await s.api('GET', `${base}/secrets/HIST`)).status, 404);
      const after = await s.api('GET', `${base}/secrets/HIST/versions`);
      assert.equal(after.body.current, null);
      assert.equal(after.body.versions[0].deleted, true);
      assert.equal((await s.api('GET', `${base}/secrets/HIST?version=2`)).body.value, 'two');
    });

    it('check-and-set returns 409 on conflict and writes nothing', async () => {
      assert.equal((await s.api('PUT', `${base}/secrets/CAS`, { value: 'a', cas: 0 })).status, 200);
      const conflict = await s.api('PUT', `${base}/secrets/CAS`, { value: 'b', cas: 0 });
      assert.equal(conflict.status, 409);
      assert.equal(conflict.body.error.code, 'cas_conflict');
      assert.equal(conflict.body.error.details.current, 1);
      assert.equal((await s.api('PUT', `${base}/secrets/CAS`, { value: 'c', cas: 1 })).status, 200);
      assert.equal((await s.api('GET', `${base}/secrets/CAS`)).body.value, 'c');
      await s.api('DELETE', `${base}/secrets/CAS`);
    });

    it('whole-env read returns every value and the revision, and honours If-None-Match', async () => {
      const r = await s.api('GET', `${base}/secrets`);
      assert.equal(r.status, 200);
      assert.equal(r.body.secrets.DB_URL, 'postgres://u:p@h/db?x=1');
      assert.equal(typeof r.body.revision, 'number');
      const etag = r.headers.get('etag')!;
      assert.ok(etag);
      const nm = await s.api('GET', `${base}/secrets`, undefined, undefined, { 'if-none-match': etag });
      assert.equal(nm.status, 304);
      // Weak comparison and lists (RFC 9110): a compressing proxy hands clients W/"...".
      for (const h of [`W/${etag}`, `"0-0", ${etag}`]) {
        const weak = await s.api('GET', `${base}/secrets`, undefined, undefined, { 'if-none-match': h });
        assert.equal(weak.status, 304, `If-None-Match: ${h}`);
        assert.equal(weak.headers.get('etag'), etag);
      }
      assert.equal((await s.api('GET', `${base}/secrets`, undefined, undefined, { 'if-none-match': '"0-0", W/"1-0"' })).status, 200);
      await s.api('PUT', `${base}/secrets/BUMP`, { value: 'x' });
      const changed = await s.api('GET', `${base}/secrets`, undefined, undefined, { 'if-none-match': etag });
      assert.equal(changed.status, 200);
      assert.ok(changed.body.revision > r.body.revision);
      await s.api('DELETE', `${base}/secrets/BUMP`);
    });

    it('a long-poll read returns as soon as the revision changes', async () => {
      const r = await s.api('GET', `${base}/secrets`);
      const etag = r.headers.get('etag')!;
      const t0 = Date.now();
      const waiting = s.api('GET', `${base}/secrets?wait=20`, undefined, undefined, { 'if-none-match': etag });
      await new Promise((res) => setTimeout(res, 300));
      await s.api('PUT', `${base}/secrets/POLL`, { value: 'p' });
      const got = await waiting;
      assert.equal(got.status, 200);
      assert.equal(got.body.secrets.POLL, 'p');
      assert.ok(Date.now() - t0 < 15_000);
      await s.api('DELETE', `${base}/secrets/POLL`);
    });

    it('bulk PATCH applies everything atomically and reports added/changed/unchanged', async () => {
      await s.api('PUT', `${base}/secrets/B1`, { value: 'same' });
      const r = await s.api('PATCH', `${base}/secrets`, { set: { B1: 'same', B2: 'new' }, delete: [] });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.added, ['B2']);
      assert.deepEqual(r.body.unchanged, ['B1']);
      const r2 = await s.api('PATCH', `${base}/secrets`, { set: { B1: 'changed' }, delete: ['B2'] });
      assert.deepEqual(r2.body.changed, ['B1']);
      assert.deepEqual(r2.body.deleted, ['B2']);
      await s.api('DELETE', `${base}/secrets/B1`);
    });

    it('a bulk PATCH with one bad entry changes nothing', async () => {
      const before = (await s.api('GET', `${base}/secrets`)).body;
      const bad = await s.api('PATCH', `${base}/secrets`, { set: { GOOD: 'x', 'bad-name': 'y' } });
      assert.equal(bad.body.error.code, 'invalid_name');
      assert.match(bad.body.error.message, /"bad-name"/, 'the message says which entry is bad');
      for (const body of [
        { set: { GOOD: 'x', 'bad-name': 'y' } },
        { set: { GOOD: 'x' }, delete: ['MISSING'] },
        { set: { GOOD: 'x', BIG: 'z'.repeat(2000) } },
        { set: { GOOD: 'x', A: '1', B: '2', C: '3', D: '4', E: '5' } },
      ]) {
        const r = await s.api('PATCH', `${base}/secrets`, body);
        assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}`);
        assert.ok(r.body.error.code);
      }
      const after = (await s.api('GET', `${base}/secrets`)).body;
      assert.deepEqual(after, before);
    });

    it('rejects bad names, oversized values and bodies with documented codes', async () => {
      const cases: [string, string, unknown, number, string][] = [
        ['PUT', `${base}/secrets/1BAD`, { value: 'x' }, 400, 'invalid_request'],
        ['PUT', `${base}/secrets/${'A'.repeat(257)}`, { value: 'x' }, 400, 'invalid_request'],
        ['PUT', `${base}/secrets/OK`, { value: 'x'.repeat(1025) }, 413, 'value_too_large'],
        ['PUT', `${base}/secrets/OK`, { value: 42 }, 400, 'invalid_request'],
        ['PUT', `${base}/secrets/OK`, { value: 'a\u0000b' }, 400, 'invalid_request'],
        ['PUT', `${base}/secrets/OK`, { value: 'x', extra: 1 }, 400, 'invalid_request'],
        ['PUT', `${base}/secrets/OK`, '{"value":', 400, 'invalid_json'],
        ['PUT', `${base}/secrets/OK`, JSON.stringify({ value: 'x'.repeat(70_000) }), 413, 'payload_too_large'],
        ['POST', '/v1/projects', { name: 'Bad Name' }, 400, 'invalid_request'],
        ['POST', '/v1/projects', { name: 'api' }, 409, 'already_exists'],
        ['GET', '/v1/projects/nope/envs/prod/secrets', undefined, 404, 'project_not_found'],
        ['GET', '/v1/projects/api/envs/nope/secrets', undefined, 404, 'env_not_found'],
        ['GET', `${base}/secrets/NOPE`, undefined, 404, 'secret_not_found'],
        ['GET', '/v1/nothing-here', undefined, 404, 'route_not_found'],
      ];
      for (const [m, path, body, status, code] of cases) {
        const r = await s.api(m, path, body);
        assert.equal(r.status, status, `${m} ${path.slice(0, 60)} -> ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        assert.equal(r.body.error.code, code, `${m} ${path.slice(0, 60)}`);
        assert.equal(typeof r.body.error.requestId, 'string');
      }
      assert.equal((await s.api('GET', `${base}/secrets/OK`)).status, 404, 'nothing was written by rejected requests');
    });

    it('enforces the per-environment secret limit', async () => {
      const dev = '/v1/projects/api/envs/dev/secrets';
      for (let i = 0; i < 5; i++) assert.equal((await s.api('PUT', `${dev}/K${i}`, { value: 'v' })).status, 200);
      const r = await s.api('PUT', `${dev}/K5`, { value: 'v' });
      assert.equal(r.status, 409);
      assert.equal(r.body.error.code, 'too_many_secrets');
      assert.equal((await s.api('PUT', `${dev}/K0`, { value: 'v2' })).status, 200, 'updating an existing one still works');
    });

    it('deleting an environment and a project removes their secrets', async () => {
      assert.equal((await s.api('POST', '/v1/projects', { name: 'tmp' })).status, 201);
      assert.equal((await s.api('POST', '/v1/projects/tmp/envs', { name: 'e' })).status, 201);
      await s.api('PUT', '/v1/projects/tmp/envs/e/secrets/X', { value: 'x' });
      assert.equal((await s.api('DELETE', '/v1/projects/tmp/envs/e')).status, 200);
      assert.equal((await s.api('GET', '/v1/projects/tmp/envs/e/secrets')).status, 404);
      assert.equal((await s.api('DELETE', '/v1/projects/tmp')).status, 200);
      assert.equal(
        (await s.api('GET', '/v1/projects')).body.projects.some((p: { name: string }) => p.name === 'tmp'),
        false,
      );
    });

    it('serves an OpenAPI document generated from the route schemas', async () => {
      const r = await s.api('GET', '/v1/openapi.json', undefined, null);
      assert.equal(r.status, 200);
      assert.ok(r.body.paths['/v1/projects/{p}/envs/{e}/secrets/{key}']);
    });
  });
}
