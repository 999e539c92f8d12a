import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { eventMaterial } from '../../vault/services/audit/audit-service.js';
import { getSodium } from '../../vault/crypto/sodium.js';
import { toAudit } from '../../vault/store/audit-store.js';
import { sideDb } from '../helpers/db.js';
import { BACKENDS, freshPgDatabase, onBackend, pgAdmin, startOn, startServer, type TestServer } from '../helpers/server.js';
import { openDb } from '../../vault/store/db.js';

type Backend = (typeof BACKENDS)[number];
import { allEvents, copyDataDir, makeEnv, openSqlite, verify, withAuditRestored, type Ev } from './util.js';

/** What an attacker without the MAC key can do: a keyed BLAKE2b under a key of their own. */
async function forgedMac(prev: Buffer, material: string): Promise<Buffer> {
  const s = await getSodium();
  const st = s.crypto_generichash_init(randomBytes(32), 32);
  s.crypto_generichash_update(st, prev);
  s.crypto_generichash_update(st, s.from_string(material));
  return Buffer.from(s.crypto_generichash_final(st, 32));
}

/** Writes and reads enough to give the log some length and variety. */
async function activity(s: TestServer): Promise<void> {
  await makeEnv(s, 'api', 'prod', 'dev');
  for (let i = 0; i < 8; i++)
    assert.equal((await s.api('PUT', `/v1/projects/api/envs/prod/secrets/K${i}`, { value: `v${i}` })).status, 200);
  assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets')).status, 200);
  for (let i = 0; i < 4; i++) assert.equal((await s.api('GET', `/v1/projects/api/envs/prod/secrets/K${i}`)).status, 200);
  assert.equal((await s.api('PATCH', '/v1/projects/api/envs/dev/secrets', { set: { A: '1', B: '2' } })).status, 200);
  assert.equal((await s.api('DELETE', '/v1/projects/api/envs/prod/secrets/K7')).status, 200);
}

/** A stopped vault: its data dir (master.key; the SQLite file) and, on PostgreSQL, its database. */
interface Stopped {
  backend: Backend;
  dataDir: string;
  rootToken: string;
  pgName: string | null;
  pgUrl: string | null;
}

/** Runs activity() on a new vault of `backend`, then stops its server. */
async function stoppedVault(backend: Backend, check: (s: TestServer) => Promise<void>): Promise<Stopped> {
  const pg = backend === 'postgres' ? (await freshPgDatabase())! : null;
  const s = await startServer({ settings: pg ? { 'database-url': pg.url } : {} });
  try {
    await activity(s);
    await check(s);
  } finally {
    await s.close({ keepDir: true });
  }
  return { backend, dataDir: s.dataDir, rootToken: s.rootToken, pgName: pg?.name ?? null, pgUrl: pg?.url ?? null };
}

/**
 * Tampers with a copy of a stopped vault's database (a copied data dir; on
 * PostgreSQL a database made from it as a template), restarts a server on
 * the copy and asks the API to verify.
 */
async function tamperOffline(v: Stopped, tamper: (db: Knex) => Promise<void>) {
  const pg = v.pgName ? (await freshPgDatabase(v.pgName))! : null;
  const dir = pg ? v.dataDir : copyDataDir(v.dataDir);
  const db = pg ? openDb({ url: pg.url }) : openSqlite(dir);
  try {
    await tamper(db);
  } finally {
    await db.destroy();
  }
  const s = await startServer({ dataDir: dir, settings: pg ? { 'database-url': pg.url } : {} });
  try {
    return await verify({ api: (m, p, b, t = v.rootToken, h) => s.api(m, p, b, t, h) });
  } finally {
    await s.close();
    await pg?.drop();
  }
}

const row = async (db: Knex, seq: number) => {
  const r = await db('audit_events').where({ seq }).first();
  assert.ok(r, `event ${seq} exists`);
  return r;
};

for (const backend of BACKENDS) {
  describe(
    `audit chain: tampering with the ${backend === 'sqlite' ? 'SQLite file' : 'PostgreSQL database'} is caught and located`,
    onBackend(backend),
    () => {
      let vault: Stopped;
      let events: Ev[];
      let head: number;

      before(async () => {
        vault = await stoppedVault(backend, async (s) => {
          events = await allEvents(s);
          const v = await verify(s);
          assert.equal(v.ok, true, v.reason ?? '');
          head = v.headSeq;
          assert.equal(v.checked, head);
          assert.equal(head, events.length);
          assert.ok(head >= 20, `a log of some length (${head})`);
        });
      });
      after(async () => {
        if (vault?.pgName) await pgAdmin(`drop database if exists ${vault.pgName} with (force)`);
      });

      it('an untouched log verifies after a restart, including the new server.start event', async () => {
        const v = await tamperOffline(vault, async () => undefined);
        assert.deepEqual(
          { ok: v.ok, firstBadSeq: v.firstBadSeq, checked: v.checked, headSeq: v.headSeq },
          { ok: true, firstBadSeq: null, checked: head + 1, headSeq: head + 1 },
        );
        assert.match(v.headHash!, /^[0-9a-f]{64}$/);
      });

      it('editing one field of one event names that event', async () => {
        const k = events.find((e) => e.action === 'secret.write' && e.target.key === 'K3')!.seq;
        const v = await tamperOffline(vault, async (db) => {
          await db('audit_events')
            .where({ seq: k })
            .update({ target: JSON.stringify({ key: 'K4', version: 1 }) });
        });
        assert.equal(v.ok, false);
        assert.equal(v.firstBadSeq, k);
        assert.equal(v.checked, k - 1);
        assert.match(v.reason!, new RegExp(`event ${k} was altered or forged`));
      });

      for (const [column, value] of [
        ['actor_name', 'someone-else'],
        ['action', 'secret.list'],
        ['outcome', 'denied'],
        ['ip', '10.9.9.9'],
        ['request_id', 'req_forged'],
        ['detail', '{"cas":1}'],
        ['project', 'other'],
        ['env', 'dev'],
      ] as const) {
        it(`editing ${column} is caught at that seq`, async () => {
          const k = events.find((e) => e.action === 'secret.write' && e.target.key === 'K5')!.seq;
          const v = await tamperOffline(vault, async (db) => {
            await db('audit_events')
              .where({ seq: k })
              .update({ [column]: value });
          });
          assert.equal(v.ok, false);
          assert.equal(v.firstBadSeq, k, v.reason ?? '');
        });
      }

      it('moving an event in time (ts) is caught at that seq', async () => {
        const k = 5;
        const v = await tamperOffline(vault, async (db) => {
          const r = await row(db, k);
          await db('audit_events')
            .where({ seq: k })
            .update({ ts: Number(r.ts) - 86_400_000 });
        });
        assert.equal(v.firstBadSeq, k);
        assert.match(v.reason!, /altered or forged/);
      });

      it('a target that is no longer JSON is caught at that seq (not a server error)', async () => {
        const k = 6;
        const v = await tamperOffline(vault, async (db) => {
          await db('audit_events').where({ seq: k }).update({ target: '{"project": "api", oops' });
        });
        assert.equal(v.firstBadSeq, k);
        assert.match(v.reason!, /altered or forged/);
      });

      // Verify MACs the stored text as it is: any text other than the canonical text the append MACed is
      // refused at its seq, even when it parses to the same value (issue 21's "verify accepts some altered text").
      it('the same target and detail stored as other JSON text (key order, spaces) are refused at that seq', async () => {
        const k = 7;
        const v = await tamperOffline(vault, async (db) => {
          const r = await row(db, k);
          const reorder = (text: string) => JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(text)).reverse()), null, 1);
          await db('audit_events')
            .where({ seq: k })
            .update({ target: reorder(r.target), detail: reorder(r.detail) });
        });
        assert.equal(v.ok, false);
        assert.equal(v.firstBadSeq, k);
        assert.match(v.reason!, /altered or forged/);
      });

      it('a target rewritten with a repeated key ({"key":"FAKE_NAME","key":<real>,...}) is refused at that seq', async () => {
        const e = events.find((x) => typeof (x.target as Record<string, unknown>)?.key === 'string' && x.seq < head)!;
        assert.ok(e, 'an event whose target names a key');
        const v = await tamperOffline(vault, async (db) => {
          const r = await row(db, e.seq);
          assert.ok(r.target.startsWith('{"key":'), r.target);
          await db('audit_events')
            .where({ seq: e.seq })
            .update({ target: '{"key":"FAKE_NAME",' + r.target.slice(1) });
        });
        assert.equal(v.ok, false);
        assert.equal(v.firstBadSeq, e.seq);
      });

      it('a number in the stored text respelled (1 as 1.0000000000000001) is refused at that seq', async () => {
        const e = events.find((x) => /:\d+[,}]/.test(JSON.stringify(x.target)) && x.seq < head)!;
        assert.ok(e, 'an event whose target holds a number');
        const v = await tamperOffline(vault, async (db) => {
          const r = await row(db, e.seq);
          const respelled = r.target.replace(/:(\d+)([,}])/, ':$1.0000000000000001$2');
          assert.notEqual(respelled, r.target);
          assert.deepEqual(JSON.parse(respelled), JSON.parse(r.target), 'the same value once parsed');
          await db('audit_events').where({ seq: e.seq }).update({ target: respelled });
        });
        assert.equal(v.ok, false);
        assert.equal(v.firstBadSeq, e.seq);
      });

      it("rewriting an event's stored hash is caught at that seq", async () => {
        const k = 9;
        const v = await tamperOffline(vault, async (db) => {
          await db('audit_events')
            .where({ seq: k })
            .update({ hash: randomBytes(32) });
        });
        assert.equal(v.firstBadSeq, k);
      });

      it("rewriting an event's prev_hash is caught at that seq as a broken link", async () => {
        const k = 11;
        const v = await tamperOffline(vault, async (db) => {
          await db('audit_events')
            .where({ seq: k })
            .update({ prev_hash: randomBytes(32) });
        });
        assert.equal(v.firstBadSeq, k);
        assert.match(v.reason!, new RegExp(`event ${k} does not link to event ${k - 1}`));
      });

      it('deleting a row names the deleted seq', async () => {
        const k = events.find((e) => e.action === 'secret.read')!.seq;
        const v = await tamperOffline(vault, async (db) => {
          await db('audit_events').where({ seq: k }).delete();
        });
        assert.equal(v.ok, false);
        assert.equal(v.firstBadSeq, k);
        assert.equal(v.checked, k - 1);
        assert.match(v.reason!, new RegExp(`event ${k} is missing \\(deleted\\)`));
      });

      it('deleting the first row names seq 1', async () => {
        const v = await tamperOffline(vault, async (db) => {
          await db('audit_events').where({ seq: 1 }).delete();
        });
        assert.equal(v.firstBadSeq, 1);
      });

      it('deleting a run of rows names the first of them', async () => {
        const v = await tamperOffline(vault, async (db) => {
          await db('audit_events').whereBetween('seq', [6, 9]).delete();
        });
        assert.equal(v.firstBadSeq, 6);
        assert.match(v.reason!, /events 6\.\.9 are missing/);
      });

      it('swapping the contents of two rows names the lower seq', async () => {
        const a = 7;
        const b = 13;
        const v = await tamperOffline(vault, async (db) => {
          const ra = await row(db, a);
          const rb = await row(db, b);
          const { seq: _sa, stream_seq: _qa, ...ca } = ra;
          const { seq: _sb, stream_seq: _qb, ...cb } = rb;
          await db.transaction(async (tx) => {
            await tx('audit_events').where({ seq: a }).update(cb);
            await tx('audit_events').where({ seq: b }).update(ca);
          });
        });
        assert.equal(v.ok, false);
        assert.equal(v.firstBadSeq, a);
        assert.match(v.reason!, new RegExp(`event ${a} does not link`));
      });

      it('swapping two adjacent rows names the lower seq', async () => {
        const v = await tamperOffline(vault, async (db) => {
          const ra = await row(db, 15);
          const rb = await row(db, 16);
          const { seq: _sa, stream_seq: _qa, ...ca } = ra;
          const { seq: _sb, stream_seq: _qb, ...cb } = rb;
          await db('audit_events').where({ seq: 15 }).update(cb);
          await db('audit_events').where({ seq: 16 }).update(ca);
        });
        assert.equal(v.firstBadSeq, 15);
      });

      it('truncating the tail and appending a forged event (MAC under a guessed key) names the forged seq', async () => {
        const k = head - 6;
        const v = await tamperOffline(vault, async (db) => {
          const last = toAudit(await row(db, k));
          await db('audit_events').where('seq', '>', k).delete();
          const forged = {
            seq: k + 1,
            ts: last.ts + 1000,
            actorId: last.actorId,
            actorName: last.actorName,
            action: 'secret.list',
            project: 'api',
            env: 'prod',
            target: {},
            outcome: 'ok',
            ip: '127.0.0.1',
            requestId: 'req_forged',
            detail: { count: 0 },
            stream: last.stream,
            streamSeq: last.streamSeq + 1,
          };
          const hash = await forgedMac(last.hash, eventMaterial(forged));
          await db('audit_events').insert({
            seq: forged.seq,
            ts: forged.ts,
            actor_id: forged.actorId,
            actor_name: forged.actorName,
            action: forged.action,
            project: forged.project,
            env: forged.env,
            target: JSON.stringify(forged.target),
            outcome: forged.outcome,
            ip: forged.ip,
            request_id: forged.requestId,
            detail: JSON.stringify(forged.detail),
            prev_hash: last.hash,
            hash,
            stream: forged.stream,
            stream_seq: forged.streamSeq,
          });
          // The attacker also points the head at the forgery, as a careful one would.
          await db('audit_streams')
            .where({ id: last.stream })
            .update({ head_seq: forged.streamSeq, head_event: k + 1, head_hash: hash });
        });
        assert.equal(v.ok, false);
        assert.equal(v.firstBadSeq, k + 1);
        assert.equal(v.checked, k);
        assert.match(v.reason!, new RegExp(`event ${k + 1} was altered or forged`));
      });

      it('truncating the tail without touching the head names the first removed seq', async () => {
        const k = head - 4;
        const v = await tamperOffline(vault, async (db) => {
          await db('audit_events').where('seq', '>', k).delete();
        });
        assert.equal(v.firstBadSeq, k + 1);
        assert.match(v.reason!, new RegExp(`events ${k + 1}\\.\\.${head} are missing`));
      });
    },
  );
}

for (const backend of BACKENDS) {
  describe(`audit chain on ${backend}: subtle cases, tampered while the server runs`, onBackend(backend), () => {
    let s: TestServer;
    let db: Knex;
    before(async () => {
      s = await startOn(backend);
      await activity(s);
      db = sideDb(s);
    });
    after(async () => {
      await db.destroy();
      await s.close();
    });

    /** Runs `fn` on the live database, then puts the audit tables back and checks the log verifies again. */
    async function withTampering<T>(fn: () => Promise<T>): Promise<T> {
      try {
        return await withAuditRestored(db, fn);
      } finally {
        assert.equal((await verify(s)).ok, true, 'restored');
      }
    }

    it('a deleted LAST row (the head still says N) names N', async () => {
      const { headSeq: n } = await verify(s);
      const v = await withTampering(async () => {
        await db('audit_events').where({ seq: n }).delete();
        return verify(s);
      });
      assert.equal(v.ok, false);
      assert.equal(v.firstBadSeq, n);
      assert.equal(v.checked, n - 1);
      assert.match(v.reason!, new RegExp(`event ${n} is missing: the chain head says the log ends at ${n}, the table ends at ${n - 1}`));
    });

    it('a row inserted beyond the head names that row, and honest appends keep working below it', async () => {
      const { headSeq: n } = await verify(s);
      const v = await withTampering(async () => {
        const last = toAudit(await row(db, n));
        await db('audit_events').insert({
          ...(await row(db, n)),
          seq: n + 5,
          stream_seq: last.streamSeq + 5,
          prev_hash: last.hash,
          hash: await forgedMac(last.hash, 'x'),
        });
        const first = await verify(s);
        assert.equal(first.firstBadSeq, n + 5);
        assert.equal(first.checked, n, 'everything up to the head verified');
        assert.match(first.reason!, new RegExp(`event ${n + 5} lies beyond the chain head \\(${n}\\)`));
        assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/AFTER', { value: 'x' })).status, 200);
        return verify(s);
      });
      assert.equal(v.firstBadSeq, n + 5);
      assert.equal(v.checked, n + 1);
    });

    it('a rewritten head record is reported at the head seq', async () => {
      const { headSeq: n } = await verify(s);
      const v = await withTampering(async () => {
        const last = toAudit(await row(db, n));
        await db('audit_streams')
          .where({ id: last.stream })
          .update({ head_hash: randomBytes(32) });
        return verify(s);
      });
      assert.equal(v.firstBadSeq, n);
      assert.match(v.reason!, /head was rewritten/);
    });

    it('a deleted stream registry row is reported; the server goes on in a new stream of its own', async () => {
      const { headSeq: n } = await verify(s);
      const last = toAudit(await row(db, n));
      const v = await withTampering(async () => {
        await db('audit_streams').where({ id: last.stream }).delete();
        const put = await s.api('PUT', '/v1/projects/api/envs/prod/secrets/NOHEAD', { value: 'x' });
        assert.equal(put.status, 200, 'the write is audited in a new stream');
        const ev = (await allEvents(s, 'action=secret.write')).at(-1)!;
        assert.notEqual(ev.stream, last.stream);
        assert.equal(ev.streamSeq, 1);
        return verify(s);
      });
      assert.equal(v.ok, false);
      const first = Number((await db('audit_events').where({ stream: last.stream }).min({ s: 'seq' }).first())!.s);
      assert.equal(v.firstBadSeq, first);
      assert.match(v.reason!, new RegExp(`belongs to stream ${last.stream}, which is not in the stream registry`));
    });

    it('truncating the tail together with the head passes a plain verify (the documented limit) but not one with an anchor', async () => {
      const before = await verify(s);
      const anchor = `anchorSeq=${before.headSeq}&anchorHash=${before.headHash}`;
      assert.equal((await verify(s, anchor)).ok, true, 'the anchor matches the intact log');
      const k = before.headSeq - 3;
      const [plain, anchored] = await withTampering(async () => {
        const at = toAudit(await row(db, k));
        await db('audit_events').where('seq', '>', k).delete();
        await db('audit_streams').where({ id: at.stream }).update({ head_seq: at.streamSeq, head_event: k, head_hash: at.hash });
        return [await verify(s), await verify(s, anchor)];
      });
      assert.equal(plain.ok, true, 'without an outside anchor this cannot be seen');
      assert.equal(plain.headSeq, k);
      assert.equal(anchored.ok, false);
      assert.equal(anchored.firstBadSeq, k + 1);
      assert.match(anchored.reason!, new RegExp(`anchor names event ${before.headSeq} but the log ends at ${k}`));
    });

    it('an anchor whose hash differs names the anchored seq', async () => {
      const v = await verify(s, `anchorSeq=3&anchorHash=${'ab'.repeat(32)}`);
      assert.equal(v.ok, false);
      assert.equal(v.firstBadSeq, 3);
    });

    it('anchorSeq without anchorHash is a 400', async () => {
      const r = await s.api('GET', '/v1/audit/verify?anchorSeq=3');
      assert.equal(r.status, 400);
      assert.equal(r.body.error.code, 'invalid_request');
    });

    it('the store streams verification in pages: a small page size yields every seq once, in order', async () => {
      const { headSeq } = await verify(s);
      const seqs: number[] = [];
      for await (const e of s.server.container.stores.audit.iterate(headSeq, 7)) seqs.push(e.seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: headSeq }, (_, i) => i + 1),
      );
    });

    it('verify needs the audit grant', async () => {
      const t = await s.api('POST', '/v1/tokens', { name: 'reader', scopes: ['read:api/prod'], ttl: '1h' });
      const r = await s.api('GET', '/v1/audit/verify', undefined, t.body.token);
      assert.equal(r.status, 403);
    });
  });
}
