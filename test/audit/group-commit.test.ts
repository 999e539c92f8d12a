import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import fc from 'fast-check';
import { canonicalJson } from '../../vault/services/audit/canonical.js';
import { eventMaterial } from '../../vault/services/audit/audit-service.js';
import type { AuditContext } from '../../vault/services/audit/audit-service.js';
import { blockAuditInserts, sideDb, unblockAuditInserts } from '../helpers/db.js';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';
import { allEvents, assertContiguous, makeEnv, verify } from './util.js';

const ctx: AuditContext = { actorId: 'tok_test', actorName: 'test', ip: '127.0.0.1', requestId: null };
const codeOf = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok');

for (const backend of BACKENDS) {
  describe(`group commit on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    let side: Knex;
    before(async () => {
      s = await startOn(backend);
      side = sideDb(s);
      await makeEnv(s, 'api', 'prod');
    });
    after(async () => {
      await side.destroy();
      await s.close();
    });

    it('jobs queued in one turn commit in one transaction; a failing job is rolled back alone', async () => {
      const c = s.server.container;
      const before_ = await c.secrets.revision('api', 'prod');
      let begins = 0;
      const onQuery = (q: { sql: string }) => {
        if (/^begin/i.test(q.sql)) begins++;
      };
      c.db.on('query', onQuery);
      const results = await Promise.allSettled([
        c.secrets.put('api', 'prod', 'GC_A', 'a', undefined, ctx),
        c.secrets.put('api', 'prod', 'GC_B', 'b', 7, ctx), // CAS conflict: B does not exist
        c.secrets.put('api', 'prod', 'GC_C', 'c', undefined, ctx),
        c.secrets.getAll('api', 'prod', ctx),
        c.secrets.getAll('api', 'missing', ctx), // a read-only job failing: nothing to undo
        c.secrets.put('api', 'prod', 'GC_E', 'e', undefined, ctx),
        c.secrets.delete('api', 'prod', 'GC_E', ctx),
      ]);
      c.db.off('query', onQuery);
      assert.deepEqual(results.map(codeOf), ['ok', 'cas_conflict', 'ok', 'ok', 'env_not_found', 'ok', 'ok']);
      const read = (results[3] as PromiseFulfilledResult<{ secrets: Record<string, string>; revision: number }>).value;
      if (backend === 'sqlite') {
        assert.equal(begins, 1, 'one transaction for the whole batch');
        // The read ran after A and C in the same transaction and saw both.
        assert.deepEqual({ ...read.secrets }, { GC_A: 'a', GC_C: 'c' });
      } else {
        // PostgreSQL: reads run on their own connection, outside the batch;
        // only their events join a batch (here the next one, after the writes').
        assert.ok(begins >= 1 && begins <= 2, `the writes in one transaction, the read's event in at most one more (saw ${begins})`);
        // The writes committed together: the read saw all of them or none.
        const seen = read.revision === before_.revision ? {} : { GC_A: 'a', GC_C: 'c' };
        assert.deepEqual({ ...read.secrets }, seen);
      }
      const now = await c.secrets.revision('api', 'prod');
      assert.equal(now.revision, before_.revision + 4, "the failed job's revision bump was rolled back");
      const all = await s.api('GET', '/v1/projects/api/envs/prod/secrets');
      assert.deepEqual(all.body.secrets, { GC_A: 'a', GC_C: 'c' });
      const v = await verify(s);
      assert.equal(v.ok, true, v.reason ?? '');
      const events = await allEvents(s);
      assertContiguous(events);
      const writes = events
        .filter((e) => e.action === 'secret.write' || e.action === 'secret.delete')
        .map((e) => `${e.action} ${e.target.key}`);
      assert.deepEqual(writes, ['secret.write GC_A', 'secret.write GC_C', 'secret.write GC_E', 'secret.delete GC_E']);
    });

    it('when the audit append fails, every job of the batch fails with audit_unavailable and none is ' + 'applied', async () => {
      const c = s.server.container;
      const before_ = await c.secrets.revision('api', 'prod');
      const head = (await verify(s)).checked;
      await blockAuditInserts(side);
      try {
        const results = await Promise.allSettled([
          c.secrets.put('api', 'prod', 'GC_A', 'changed', undefined, ctx),
          c.secrets.getAll('api', 'prod', ctx),
          c.secrets.put('api', 'prod', 'GC_D', 'd', undefined, ctx),
        ]);
        assert.deepEqual(results.map(codeOf), ['audit_unavailable', 'audit_unavailable', 'audit_unavailable']);
      } finally {
        await unblockAuditInserts(side);
      }
      assert.equal((await c.secrets.revision('api', 'prod')).revision, before_.revision);
      const all = await s.api('GET', '/v1/projects/api/envs/prod/secrets');
      assert.deepEqual(all.body.secrets, { GC_A: 'a', GC_C: 'c' });
      const v = await verify(s);
      assert.equal(v.ok, true, v.reason ?? '');
      assert.equal(v.checked, head + 1, 'only the read above was added');
    });

    it('a job whose event cannot be stored fails alone; the rest of its batch commits', async () => {
      const c = s.server.container;
      if (backend === 'sqlite') {
        await side.raw(
          `create trigger audit_poison before insert on audit_events when new.target like '%GC_POISON%' ` +
            `begin select raise(abort, 'poisoned event'); end`,
        );
      } else {
        await side.raw(
          `create or replace function audit_poison() returns trigger language plpgsql as $$ begin if ` +
            `new.target like '%GC_POISON%' then raise exception 'poisoned event'; end if; return new; end $$`,
        );
        await side.raw('create trigger audit_poison before insert on audit_events for each row execute function ' + 'audit_poison()');
      }
      try {
        const results = await Promise.allSettled([
          c.secrets.put('api', 'prod', 'GC_X', 'x', undefined, ctx),
          c.secrets.put('api', 'prod', 'GC_POISON', 'p', undefined, ctx),
          c.secrets.getAll('api', 'prod', ctx),
          c.secrets.put('api', 'prod', 'GC_Y', 'y', undefined, ctx),
        ]);
        assert.deepEqual(results.map(codeOf), ['ok', 'audit_unavailable', 'ok', 'ok']);
      } finally {
        await side.raw(backend === 'sqlite' ? 'drop trigger audit_poison' : 'drop trigger audit_poison on audit_events');
      }
      const all = await s.api('GET', '/v1/projects/api/envs/prod/secrets');
      assert.equal(all.body.secrets.GC_X, 'x');
      assert.equal(all.body.secrets.GC_Y, 'y');
      assert.equal(all.body.secrets.GC_POISON, undefined, 'the refused write was not applied');
      const v = await verify(s);
      assert.equal(v.ok, true, v.reason ?? '');
      assertContiguous(await allEvents(s));
    });

    it('values read inside a batch that rolled back are never served later (the cache fills after ' + 'commit)', async () => {
      const c = s.server.container;
      await blockAuditInserts(side);
      try {
        // The read sees the uncommitted write at revision r+1; the batch then fails.
        const results = await Promise.allSettled([
          c.secrets.put('api', 'prod', 'GC_A', 'rolled-back', undefined, ctx),
          c.secrets.getAll('api', 'prod', ctx),
        ]);
        assert.deepEqual(results.map(codeOf), ['audit_unavailable', 'audit_unavailable']);
      } finally {
        await unblockAuditInserts(side);
      }
      // Revision r+1 is now committed with another value.
      assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/GC_A', { value: 'committed' })).status, 200);
      const all = await s.api('GET', '/v1/projects/api/envs/prod/secrets');
      assert.equal(all.body.secrets.GC_A, 'committed');
    });
  });
}

describe('canonical event material', () => {
  const value = fc.oneof(
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 5 }),
    fc.dictionary(
      fc.string({ maxLength: 6 }),
      fc.oneof(fc.string(), fc.integer(), fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)))),
    ),
  );
  /** The definition: sorted keys at every depth, element by element. */
  function reference(v: unknown): string {
    if (v === null || typeof v !== 'object') return JSON.stringify(v ?? null);
    if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
    const keys = Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }

  it('canonicalJson matches the element-by-element definition', () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 6 }), fc.dictionary(fc.string({ maxLength: 6 }), value), (arr, obj) => {
        assert.equal(canonicalJson(arr), reference(arr));
        assert.equal(canonicalJson(obj), reference(obj));
      }),
    );
  });

  it('eventMaterial is canonicalJson of the event fields, so chains written before stay verifiable', () => {
    const text = fc.string({ maxLength: 20 });
    const obj = fc.dictionary(fc.string({ maxLength: 6 }), value);
    fc.assert(
      fc.property(
        fc.nat(),
        fc.nat(),
        text,
        text,
        text,
        fc.option(text),
        fc.option(text),
        obj,
        text,
        fc.option(text),
        fc.option(text),
        obj,
        (seq, ts, actorId, actorName, action, project, env, target, outcome, ip, requestId, detail) => {
          const e = { seq, ts, actorId, actorName, action, project, env, target, outcome, ip, requestId, detail };
          assert.equal(eventMaterial(e), reference(e));
        },
      ),
    );
  });
});
