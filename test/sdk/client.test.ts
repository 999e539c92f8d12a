import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server.js';
import { createClient, isConflictError, isNotFoundError, loadEnv, type HushClient } from 'hush-vault-sdk';

let s: TestServer;
let root: HushClient;

before(async () => {
  s = await startServer();
  root = createClient({ addr: s.url, token: s.rootToken });
});
after(async () => {
  await s.close();
});

describe('client setup', () => {
  test('createClient reads HUSH_ADDR and HUSH_TOKEN when no options are given', async () => {
    const saved = { addr: process.env.HUSH_ADDR, token: process.env.HUSH_TOKEN };
    process.env.HUSH_ADDR = s.url + '/';
    process.env.HUSH_TOKEN = s.rootToken + '\n';
    try {
      const c = createClient();
      assert.equal(c.addr, s.url);
      assert.equal((await c.tokens.self()).name, 'root');
    } finally {
      if (saved.addr === undefined) delete process.env.HUSH_ADDR;
      else process.env.HUSH_ADDR = saved.addr;
      if (saved.token === undefined) delete process.env.HUSH_TOKEN;
      else process.env.HUSH_TOKEN = saved.token;
    }
  });

  test('health needs no token; other calls without a token reject with token_missing', async () => {
    const saved = process.env.HUSH_TOKEN;
    delete process.env.HUSH_TOKEN;
    try {
      const c = createClient({ addr: s.url });
      const h = await c.health();
      assert.equal(h.status, 'ok');
      assert.equal(h.storage, 'sqlite');
      assert.equal(h.sealed, false);
      await assert.rejects(c.projects.list(), { name: 'AuthError', code: 'token_missing' });
    } finally {
      if (saved !== undefined) process.env.HUSH_TOKEN = saved;
    }
  });

  test('a malformed address is refused with invalid_config', () => {
    assert.throws(() => createClient({ addr: 'not a url', token: s.rootToken }), { name: 'ValidationError', code: 'invalid_config' });
    assert.throws(() => createClient({ addr: 'ftp://x', token: s.rootToken }), { code: 'invalid_config' });
  });
});

describe('projects and envs', () => {
  test('projects.create, list and delete', async () => {
    const p = await root.projects.create('web');
    assert.equal(p.name, 'web');
    assert.ok(Date.parse(p.createdAt));
    assert.ok((await root.projects.list()).some((x) => x.name === 'web'));
    await assert.rejects(root.projects.create('web'), (e) => isConflictError(e) && e.code === 'already_exists' && e.status === 409);
    assert.deepEqual(await root.projects.delete('web'), { name: 'web', deleted: true });
    assert.ok(!(await root.projects.list()).some((x) => x.name === 'web'));
  });

  test('envs.create, list and delete', async () => {
    await root.projects.create('api');
    const e = await root.envs.create('api', 'prod');
    assert.equal(e.name, 'prod');
    assert.equal(e.revision, 0);
    await root.envs.create('api', 'tmp');
    assert.deepEqual((await root.envs.list('api')).map((x) => x.name).sort(), ['prod', 'tmp']);
    assert.deepEqual(await root.envs.delete('api', 'tmp'), { name: 'tmp', deleted: true });
    await assert.rejects(root.envs.list('nope'), (e) => isNotFoundError(e) && e.code === 'project_not_found');
  });

  test('projects.rotateKey starts a new data-key version and rewraps', async () => {
    await root.secrets.set('api', 'prod', 'ROTATED', 'before');
    const r = await root.projects.rotateKey('api', { rewrap: true });
    assert.equal(r.project, 'api');
    assert.equal(r.dekVersion, 2);
    assert.ok(r.rewrapped >= 1);
    assert.equal((await root.projects.rotateKey('api')).dekVersion, 3);
    assert.equal((await root.secrets.get('api', 'prod', 'ROTATED')).value, 'before');
  });
});

describe('secrets', () => {
  test('set, get (current and older version) and versions', async () => {
    const w1 = await root.secrets.set('api', 'prod', 'DATABASE_URL', 'postgres://a');
    assert.equal(w1.key, 'DATABASE_URL');
    assert.equal(w1.version, 1);
    const w2 = await root.secrets.set('api', 'prod', 'DATABASE_URL', 'postgres://b', { cas: 1 });
    assert.equal(w2.version, 2);
    assert.ok(w2.revision > w1.revision);
    const cur = await root.secrets.get('api', 'prod', 'DATABASE_URL');
    assert.equal(cur.value, 'postgres://b');
    assert.equal(cur.version, 2);
    assert.equal(cur.createdBy, (await root.tokens.self()).id);
    assert.equal((await root.secrets.get('api', 'prod', 'DATABASE_URL', { version: 1 })).value, 'postgres://a');
    const h = await root.secrets.versions('api', 'prod', 'DATABASE_URL');
    assert.equal(h.current, 2);
    assert.deepEqual(
      h.versions.map((v) => v.version),
      [2, 1],
    );
  });

  test('getAll returns every value, the revision and an ETag; only filters', async () => {
    await root.secrets.set('api', 'prod', 'REDIS_URL', 'redis://r');
    const all = await root.secrets.getAll('api', 'prod');
    assert.equal(all.notModified, false);
    assert.equal(all.fromCache, false);
    assert.equal(all.ageMs, 0);
    assert.equal(all.secrets.DATABASE_URL, 'postgres://b');
    assert.equal(all.secrets.REDIS_URL, 'redis://r');
    assert.match(all.etag ?? '', /^"\d+-\d+"$/);
    const some = await root.secrets.getAll('api', 'prod', { only: ['REDIS_URL', 'MISSING'] });
    assert.deepEqual({ ...some.secrets }, { REDIS_URL: 'redis://r' });
    assert.equal(Object.getPrototypeOf(some.secrets), null, 'a prototype-free map');
  });

  test('getAll with ifNoneMatch resolves notModified until the revision changes', async () => {
    const first = await root.secrets.getAll('api', 'prod');
    const same = await root.secrets.getAll('api', 'prod', { ifNoneMatch: first.etag! });
    assert.deepEqual(same, { notModified: true, etag: first.etag });
    await root.secrets.set('api', 'prod', 'NEW', '1');
    const changed = await root.secrets.getAll('api', 'prod', { ifNoneMatch: first.etag! });
    assert.equal(changed.notModified, false);
    if (!changed.notModified) assert.equal(changed.secrets.NEW, '1');
  });

  test('getAll with ifNoneMatch and wait long-polls until a change', async () => {
    const first = await root.secrets.getAll('api', 'prod');
    const started = Date.now();
    setTimeout(() => {
      void root.secrets.set('api', 'prod', 'LONGPOLL', 'x');
    }, 300);
    const r = await root.secrets.getAll('api', 'prod', { ifNoneMatch: first.etag!, wait: 10 });
    assert.equal(r.notModified, false);
    assert.ok(Date.now() - started >= 250 && Date.now() - started < 5000);
  });

  test('bulk applies sets and deletes atomically', async () => {
    const r = await root.secrets.bulk('api', 'prod', { set: { A: '1', B: '2', REDIS_URL: 'redis://r' }, delete: ['NEW'] });
    assert.deepEqual(r.added.sort(), ['A', 'B']);
    assert.deepEqual(r.unchanged, ['REDIS_URL']);
    assert.deepEqual(r.deleted, ['NEW']);
    await assert.rejects(root.secrets.bulk('api', 'prod', { set: { C: '3' }, delete: ['DOES_NOT_EXIST'] }));
    await assert.rejects(root.secrets.get('api', 'prod', 'C'), { name: 'NotFoundError' });
  });

  test('listNames returns names and metadata without values', async () => {
    const r = await root.secrets.listNames('api', 'prod');
    const keys = r.secrets.map((x) => x.key);
    assert.ok(keys.includes('A') && keys.includes('DATABASE_URL'));
    assert.ok(!JSON.stringify(r).includes('postgres://'));
    assert.equal(typeof r.revision, 'number');
  });

  test('delete removes a secret and keeps its history', async () => {
    const d = await root.secrets.delete('api', 'prod', 'B');
    assert.equal(d.key, 'B');
    assert.equal(d.deleted, true);
    await assert.rejects(
      root.secrets.get('api', 'prod', 'B'),
      (e) => isNotFoundError(e) && e.code === 'secret_not_found' && e.status === 404,
    );
    const h = await root.secrets.versions('api', 'prod', 'B');
    assert.equal(h.current, null);
    assert.ok(h.versions.length >= 1);
  });
});

describe('tokens', () => {
  test('create, self, list (by name, with revoked) and revoke', async () => {
    const t = await root.tokens.create({ name: 'deploy-api', scopes: ['read:api/prod'], ttl: '1h', description: 'deploys' });
    assert.match(t.token, /^hush_/);
    assert.deepEqual(t.scopes, ['read:api/prod']);
    assert.ok(t.expiresAt);
    const child = createClient({ addr: s.url, token: t.token });
    const self = await child.tokens.self();
    assert.equal(self.id, t.id);
    assert.equal(self.description, 'deploys');
    assert.ok(!('token' in self));
    assert.deepEqual(
      (await root.tokens.list({ name: 'deploy-api' })).map((x) => x.id),
      [t.id],
    );
    const r = await root.tokens.revoke(t.id);
    assert.deepEqual(r, { id: t.id, revoked: [t.id] });
    assert.ok(!(await root.tokens.list()).some((x) => x.id === t.id));
    const withRevoked = await root.tokens.list({ includeRevoked: true });
    assert.ok(withRevoked.find((x) => x.id === t.id)?.revokedAt);
    await assert.rejects(child.tokens.self(), { name: 'AuthError', code: 'unauthorized', status: 401 });
  });
});

describe('audit', () => {
  test('list pages with nextCursor, iterate walks every page, verify checks the chain', async () => {
    const everything = await root.audit.list({ limit: 1000 });
    assert.ok(everything.events.length >= 10);
    assert.equal(everything.nextCursor, null);
    const page = await root.audit.list({ limit: 3 });
    assert.equal(page.events.length, 3);
    assert.ok(page.nextCursor);
    const seqs: number[] = [];
    for await (const ev of root.audit.iterate({ limit: 3 })) seqs.push(ev.seq);
    assert.deepEqual(
      seqs.slice(0, everything.events.length),
      everything.events.map((e) => e.seq),
    );
    const reads = await root.audit.list({
      action: 'secret.read',
      project: 'api',
      env: 'prod',
      from: new Date(Date.now() - 3600_000),
      order: 'desc',
    });
    assert.ok(reads.events.length > 0 && reads.events.every((e) => e.action === 'secret.read'));
    assert.ok(!JSON.stringify(everything).includes('postgres://'));
    const v = await root.audit.verify();
    assert.equal(v.ok, true);
    assert.equal(v.firstBadSeq, null);
    assert.ok(v.checked > 0);
  });

  test('iterate with follow yields events written later, until aborted', async () => {
    const head = (await root.audit.verify()).headSeq;
    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      try {
        for await (const ev of root.audit.iterate({ cursor: String(head) }, { follow: true, pollMs: 100, signal: ac.signal })) {
          seen.push(ev.action);
          if (ev.action === 'project.create') ac.abort();
        }
      } catch (e) {
        if (!ac.signal.aborted) throw e;
      }
    })();
    await new Promise((r) => setTimeout(r, 250));
    await root.projects.create('followed');
    await done;
    assert.ok(seen.includes('project.create'));
  });
});

describe('loadEnv and the raw request escape hatch', () => {
  test('loadEnv fills the target; vault values win unless override is false', async () => {
    const target: Record<string, string | undefined> = { A: 'local', KEEP: 'x' };
    const r = await loadEnv({ project: 'api', env: 'prod', addr: s.url, token: s.rootToken, target });
    assert.equal(target.A, '1');
    assert.equal(target.DATABASE_URL, 'postgres://b');
    assert.equal(target.KEEP, 'x');
    assert.ok(r.loaded.includes('A') && r.skipped.length === 0 && !r.fromCache);
    const t2: Record<string, string | undefined> = { A: 'local' };
    const r2 = await loadEnv({ project: 'api', env: 'prod', client: root, override: false, target: t2, only: ['A', 'REDIS_URL'] });
    assert.equal(t2.A, 'local');
    assert.equal(t2.REDIS_URL, 'redis://r');
    assert.deepEqual(r2.skipped, ['A']);
    assert.deepEqual(r2.loaded, ['REDIS_URL']);
  });

  test('loadEnv fills process.env by default', async () => {
    delete process.env.REDIS_URL;
    await loadEnv({ project: 'api', env: 'prod', client: root, only: ['REDIS_URL'] });
    assert.equal(process.env.REDIS_URL, 'redis://r');
    delete process.env.REDIS_URL;
  });

  test('request reaches endpoints without a dedicated method', async () => {
    const doc = await root.request<{ openapi: string }>('GET', '/v1/openapi.json', { auth: false });
    assert.match(doc.openapi, /^3\./);
    const page = await root.request<{ events: unknown[] }>('GET', '/v1/audit', { query: { limit: 1 } });
    assert.equal(page.events.length, 1);
  });
});

describe('keys', () => {
  test('keys.rotateMaster rewraps every key under a new master key', async () => {
    const r = await root.keys.rotateMaster(randomBytes(32).toString('base64'));
    assert.ok(r.rewrapped > 0);
    assert.notEqual(r.from, r.to);
    assert.equal(r.unchanged, false);
    assert.equal((await root.secrets.get('api', 'prod', 'A')).value, '1');
    await assert.rejects(root.keys.rotateMaster('too-short-to-be-a-key-but-long-enough-for-schema'), {
      name: 'ValidationError',
      status: 400,
    });
  });
});
