/**
 * Env history, diff, rollback and copy (docs/history.md), through the SDK
 * against a real server, on SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, isForbiddenError, isNotFoundError, type HushClient } from 'hush-vault-sdk';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';
import { seed } from '../helpers/seed.js';
import { allEvents, createToken } from '../audit/util.js';

for (const backend of BACKENDS) {
  describe(`env history on ${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, onBackend(backend), () => {
    let s: TestServer;
    let root: HushClient;
    let writer: { token: string; id: string };
    let w: HushClient;
    const client = (token: string) => createClient({ addr: s.url, token, retries: { limit: 0 } });

    before(async () => {
      s = await startOn(backend);
      root = client(s.rootToken);
      await seed(s.api, { api: { staging: {}, prod: {} } });
      writer = await createToken(s, 'deploy-bot', ['write:api/*']);
      w = client(writer.token);
      await w.secrets.bulk('api', 'staging', { set: { A: 'a1', B: 'b1' } }); // r1
      await w.secrets.set('api', 'staging', 'A', 'a2'); // r2
      await w.secrets.delete('api', 'staging', 'B'); // r3
      await root.secrets.bulk('api', 'staging', { set: { C: 'c1', A: 'a2' } }); // r4 (A unchanged)
    });
    after(async () => {
      await s?.close();
    });

    it('history lists each revision newest first, with the writer by name and the names it changed', async () => {
      const h = await root.secrets.history('api', 'staging');
      assert.equal(h.revision, 4);
      assert.deepEqual(
        h.revisions.map((r) => [
          r.revision,
          r.actors.map((a) => a.name).join(),
          r.changes.map((c) => `${c.action} ${c.key} v${c.version}`).join(),
          r.live,
        ]),
        [
          [4, 'root', 'set C v1', 2],
          [3, 'deploy-bot', 'deleted B v2', 1],
          [2, 'deploy-bot', 'set A v2', 2],
          [1, 'deploy-bot', 'set A v1,set B v1', 2],
        ],
      );
      assert.equal(h.revisions[3].actors[0].id, writer.id);
      const page = await root.secrets.history('api', 'staging', { limit: 2, before: 4 });
      assert.deepEqual(
        page.revisions.map((r) => r.revision),
        [3, 2],
      );
      assert.equal(page.more, true);
    });

    it('a write that changes nothing makes no revision (bulk, import of the same values)', async () => {
      const r = await root.secrets.bulk('api', 'staging', { set: { A: 'a2', C: 'c1' } });
      assert.equal(r.revision, 4);
      assert.deepEqual(r.unchanged, ['A', 'C']);
      const envs = await root.envs.list('api');
      assert.equal(envs.find((e) => e.name === 'staging')!.revision, 4);
      assert.equal((await root.secrets.history('api', 'staging')).revisions[0].revision, 4);
    });

    it('diff between revisions shows names only, unless values are asked for (then audited as reads)', async () => {
      const d = await root.secrets.diff('api', 'staging', { fromRevision: 1 });
      assert.deepEqual([d.from.revision, d.to.revision, d.added, d.removed, d.changed, d.unchanged], [1, 4, ['C'], ['B'], ['A'], 0]);
      assert.equal(d.values, undefined);
      const v = await root.secrets.diff('api', 'staging', { fromRevision: 1, toRevision: 2, values: true });
      assert.deepEqual(v.values, { A: { from: 'a1', to: 'a2' } });
      const events = await allEvents(s, 'action=secret.read');
      const diffReads = events.filter((e) => (e.detail as { diff?: boolean }).diff === true);
      assert.equal(diffReads.length, 2, 'one read per side of the diff with values');
      const recorded = JSON.stringify(events.map((e) => [e.target, e.detail]));
      assert.ok(!recorded.includes('"a1"') && !recorded.includes('"a2"'), `no value in audit events: ${recorded}`);
      const named = await allEvents(s, 'action=secrets.diff');
      assert.equal(named.length, 1);
    });

    it('diff between two environments; a revision that does not exist is 404 revision_not_found', async () => {
      await root.secrets.bulk('api', 'prod', { set: { A: 'a2', B: 'bp', D: 'd' } });
      const d = await root.secrets.diff('api', 'staging', { other: { project: 'api', env: 'prod' } });
      assert.deepEqual([d.added, d.removed, d.changed, d.unchanged], [['B', 'D'], ['C'], [], 1]);
      await assert.rejects(
        root.secrets.diff('api', 'staging', { fromRevision: 99 }),
        (e: unknown) => isNotFoundError(e) && (e as { code: string }).code === 'revision_not_found',
      );
    });

    it('rollback writes a new revision equal to the old one, and is audited; a second one changes nothing', async () => {
      const r = await w.secrets.rollback('api', 'staging', 1);
      assert.deepEqual([r.revision, r.added, r.changed, r.deleted], [5, ['B'], ['A'], ['C']]);
      assert.deepEqual({ ...(await root.secrets.getAll('api', 'staging')).secrets }, { A: 'a1', B: 'b1' });
      const again = await w.secrets.rollback('api', 'staging', 1);
      assert.equal(again.revision, 5);
      const ev = await allEvents(s, 'action=secrets.rollback');
      assert.equal(ev.length, 2);
      assert.ok(ev.every((e) => (e.detail as { toRevision: number }).toRevision === 1 && e.actor.name === 'deploy-bot'));
      // Rolling back to the state before the rollback brings C back.
      const fwd = await w.secrets.rollback('api', 'staging', 4);
      assert.deepEqual({ ...(await root.secrets.getAll('api', 'staging')).secrets }, { A: 'a2', C: 'c1' });
      assert.equal(fwd.revision, 6);
    });

    it('copy promotes all values, or only some; names only in the target stay', async () => {
      const some = await root.secrets.copy({ project: 'api', env: 'staging' }, { project: 'api', env: 'prod' }, { only: ['C'] });
      assert.deepEqual([some.added, some.changed], [['C'], []]);
      assert.deepEqual({ ...(await root.secrets.getAll('api', 'prod')).secrets }, { A: 'a2', B: 'bp', C: 'c1', D: 'd' });
      const all = await root.secrets.copy({ project: 'api', env: 'staging' }, { project: 'api', env: 'prod' });
      assert.deepEqual([all.added, all.changed, all.unchanged], [[], [], ['A', 'C']]);
      await assert.rejects(
        root.secrets.copy({ project: 'api', env: 'staging' }, { project: 'api', env: 'prod' }, { only: ['NOPE'] }),
        (e: unknown) => isNotFoundError(e),
      );
      const ev = await allEvents(s, 'action=secrets.copy');
      assert.deepEqual(ev.map((e) => e.outcome).sort(), ['error', 'ok', 'ok'], 'each copy is audited, the refused one as an error');
    });

    it('grants: history needs list, diff needs read on both sides, rollback needs write, copy needs read on the source', async () => {
      const lister = client((await createToken(s, 'lister', ['list:api/staging'])).token);
      await lister.secrets.history('api', 'staging');
      await assert.rejects(lister.secrets.diff('api', 'staging', { fromRevision: 1 }), (e: unknown) => isForbiddenError(e));
      const reader = client((await createToken(s, 'reader', ['read:api/staging'])).token);
      await assert.rejects(reader.secrets.diff('api', 'staging', { other: { project: 'api', env: 'prod' } }), (e: unknown) =>
        isForbiddenError(e),
      );
      await assert.rejects(reader.secrets.rollback('api', 'staging', 1), (e: unknown) => isForbiddenError(e));
      const prodWriter = client((await createToken(s, 'prod-writer', ['write:api/prod'])).token);
      await assert.rejects(prodWriter.secrets.copy({ project: 'api', env: 'staging' }, { project: 'api', env: 'prod' }), (e: unknown) =>
        isForbiddenError(e),
      );
      const denied = await allEvents(s, 'outcome=denied');
      assert.ok(
        denied.some((e) => e.action === 'secrets.copy'),
        'the refused copy is audited',
      );
    });

    it('concurrent writes each get their own revision, and history rebuilds every one', async () => {
      await Promise.all(Array.from({ length: 8 }, (_, i) => root.secrets.set('api', 'prod', `K${i}`, `v${i}`)));
      const h = await root.secrets.history('api', 'prod');
      const revs = h.revisions.map((r) => r.revision);
      assert.deepEqual(
        revs,
        [...revs].sort((a, b) => b - a),
      );
      assert.equal(new Set(revs).size, revs.length);
      assert.equal(h.revisions[0].revision, h.revision);
      for (const r of h.revisions.slice(0, 8)) assert.equal(r.changes.length, 1);
    });
  });
}
