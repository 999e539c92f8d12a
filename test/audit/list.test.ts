import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';
import { SYSTEM_CONTEXT } from '../../vault/services/audit/audit-service.js';
import { allEvents, createToken, makeEnv, type Ev } from './util.js';

for (const backend of BACKENDS) {
  describe(`GET /v1/audit filters and pagination on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    let ci: { token: string; id: string };
    let all: Ev[];
    let mid: number;

    before(async () => {
      s = await startOn(backend);
      await makeEnv(s, 'p1', 'dev', 'prod');
      await makeEnv(s, 'p2', 'prod');
      ci = await createToken(s, 'ci-writer', ['write:p1/*']);
      for (const [p, e] of [
        ['p1', 'dev'],
        ['p1', 'prod'],
        ['p2', 'prod'],
      ]) {
        assert.equal((await s.api('PUT', `/v1/projects/${p}/envs/${e}/secrets/A`, { value: 'root' })).status, 200);
      }
      await sleep(20);
      mid = Date.now();
      await sleep(20);
      for (const e of ['dev', 'prod']) {
        assert.equal((await s.api('PUT', `/v1/projects/p1/envs/${e}/secrets/B`, { value: 'ci' }, ci.token)).status, 200);
        assert.equal((await s.api('GET', `/v1/projects/p1/envs/${e}/secrets/B`, undefined, ci.token)).status, 200);
      }
      assert.equal((await s.api('GET', '/v1/projects/p2/envs/prod/secrets/A', undefined, ci.token)).status, 403);
      assert.equal((await s.api('GET', '/v1/projects/p1/envs/dev/secrets/NOPE', undefined, ci.token)).status, 404);
      assert.equal((await s.api('PATCH', '/v1/projects/p2/envs/prod/secrets', { set: { C: '1' } })).status, 200);
      all = await allEvents(s);
    });
    after(async () => {
      await s.close();
    });

    const seqs = (es: Ev[]) => es.map((e) => e.seq);

    it('no filter returns everything in seq order', () => {
      assert.deepEqual(
        seqs(all),
        all.map((_, i) => i + 1),
      );
    });

    it('action: exact, and a trailing * as a literal prefix', async () => {
      const w = await allEvents(s, 'action=secret.write');
      assert.equal(w.length, 5);
      assert.ok(w.every((e) => e.action === 'secret.write'));
      const pre = await allEvents(s, 'action=secret.*');
      assert.deepEqual(seqs(pre), seqs(all.filter((e) => e.action.startsWith('secret.'))));
      assert.ok(!pre.some((e) => e.action === 'secrets.bulk'), 'the prefix is literal: secret.* does not match secrets.bulk');
      assert.equal((await allEvents(s, 'action=secret_*')).length, 0, '_ in a prefix is not a wildcard');
      assert.equal((await allEvents(s, 'action=%25')).length, 0, '% is not a wildcard');
    });

    it('actor: by token id or by token name', async () => {
      const byId = await allEvents(s, `actor=${ci.id}`);
      const byName = await allEvents(s, 'actor=ci-writer');
      assert.deepEqual(seqs(byId), seqs(byName));
      assert.deepEqual(seqs(byId), seqs(all.filter((e) => e.actor.id === ci.id)));
      assert.equal(byId.length, 6);
      assert.deepEqual(seqs(await allEvents(s, 'actor=system')), seqs(all.filter((e) => e.actor.id === 'system')));
    });

    it('project and env, alone and together', async () => {
      assert.deepEqual(seqs(await allEvents(s, 'project=p2')), seqs(all.filter((e) => e.project === 'p2')));
      assert.deepEqual(seqs(await allEvents(s, 'env=prod')), seqs(all.filter((e) => e.env === 'prod')));
      const both = await allEvents(s, 'project=p1&env=prod');
      assert.deepEqual(seqs(both), seqs(all.filter((e) => e.project === 'p1' && e.env === 'prod')));
      assert.ok(both.length >= 4);
    });

    it('outcome', async () => {
      const denied = await allEvents(s, 'outcome=denied');
      assert.equal(denied.length, 1);
      assert.deepEqual([denied[0].action, denied[0].project, denied[0].env], ['secret.read', 'p2', 'prod']);
      const err = await allEvents(s, 'outcome=error');
      assert.equal(err.length, 1);
      assert.equal(err[0].target.key, 'NOPE');
      assert.equal((await allEvents(s, 'outcome=ok')).length, all.length - 2);
    });

    it('time range: from is inclusive, to exclusive; epoch ms or ISO-8601', async () => {
      const later = all.filter((e) => Date.parse(e.ts) >= mid);
      const earlier = all.filter((e) => Date.parse(e.ts) < mid);
      assert.ok(later.length > 0 && earlier.length > 0);
      assert.deepEqual(seqs(await allEvents(s, `from=${mid}`)), seqs(later));
      assert.deepEqual(seqs(await allEvents(s, `to=${encodeURIComponent(new Date(mid).toISOString())}`)), seqs(earlier));
      const t = Date.parse(later[1].ts);
      const window = await allEvents(s, `from=${mid}&to=${t}`);
      assert.deepEqual(seqs(window), seqs(all.filter((e) => Date.parse(e.ts) >= mid && Date.parse(e.ts) < t)));
      assert.equal((await allEvents(s, `from=${t}&to=${mid}`)).length, 0);
    });

    it('filters combine', async () => {
      const r = await allEvents(s, `actor=ci-writer&action=secret.read&env=prod&outcome=ok&from=${mid}`);
      assert.equal(r.length, 1);
      assert.equal(
        (await allEvents(s, `actor=ci-writer&action=secret.read&env=prod&from=${mid}`)).length,
        2,
        'with the denied read of p2/prod',
      );
      assert.deepEqual([r[0].project, r[0].target.key, r[0].outcome], ['p1', 'B', 'ok']);
    });

    it('cursor pagination ascending: pages of 3 cover the result exactly once', async () => {
      const got: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r: { status: number; body: { events: Ev[]; nextCursor: string | null } } = await s.api(
          'GET',
          `/v1/audit?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        );
        assert.equal(r.status, 200);
        assert.ok(r.body.events.length <= 3);
        got.push(...seqs(r.body.events));
        cursor = r.body.nextCursor;
        pages++;
      } while (cursor);
      assert.deepEqual(got, seqs(all));
      assert.ok(pages >= Math.ceil(all.length / 3));
    });

    it('cursor pagination descending, with a filter', async () => {
      const want = seqs(all.filter((e) => e.project === 'p1')).reverse();
      const got: number[] = [];
      let cursor: string | null = null;
      do {
        const r: { status: number; body: { events: Ev[]; nextCursor: string | null } } = await s.api(
          'GET',
          `/v1/audit?order=desc&project=p1&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
        got.push(...seqs(r.body.events));
        cursor = r.body.nextCursor;
      } while (cursor);
      assert.deepEqual(got, want);
    });

    it('limit: honoured; limit=0 reads as 1; the cursor is the last seq of a full page', async () => {
      const two = await s.api('GET', '/v1/audit?limit=2');
      assert.deepEqual(seqs(two.body.events), [1, 2]);
      assert.equal(two.body.nextCursor, '2');
      const rest = await s.api('GET', '/v1/audit?cursor=2');
      assert.deepEqual(seqs(rest.body.events), seqs(all).slice(2));
      assert.equal(rest.body.nextCursor, null);
      assert.equal((await s.api('GET', '/v1/audit?limit=0')).body.events.length, 1);
    });

    it('bad parameters are 400 invalid_request', async () => {
      for (const q of ['from=yesterday', 'limit=abc', 'cursor=-1', 'outcome=maybe', 'order=sideways', 'colour=blue']) {
        const r = await s.api('GET', `/v1/audit?${q}`);
        assert.equal(r.status, 400, q);
        assert.equal(r.body.error.code, 'invalid_request', q);
      }
    });

    it('needs the audit grant; a refusal is itself recorded', async () => {
      const r = await s.api('GET', '/v1/audit', undefined, ci.token);
      assert.equal(r.status, 403);
      const auditor = await createToken(s, 'auditor', ['audit']);
      assert.equal((await s.api('GET', '/v1/audit?limit=1', undefined, auditor.token)).status, 200);
      const denied = await allEvents(s, 'action=audit.list');
      assert.equal(denied.length, 1);
      assert.equal(denied[0].outcome, 'denied');
      assert.equal(denied[0].detail.missing, 'audit');
    });
  });
  describe(`GET /v1/audit page sizes on ${backend}, with more than 1,100 events`, onBackend(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend);
      // 1,100 more than the start-up events, recorded in parallel so they commit in batches.
      const more = Array.from({ length: 1100 }, (_, i) =>
        s.server.container.audit.record(SYSTEM_CONTEXT, { action: 'test.filler', outcome: 'ok', detail: { i } }),
      );
      await Promise.all(more);
    });
    after(async () => {
      await s.close();
    });

    it('without limit a page is 100 events; limit=9999 is capped at 1000; each full page has a cursor', async () => {
      const first = await s.api('GET', '/v1/audit');
      assert.equal(first.status, 200);
      assert.deepEqual(
        first.body.events.map((e: Ev) => e.seq),
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
      assert.equal(first.body.nextCursor, '100');
      const capped = await s.api('GET', '/v1/audit?limit=9999');
      assert.equal(capped.status, 200);
      assert.equal(capped.body.events.length, 1000);
      assert.equal(capped.body.nextCursor, '1000');
      const last = await s.api('GET', '/v1/audit?limit=1000&cursor=1000');
      // The rest: at least the last 100 fillers (and whatever the reads above recorded), in order, and no further page.
      const rest = last.body.events.map((e: Ev) => e.seq);
      assert.ok(rest.length >= 100 && rest.length < 1000, `${rest.length} events after seq 1000`);
      assert.deepEqual(
        rest,
        Array.from({ length: rest.length }, (_, i) => i + 1001),
      );
      assert.equal(last.body.nextCursor, null);
    });
  });
}
