import assert from 'node:assert/strict';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Knex } from 'knex';
import { openDb } from '../../vault/store/db.js';
import { freshPgDatabase, startServer, tempDir, type TestServer, NEEDS_PG } from '../helpers/server.js';
import { spawnServer } from '../helpers/cli.js';
import { allEvents, apiFor, assertContiguous, makeEnv, maxSeq, openSqlite, verify } from './util.js';

const WRITERS = 8;
const PER_WRITER = 500;
const KEYS_PER_WRITER = 20;
const base = '/v1/projects/api/envs/prod';

/** WRITERS parallel loops of PER_WRITER PUTs each into one environment; writer w uses apis[w % apis.length]. */
async function hammer(apis: TestServer['api'][], label: string[]): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      const api = apis[w % apis.length];
      for (let i = 0; i < PER_WRITER; i++) {
        const r = await api('PUT', `${base}/secrets/W${w}_K${i % KEYS_PER_WRITER}`, { value: `w${w}-i${i}` }, undefined, {
          'x-request-id': `${label[w % apis.length]}-w${w}-${i}`,
        });
        if (r.status !== 200) throw new Error(`writer ${w} request ${i}: ${r.status} ${JSON.stringify(r.body)}`);
      }
    }),
  );
  return performance.now() - t0;
}

/** The chain verifies, seqs run 1..N with no gap or duplicate, and no two events share a prev_hash (no fork). */
async function assertChainIntact(t: TestContext, s: Pick<TestServer, 'api'>, db: Knex) {
  const v = await verify(s);
  assert.equal(v.ok, true, v.reason ?? '');
  const events = await allEvents(s);
  assertContiguous(events);
  assert.equal(v.checked, events.length);
  assert.equal(v.headSeq, maxSeq(events));
  const rows: { stream: number; prev_hash: Buffer }[] = await db('audit_events').select('stream', 'prev_hash');
  const links = new Set(rows.map((r) => `${r.stream}:${Buffer.from(r.prev_hash).toString('hex')}`));
  assert.equal(links.size, rows.length, 'every event links to a different predecessor in its stream');
  const writes = events.filter((e) => e.action === 'secret.write');
  assert.equal(writes.length, WRITERS * PER_WRITER);
  assert.equal(new Set(writes.map((e) => e.requestId)).size, WRITERS * PER_WRITER, 'one event per request');
  assert.equal(new Set(writes.map((e) => e.detail.clientRequestId)).size, WRITERS * PER_WRITER, "each carries its client's own id");
  t.diagnostic(`${events.length} events, chain verified`);
  return events;
}

/** Every key holds the last value its writer wrote, at the right version. */
async function assertValues(s: Pick<TestServer, 'api'>) {
  const all = await s.api('GET', `${base}/secrets`);
  assert.equal(Object.keys(all.body.secrets).length, WRITERS * KEYS_PER_WRITER);
  for (let w = 0; w < WRITERS; w++) {
    for (let k = 0; k < KEYS_PER_WRITER; k++) {
      assert.equal(all.body.secrets[`W${w}_K${k}`], `w${w}-i${PER_WRITER - KEYS_PER_WRITER + k}`);
    }
  }
  const one = await s.api('GET', `${base}/secrets/W3_K7`);
  assert.equal(one.body.version, PER_WRITER / KEYS_PER_WRITER);
}

const SETTINGS = { 'rate-limit': '10000000', 'log-level': 'warn' };

/**
 * A server on a fresh PostgreSQL database with synchronous_commit off: that
 * changes when a commit is durable on disk, not how the head lock
 * serialises appends (it is held until commit either way), and it keeps
 * the test from measuring this machine's fsync.
 */
async function startFastPg(): Promise<TestServer> {
  const pg = (await freshPgDatabase())!;
  const admin = openDb({ url: pg.url });
  await admin.raw('alter database ?? set synchronous_commit = off', [new URL(pg.url).pathname.slice(1)]);
  await admin.destroy();
  const s = await startServer({ settings: { 'database-url': pg.url, ...SETTINGS } });
  return {
    ...s,
    async close(o) {
      await s.close(o);
      await pg.drop();
    },
  };
}

// On PostgreSQL the same load runs split across two server processes
// (below), which covers one process's parallel writers as well.
for (const backend of ['sqlite'] as const) {
  describe(`audit chain under ${WRITERS} parallel writers x ${PER_WRITER} requests on ${backend}`, () => {
    let s: TestServer;
    let db: Knex;
    before(async () => {
      s = await startServer({ settings: SETTINGS });
      db = openSqlite(s.dataDir);
      await makeEnv(s, 'api', 'prod');
    });
    after(async () => {
      await db?.destroy();
      await s?.close();
    });

    it('the chain verifies and seqs are contiguous', async (t) => {
      const ms = await hammer([s.api], ['one']);
      t.diagnostic(
        `${backend}: ${WRITERS * PER_WRITER} audited writes in ${Math.round(ms)} ms = ${Math.round((WRITERS * PER_WRITER) / (ms / 1000))} events/s`,
      );
      await assertChainIntact(t, s, db);
      await assertValues(s);
    });
  });
}

describe(
  `audit chain under ${WRITERS} parallel writers x ${PER_WRITER} requests split across two server processes on one PostgreSQL database`,
  NEEDS_PG,
  () => {
    let a: TestServer;
    let b: Awaited<ReturnType<typeof spawnServer>> | null = null;
    let db: Knex;
    before(async () => {
      a = await startFastPg();
      db = openDb({ url: a.config.databaseUrl! });
      await makeEnv(a, 'api', 'prod');
      b = await spawnServer([
        '--database-url',
        a.config.databaseUrl!,
        '--master-key-file',
        join(a.dataDir, 'master.key'),
        '--data-dir',
        join(tempDir(), 'b'),
        '--listen',
        '127.0.0.1:0',
        '--rate-limit',
        '10000000',
        '--log-level',
        'warn',
      ]);
    });
    after(async () => {
      await b?.stop();
      await db?.destroy();
      await a?.close();
    });

    it('both processes append at once: no fork, no gap, and their events interleave', async (t) => {
      const apiB = apiFor(b!.url, a.rootToken);
      const ms = await hammer([a.api, apiB], ['A', 'B']);
      t.diagnostic(
        `postgres, 2 processes: ${WRITERS * PER_WRITER} audited writes in ${Math.round(ms)} ms = ${Math.round((WRITERS * PER_WRITER) / (ms / 1000))} events/s`,
      );
      const events = await assertChainIntact(t, a, db);
      const starts = events.filter((e) => e.action === 'server.start').map((e) => e.detail.pid);
      assert.deepEqual(new Set(starts), new Set([process.pid, b!.child.pid]), 'each process recorded its own start');
      const origin = events.filter((e) => e.action === 'secret.write').map((e) => String(e.detail.clientRequestId).slice(0, 1));
      assert.equal(origin.filter((o) => o === 'A').length, (WRITERS / 2) * PER_WRITER);
      assert.equal(origin.filter((o) => o === 'B').length, (WRITERS / 2) * PER_WRITER);
      const switches = origin.filter((o, i) => i > 0 && o !== origin[i - 1]).length;
      t.diagnostic(`the chain switches between the two processes ${switches} times`);
      assert.ok(switches > 50, `appends from the two processes interleave (${switches} switches)`);
      await assertValues(a);
    });
  },
);
