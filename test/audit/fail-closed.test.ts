import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { blockAuditInserts, sideDb, unblockAuditInserts, withAuditBlocked } from '../helpers/db.js';
import { BACKENDS, onBackend, startOn, startServer, type TestServer } from '../helpers/server.js';
import { allEvents, assertContiguous, makeEnv, openSqlite, verify } from './util.js';

for (const backend of BACKENDS) {
  describe(`fail closed on ${backend}: when the audit insert fails, the request fails and changes nothing`, onBackend(backend), () => {
    let s: TestServer;
    let db: Knex;
    const base = '/v1/projects/api/envs/prod';
    let before_: { revision: number };

    before(async () => {
      s = await startOn(backend);
      db = sideDb(s);
      await makeEnv(s, 'api', 'prod');
      assert.equal((await s.api('PUT', `${base}/secrets/DB_PASSWORD`, { value: 'original-value' })).status, 200);
      assert.equal((await s.api('PUT', `${base}/secrets/OTHER`, { value: 'other-value' })).status, 200);
      const all = await s.api('GET', `${base}/secrets`);
      before_ = { revision: all.body.revision };
    });
    after(async () => {
      await db.destroy();
      await s.close();
    });

    // Each test blocks the audit inserts itself (and unblocks them), so it runs alone as well as in order.
    const refused = (r: { status: number; body: any }) => {
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'audit_unavailable');
      assert.match(r.body.error.message, /audit log cannot be written/);
    };

    it('a PUT of an existing secret gets 503 audit_unavailable', async () => {
      await withAuditBlocked(db, async () => {
        refused(await s.api('PUT', `${base}/secrets/DB_PASSWORD`, { value: 'changed-value' }));
      });
    });

    it('a PUT of a new secret, a bulk change and a delete are refused too', async () => {
      await withAuditBlocked(db, async () => {
        refused(await s.api('PUT', `${base}/secrets/NEW_ONE`, { value: 'new-value' }));
        refused(await s.api('PATCH', `${base}/secrets`, { set: { OTHER: 'bulk-value', ADDED: 'x' } }));
        refused(await s.api('DELETE', `${base}/secrets/OTHER`));
      });
    });

    it('reads fail closed: one value, all values and the name list', async () => {
      await withAuditBlocked(db, async () => {
        refused(await s.api('GET', `${base}/secrets/DB_PASSWORD`));
        refused(await s.api('GET', `${base}/secrets`));
        refused(await s.api('GET', `${base}/keys`));
      });
    });

    it('token creation, project and env creation are refused', async () => {
      await withAuditBlocked(db, async () => {
        refused(await s.api('POST', '/v1/tokens', { name: 'ci', scopes: ['read:api/prod'], ttl: '1h' }));
        refused(await s.api('POST', '/v1/projects', { name: 'ghost' }));
        refused(await s.api('POST', '/v1/projects/api/envs', { name: 'ghost' }));
      });
    });

    it('once inserts work again, nothing refused was applied and the chain has no hole', async () => {
      const head = await verify(s);
      const count = (await allEvents(s)).length;
      await withAuditBlocked(db, async () => {
        refused(await s.api('PUT', `${base}/secrets/DB_PASSWORD`, { value: 'changed-value' }));
        refused(await s.api('PATCH', `${base}/secrets`, { set: { OTHER: 'bulk-value', ADDED: 'x' } }));
        refused(await s.api('DELETE', `${base}/secrets/OTHER`));
        refused(await s.api('POST', '/v1/tokens', { name: 'ci', scopes: ['read:api/prod'], ttl: '1h' }));
        refused(await s.api('POST', '/v1/projects', { name: 'ghost' }));
      });
      const one = await s.api('GET', `${base}/secrets/DB_PASSWORD`);
      assert.equal(one.status, 200);
      assert.equal(one.body.value, 'original-value');
      assert.equal(one.body.version, 1);
      const versions = await s.api('GET', `${base}/secrets/DB_PASSWORD/versions`);
      assert.deepEqual(
        versions.body.versions.map((v: { version: number }) => v.version),
        [1],
      );
      const all = await s.api('GET', `${base}/secrets`);
      assert.deepEqual(all.body.secrets, { DB_PASSWORD: 'original-value', OTHER: 'other-value' });
      assert.equal(all.body.revision, before_.revision, 'the refused writes did not bump the revision');
      assert.equal((await s.api('GET', '/v1/projects/ghost/envs')).status, 404);
      const projects = await s.api('GET', '/v1/projects');
      assert.deepEqual(
        projects.body.projects.map((p: { name: string }) => p.name),
        ['api'],
      );
      const envs = await s.api('GET', '/v1/projects/api/envs');
      assert.deepEqual(
        envs.body.envs.map((e: { name: string }) => e.name),
        ['prod'],
      );
      const tokens = await s.api('GET', '/v1/tokens');
      assert.equal(tokens.body.tokens.filter((t: { name: string }) => t.name === 'ci').length, 0);

      const v = await verify(s);
      assert.equal(v.ok, true, v.reason ?? '');
      const events = await allEvents(s);
      assertContiguous(events);
      // Exactly the three reads above and the failed listing of ghost's environments (404, audited like a 403)
      // were added; the refused requests left no event.
      assert.deepEqual(
        events.slice(count).map((e) => e.action),
        ['secret.read', 'secret.versions', 'secret.read', 'env.list'],
      );
      // On PostgreSQL the refused batches used sequence numbers: the next seq is higher, not always the next one.
      assert.ok(events[count].seq > head.headSeq, `${events[count].seq} follows ${head.headSeq}`);
    });
  });
}

describe('fail closed at startup (sqlite)', () => {
  it('a server whose audit log cannot be written refuses to start (server.start cannot be recorded)', async () => {
    const s = await startServer();
    const { dataDir, rootToken } = s;
    await s.close({ keepDir: true });
    const db = openSqlite(dataDir);
    await blockAuditInserts(db);
    await db.destroy();
    await assert.rejects(startServer({ dataDir }), (e: { code?: string }) => e.code === 'audit_unavailable');
    const db2 = openSqlite(dataDir);
    await unblockAuditInserts(db2);
    await db2.destroy();
    const again = await startServer({ dataDir });
    try {
      const v = await verify({ api: (m, p, b, t = rootToken, h) => again.api(m, p, b, t, h) });
      assert.equal(v.ok, true, v.reason ?? '');
    } finally {
      await again.close();
    }
  });
});
