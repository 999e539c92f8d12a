import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { openDb } from '../../vault/store/db.js';
import { BACKENDS, onBackend, startOn, startServer, type TestServer } from '../helpers/server.js';
import { allEvents, assertContiguous, makeEnv, openSqlite, verify } from './util.js';

/** A second connection to the server's database, as an operator (or a failing disk) would have. */
function sideDb(s: TestServer): Knex {
  return s.config.databaseUrl ? openDb({ url: s.config.databaseUrl }) : openSqlite(s.dataDir);
}

/** Makes every insert into audit_events fail, with the engine's own mechanism. */
async function blockAuditInserts(db: Knex, backend: string): Promise<void> {
  if (backend === 'sqlite') {
    await db.raw(`create trigger audit_block before insert on audit_events begin select raise(abort, 'audit insert blocked by test'); end`);
  } else {
    await db.raw(`create or replace function audit_block() returns trigger language plpgsql as $$ begin raise exception 'audit insert blocked by test'; end $$`);
    await db.raw('create trigger audit_block before insert on audit_events for each row execute function audit_block()');
  }
}

async function unblockAuditInserts(db: Knex, backend: string): Promise<void> {
  await db.raw(backend === 'sqlite' ? 'drop trigger audit_block' : 'drop trigger audit_block on audit_events');
}

for (const backend of BACKENDS) {
  describe(`fail closed on ${backend}: when the audit insert fails, the request fails and changes nothing`, onBackend(backend), () => {
    let s: TestServer;
    let db: Knex;
    const base = '/v1/projects/api/envs/prod';
    let before_: { revision: number; head: number; events: number };

    before(async () => {
      s = await startOn(backend);
      db = sideDb(s);
      await makeEnv(s, 'api', 'prod');
      assert.equal((await s.api('PUT', `${base}/secrets/DB_PASSWORD`, { value: 'original-value' })).status, 200);
      assert.equal((await s.api('PUT', `${base}/secrets/OTHER`, { value: 'other-value' })).status, 200);
      const all = await s.api('GET', `${base}/secrets`);
      before_ = { revision: all.body.revision, head: (await verify(s)).headSeq, events: (await allEvents(s)).length };
      await blockAuditInserts(db, backend);
    });
    after(async () => {
      await db.destroy();
      await s.close();
    });

    const refused = (r: { status: number; body: any }) => {
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'audit_unavailable');
      assert.match(r.body.error.message, /audit log cannot be written/);
    };

    it('a PUT of an existing secret gets 503 audit_unavailable', async () => {
      refused(await s.api('PUT', `${base}/secrets/DB_PASSWORD`, { value: 'changed-value' }));
    });

    it('a PUT of a new secret, a bulk change and a delete are refused too', async () => {
      refused(await s.api('PUT', `${base}/secrets/NEW_ONE`, { value: 'new-value' }));
      refused(await s.api('PATCH', `${base}/secrets`, { set: { OTHER: 'bulk-value', ADDED: 'x' } }));
      refused(await s.api('DELETE', `${base}/secrets/OTHER`));
    });

    it('reads fail closed: one value, all values and the name list', async () => {
      refused(await s.api('GET', `${base}/secrets/DB_PASSWORD`));
      refused(await s.api('GET', `${base}/secrets`));
      refused(await s.api('GET', `${base}/keys`));
    });

    it('token creation, project and env creation are refused', async () => {
      refused(await s.api('POST', '/v1/tokens', { name: 'ci', scopes: ['read:api/prod'], ttl: '1h' }));
      refused(await s.api('POST', '/v1/projects', { name: 'ghost' }));
      refused(await s.api('POST', '/v1/projects/api/envs', { name: 'ghost' }));
    });

    it('once inserts work again, nothing refused was applied and the chain has no hole', async () => {
      await unblockAuditInserts(db, backend);
      const one = await s.api('GET', `${base}/secrets/DB_PASSWORD`);
      assert.equal(one.status, 200);
      assert.equal(one.body.value, 'original-value');
      assert.equal(one.body.version, 1);
      const versions = await s.api('GET', `${base}/secrets/DB_PASSWORD/versions`);
      assert.deepEqual(versions.body.versions.map((v: { version: number }) => v.version), [1]);
      const all = await s.api('GET', `${base}/secrets`);
      assert.deepEqual(all.body.secrets, { DB_PASSWORD: 'original-value', OTHER: 'other-value' });
      assert.equal(all.body.revision, before_.revision, 'the refused writes did not bump the revision');
      assert.equal((await s.api('GET', '/v1/projects/ghost/envs')).status, 404);
      const projects = await s.api('GET', '/v1/projects');
      assert.deepEqual(projects.body.projects.map((p: { name: string }) => p.name), ['api']);
      const envs = await s.api('GET', '/v1/projects/api/envs');
      assert.deepEqual(envs.body.envs.map((e: { name: string }) => e.name), ['prod']);
      const tokens = await s.api('GET', '/v1/tokens');
      assert.equal(tokens.body.tokens.filter((t: { name: string }) => t.name === 'ci').length, 0);

      const v = await verify(s);
      assert.equal(v.ok, true, v.reason ?? '');
      const events = await allEvents(s);
      assertContiguous(events);
      // Exactly the three reads above were added; the refused requests left no event.
      assert.deepEqual(events.slice(before_.events).map((e) => e.action), ['secret.read', 'secret.versions', 'secret.read']);
      assert.equal(events[before_.events].seq, before_.head + 1);
    });
  });
}

describe('fail closed at startup (sqlite)', () => {
  it('a server whose audit log cannot be written refuses to start (server.start cannot be recorded)', async () => {
    const s = await startServer();
    const { dataDir, rootToken } = s;
    await s.close({ keepDir: true });
    const db = openSqlite(dataDir);
    await blockAuditInserts(db, 'sqlite');
    await db.destroy();
    await assert.rejects(startServer({ dataDir }), (e: { code?: string }) => e.code === 'audit_unavailable');
    const db2 = openSqlite(dataDir);
    await unblockAuditInserts(db2, 'sqlite');
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
