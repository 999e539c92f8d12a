import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { sideDb } from '../helpers/db.js';
import { BACKENDS, onBackend, startOn, startServer, type TestServer } from '../helpers/server.js';
import { allEvents, assertContiguous, makeEnv, verify, withAuditRestored } from './util.js';

/**
 * Streams and checkpoints (docs/audit.md): every process appends to its own
 * chain, and checkpoints commit to every stream's head, so a stream's tail
 * removed together with its head is found without an outside anchor.
 */
for (const backend of BACKENDS) {
  describe(`audit streams and checkpoints on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    let db: Knex;
    before(async () => {
      s = await startOn(backend, { 'audit-checkpoint-interval': '0' });
      await makeEnv(s, 'api', 'prod');
      for (let i = 0; i < 6; i++)
        assert.equal((await s.api('PUT', `/v1/projects/api/envs/prod/secrets/K${i}`, { value: `v${i}` })).status, 200);
      db = sideDb(s);
    });
    after(async () => {
      await db?.destroy();
      await s?.close();
    });

    const restoring = <T>(fn: () => Promise<T>) => withAuditRestored(db, fn);

    it('events carry their stream and place in it; the init process and the server wrote different streams', async () => {
      const events = await allEvents(s);
      assertContiguous(events);
      const init = events.find((e) => e.action === 'vault.init')!;
      const start = events.find((e) => e.action === 'server.start')!;
      assert.notEqual(init.stream, 0, 'stream 0 is only the single chain of vaults made before streams');
      assert.equal(start.streamSeq, 1);
      const v = await verify(s);
      assert.equal(v.ok, true, v.reason ?? '');
      assert.equal(v.checked, events.length);
      assert.ok((v as unknown as { streams: number }).streams >= 1);
    });

    it('a checkpoint commits to every stream that moved, is chained, and verify reports the last one', async () => {
      const c1 = await s.server.container.audit.checkpoint();
      assert.ok(c1, 'streams moved since the start, so a checkpoint was written');
      assert.equal(await s.server.container.audit.checkpoint(), null, 'nothing moved since: no new checkpoint');
      assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets')).status, 200);
      const c2 = (await s.server.container.audit.checkpoint())!;
      assert.equal(c2.id, c1.id + 1);
      const rows = await db('audit_checkpoints').orderBy('id');
      assert.deepEqual(Buffer.from(rows.at(-1).prev_hash).toString('hex'), c1.hash);
      const heads = JSON.parse(rows.at(-1).heads) as [number, number, string][];
      assert.equal(heads.length, 1, 'only the stream that moved');
      const v = await verify(s);
      assert.equal(v.ok, true, v.reason ?? '');
      assert.deepEqual((v as unknown as { checkpoint: unknown }).checkpoint, c2);
      assert.equal((await verify(s, `anchorCheckpoint=${c2.id}&anchorCheckpointHash=${c2.hash}`)).ok, true);
    });

    it('a stream tail removed together with its head is caught by the checkpoint that covered it (no anchor needed)', async () => {
      assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/TAIL', { value: 't' })).status, 200);
      const cp = (await s.server.container.audit.checkpoint())!;
      const v = await restoring(async () => {
        const last = await db('audit_events').orderBy('seq', 'desc').first();
        const keep = await db('audit_events')
          .where({ stream: last.stream, stream_seq: Number(last.stream_seq) - 2 })
          .first();
        await db('audit_events').where({ stream: last.stream }).andWhere('stream_seq', '>', Number(keep.stream_seq)).delete();
        await db('audit_streams')
          .where({ id: last.stream })
          .update({ head_seq: keep.stream_seq, head_event: keep.seq, head_hash: keep.hash });
        return verify(s);
      });
      assert.equal(v.ok, false);
      assert.match(v.reason!, new RegExp(`checkpoint ${cp.id} says stream \\d+ reached #\\d+, but it ends at #\\d+`));
      assert.ok(v.firstBadSeq !== null);
    });

    it('an edited, a deleted and a moved checkpoint are each caught; a removed last checkpoint only by an anchor', async () => {
      assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/CP', { value: 'x' })).status, 200);
      const last = (await s.server.container.audit.checkpoint())!;
      assert.ok(last.id >= 3);
      const edited = await restoring(async () => {
        await db('audit_checkpoints')
          .where({ id: 1 })
          .update({ ts: Date.now() + 1 });
        return verify(s);
      });
      assert.match(edited.reason!, /checkpoint 1 was altered or forged/);
      const deleted = await restoring(async () => {
        await db('audit_checkpoints').where({ id: 2 }).delete();
        return verify(s);
      });
      assert.match(deleted.reason!, /checkpoint 2 is missing \(deleted\)/);
      const relinked = await restoring(async () => {
        await db('audit_checkpoints')
          .where({ id: 2 })
          .update({ prev_hash: randomBytes(32) });
        return verify(s);
      });
      assert.match(relinked.reason!, /checkpoint 2 does not link to checkpoint 1/);
      const [plain, anchored] = await restoring(async () => {
        await db('audit_checkpoints').where({ id: last.id }).delete();
        return [await verify(s), await verify(s, `anchorCheckpoint=${last.id}&anchorCheckpointHash=${last.hash}`)];
      });
      assert.equal(plain.ok, true, 'a removed last checkpoint leaves a valid, shorter checkpoint chain');
      assert.equal(anchored.ok, false);
      assert.match(anchored.reason!, new RegExp(`the anchor names checkpoint ${last.id} but the checkpoints end at ${last.id - 1}`));
      assert.equal((await verify(s)).ok, true, 'restored');
    });

    it('anchorCheckpoint without its hash is a 400', async () => {
      const r = await s.api('GET', '/v1/audit/verify?anchorCheckpoint=1');
      assert.equal(r.status, 400);
      assert.equal(r.body.error.code, 'invalid_request');
    });
  });
}

describe('a second server process on the same database appends to a stream of its own (sqlite)', () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    a = await startServer({ settings: { 'audit-checkpoint-interval': '0' } });
    b = await startServer({ dataDir: a.dataDir, settings: { 'audit-checkpoint-interval': '0' } });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  it('both streams verify, each without a gap, interleaved in seq order; a checkpoint covers both', async () => {
    await makeEnv(a, 'api', 'prod');
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).api('PUT', `/v1/projects/api/envs/prod/secrets/K${i}`, { value: `v${i}` }, a.rootToken),
      ),
    );
    const events = await allEvents(a);
    assertContiguous(events);
    const writes = events.filter((e) => e.action === 'secret.write');
    assert.equal(new Set(writes.map((e) => e.stream)).size, 2);
    const cp = (await b.server.container.audit.checkpoint())!;
    const heads = JSON.parse((await a.server.container.db('audit_checkpoints').where({ id: cp.id }).first()).heads) as unknown[];
    assert.ok(heads.length >= 2, `the checkpoint covers every stream that moved (${heads.length})`);
    const v = await verify(a);
    assert.equal(v.ok, true, v.reason ?? '');
    assert.equal(v.checked, events.length);
  });
});
