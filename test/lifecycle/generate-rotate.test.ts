import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/cli.js';
import { sideDb } from '../helpers/db.js';
import { BACKENDS, NEEDS_PG, onBackend, startOn, startServer, type TestServer } from '../helpers/server.js';

const P = '/v1/projects/api/envs/prod';
const DAY = 86_400_000;

async function seed(s: TestServer) {
  assert.equal((await s.api('POST', '/v1/projects', { name: 'api' })).status, 201);
  assert.equal((await s.api('POST', '/v1/projects/api/envs', { name: 'prod' })).status, 201);
}

/** Moves a secret's current version `days` into the past, as if that much time had gone by since it was written. */
async function age(s: TestServer, key: string, days: number) {
  const db = sideDb(s);
  try {
    const n = await db('secrets')
      .where({ name: key })
      .update({ updated_at: db.raw('updated_at - ?', [days * DAY]) });
    assert.equal(n, 1);
  } finally {
    await db.destroy();
  }
}

const events = async (s: TestServer, action: string) => (await s.api('GET', `/v1/audit?action=${action}&limit=1000`)).body.events as any[];

for (const backend of BACKENDS) {
  describe(`generated secrets and rotation policies on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend, { 'rotation-check-interval': '0' });
      await seed(s);
    });
    after(async () => {
      await s?.close();
    });

    it('generate makes a value of the charset and length asked, stored like any value, shown only when asked', async () => {
      const cases: [string, number, RegExp][] = [
        ['alnum', 32, /^[A-Za-z0-9]{32}$/],
        ['hex', 64, /^[0-9a-f]{64}$/],
        ['base64url', 43, /^[A-Za-z0-9_-]{43}$/],
        ['words', 6, /^[a-z]+(-[a-z]+){5}$/],
      ];
      for (const [charset, length, re] of cases) {
        const key = `G_${charset.toUpperCase()}`;
        const r = await s.api('POST', `${P}/secrets/${key}/generate`, { charset, length });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.value, undefined, 'no value without show');
        assert.equal(r.body.version, 1);
        assert.ok(r.body.bits >= (charset === 'words' ? 66 : 128), `${charset}: ${r.body.bits} bits`);
        const v = (await s.api('GET', `${P}/secrets/${key}`)).body.value;
        assert.match(v, re);
        const shown = await s.api('POST', `${P}/secrets/${key}/generate`, { charset, length, show: true });
        assert.match(shown.body.value, re);
        assert.notEqual(shown.body.value, v);
        assert.equal((await s.api('GET', `${P}/secrets/${key}`)).body.value, shown.body.value);
      }
      const ev = (await events(s, 'secret.write')).find((e) => e.target.key === 'G_HEX');
      assert.deepEqual(ev.detail.generated, { charset: 'hex', length: 64 });
      assert.doesNotMatch(JSON.stringify(await events(s, 'secret.write')), /"value"/);
    });

    it('every symbol of the alphabet turns up, none more than chance allows (no modulo bias)', async () => {
      const r = await s.api('POST', `${P}/secrets/UNIFORM/generate`, { charset: 'alnum', length: 4096, show: true });
      const counts = new Map<string, number>();
      for (const ch of r.body.value as string) counts.set(ch, (counts.get(ch) ?? 0) + 1);
      assert.equal(counts.size, 62);
      // Expected 66 each; a biased generator (e.g. byte % 62) would favour the first 8 symbols by 25%.
      const chi2 = [...counts.values()].reduce((a, c) => a + (c - 4096 / 62) ** 2 / (4096 / 62), 0);
      assert.ok(chi2 < 130, `chi-square ${chi2.toFixed(1)} with 61 degrees of freedom`);
    });

    it('bad generate input gets a clear 400', async () => {
      const bad = [
        { charset: 'emoji' },
        { charset: 'hex', length: 4 },
        { charset: 'words', length: 500 },
        { charset: 'alnum', auto: true },
        { charset: 'alnum', rotateEvery: '5 days' },
        { charset: 'alnum', expiresAt: 'soon' },
      ];
      for (const body of bad) {
        const r = await s.api('POST', `${P}/secrets/BAD_GEN/generate`, body);
        assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.text}`);
        assert.match(r.body.error.code, /^invalid_request$/);
      }
      assert.equal((await s.api('GET', `${P}/secrets/BAD_GEN`)).status, 404, 'nothing was stored');
    });

    it('policy: set, show, clear; auto needs a generated secret', async () => {
      await s.api('PUT', `${P}/secrets/MANUAL`, { value: 'v1' });
      const set = await s.api('PUT', `${P}/secrets/MANUAL/policy`, { rotateEvery: '90d', expiresAt: '2099-01-01' });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.body.rotateEvery, '90d');
      assert.equal(set.body.expiresAt, '2099-01-01T00:00:00.000Z');
      const got = await s.api('GET', `${P}/secrets/MANUAL/policy`);
      assert.equal(got.body.rotateEvery, '90d');
      assert.ok(Date.parse(got.body.dueAt) > Date.now() + 89 * DAY);
      const auto = await s.api('PUT', `${P}/secrets/MANUAL/policy`, { auto: true });
      assert.equal(auto.status, 400);
      assert.match(auto.body.error.message, /generated/);
      const cleared = await s.api('PUT', `${P}/secrets/MANUAL/policy`, { rotateEvery: null, expiresAt: null });
      assert.equal(cleared.body.rotateEvery, null);
      assert.equal((await s.api('GET', `${P}/secrets/MANUAL/policy`)).body.dueAt, null);
      assert.equal((await s.api('GET', `${P}/secrets/NOPE/policy`)).body.error.code, 'secret_not_found');
    });

    it('overdue secrets: stale lists them for a token that can list the env, health counts them, a reminder is written once per due time', async () => {
      await s.api('PUT', `${P}/secrets/OLD_PASS`, { value: 'x' });
      await s.api('PUT', `${P}/secrets/OLD_PASS/policy`, { rotateEvery: '30d' });
      const before = (await s.api('GET', '/v1/sys/health', undefined, null)).body.overdueSecrets;
      await age(s, 'OLD_PASS', 31);
      const h = await s.api('GET', '/v1/sys/health', undefined, null);
      assert.equal(h.status, 200);
      assert.equal(h.body.overdueSecrets, before + 1);
      const stale = (await s.api('GET', '/v1/secrets/stale')).body.secrets;
      const mine = stale.find((x: any) => x.key === 'OLD_PASS');
      assert.equal(mine.reason, 'rotation');
      assert.equal(mine.project, 'api');
      assert.ok(mine.overdueMs > 0);
      const other = await s.api('POST', '/v1/tokens', { name: 'other', scopes: ['read:web/*'], ttl: '1h' });
      assert.deepEqual((await s.api('GET', '/v1/secrets/stale', undefined, other.body.token)).body.secrets, []);

      const lc = s.server.container.lifecycle;
      const t1 = await lc.tick(Date.now(), 'test');
      const t2 = await lc.tick(Date.now(), 'test');
      assert.ok(t1.reminded >= 1);
      assert.equal(t2.reminded, 0, 'not again on the next pass');
      const due = (await events(s, 'secret.rotation_due')).filter((e) => e.target.key === 'OLD_PASS');
      assert.equal(due.length, 1);
      assert.equal(due[0].project, 'api');
      assert.equal(due[0].env, 'prod');
      assert.equal(due[0].target.reason, 'rotation');
      assert.equal(due[0].actor.id, 'system');
      assert.doesNotMatch(JSON.stringify(due[0]), /"x"/);
      // A new value starts a new period: no longer stale, and the next due time gets its own reminder.
      await s.api('PUT', `${P}/secrets/OLD_PASS`, { value: 'y' });
      assert.ok(!(await s.api('GET', '/v1/secrets/stale')).body.secrets.some((x: any) => x.key === 'OLD_PASS'));
      await age(s, 'OLD_PASS', 31);
      await lc.tick(Date.now(), 'test');
      assert.equal((await events(s, 'secret.rotation_due')).filter((e) => e.target.key === 'OLD_PASS').length, 2);
    });

    it('an expiry binds the version it was set on', async () => {
      await s.api('PUT', `${P}/secrets/EXPIRING`, { value: 'a' });
      await s.api('PUT', `${P}/secrets/EXPIRING/policy`, { expiresAt: new Date(Date.now() - 1000).toISOString() });
      const st = (await s.api('GET', '/v1/secrets/stale')).body.secrets.find((x: any) => x.key === 'EXPIRING');
      assert.equal(st.reason, 'expiry');
      await s.api('PUT', `${P}/secrets/EXPIRING`, { value: 'b' });
      assert.ok(!(await s.api('GET', '/v1/secrets/stale')).body.secrets.some((x: any) => x.key === 'EXPIRING'));
    });

    it('an auto secret that is due gets a new generated version from the server, with a normal secret.write event', async () => {
      const g = await s.api('POST', `${P}/secrets/ROTATED/generate`, {
        charset: 'hex',
        length: 40,
        rotateEvery: '7d',
        auto: true,
        show: true,
      });
      assert.equal(g.status, 200, g.text);
      assert.equal(g.body.policy.auto, true);
      await age(s, 'ROTATED', 8);
      const r = await s.server.container.lifecycle.tick(Date.now(), 'test');
      assert.equal(r.rotated, 1);
      const now = await s.api('GET', `${P}/secrets/ROTATED`);
      assert.equal(now.body.version, 2);
      assert.equal(now.body.createdBy, 'system');
      assert.match(now.body.value, /^[0-9a-f]{40}$/);
      assert.notEqual(now.body.value, g.body.value);
      const ev = (await events(s, 'secret.write')).filter((e) => e.target.key === 'ROTATED').pop();
      assert.deepEqual(ev.target, { key: 'ROTATED', version: 2 });
      assert.equal(ev.detail.rotation, 'auto');
      assert.equal((await s.server.container.lifecycle.tick(Date.now(), 'test')).rotated, 0, 'not due any more');
      assert.equal(
        (await events(s, 'secret.rotation_due')).filter((e) => e.target.key === 'ROTATED').length,
        0,
        'auto secrets get no reminder',
      );
    });
  });
}

describe('the rotation scheduler runs on its own', () => {
  it('a server with --rotation-check-interval rotates a due auto secret without being asked', async () => {
    const s = await startServer({ settings: { 'rotation-check-interval': '1s' } });
    try {
      await seed(s);
      await s.api('POST', `${P}/secrets/TICKED/generate`, { charset: 'alnum', rotateEvery: '1d', auto: true });
      await age(s, 'TICKED', 2);
      await waitFor(async () => (await s.api('GET', `${P}/secrets/TICKED`)).body.version === 2, 'the scheduler to rotate TICKED');
    } finally {
      await s.close();
    }
  });
});

describe('two servers on one PostgreSQL database', NEEDS_PG, () => {
  let a: TestServer & { backend: string };
  let b: TestServer;
  before(async () => {
    a = await startOn('postgres', { 'rotation-check-interval': '0' });
    b = await startServer({
      settings: { 'database-url': a.config.databaseUrl, 'master-key-file': join(a.dataDir, 'master.key'), 'rotation-check-interval': '0' },
    });
    await seed(a);
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  it('rotate each due auto secret exactly once, and remind each due secret exactly once, however their passes overlap', async () => {
    for (let i = 0; i < 5; i++) await a.api('POST', `${P}/secrets/AUTO_${i}/generate`, { charset: 'hex', rotateEvery: '1d', auto: true });
    for (let i = 0; i < 5; i++) {
      await a.api('PUT', `${P}/secrets/REMIND_${i}`, { value: 'v' });
      await a.api('PUT', `${P}/secrets/REMIND_${i}/policy`, { rotateEvery: '1d' });
    }
    for (let i = 0; i < 5; i++) {
      await age(a, `AUTO_${i}`, 2);
      await age(a, `REMIND_${i}`, 2);
    }
    const now = Date.now();
    const results = [];
    for (let round = 0; round < 3; round++) {
      results.push(
        ...(await Promise.all([
          a.server.container.lifecycle.tick(now, 'node-a'),
          b.server.container.lifecycle.tick(now, 'node-b'),
          a.server.container.lifecycle.tick(now, 'node-a2'),
        ])),
      );
    }
    assert.equal(
      results.reduce((n, r) => n + r.rotated, 0),
      5,
    );
    assert.equal(
      results.reduce((n, r) => n + r.reminded, 0),
      5,
    );
    const writes = (await events(a, 'secret.write')).filter((e) => e.detail.rotation === 'auto');
    assert.equal(writes.length, 5);
    for (let i = 0; i < 5; i++) assert.equal((await a.api('GET', `${P}/secrets/AUTO_${i}`)).body.version, 2);
    assert.equal((await events(a, 'secret.rotation_due')).length, 5);
  });
});
