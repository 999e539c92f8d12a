/**
 * Concurrency: racing check-and-set writers, a bulk PATCH racing single PUTs
 * and DELETEs, and readers in between. The env revision orders every change;
 * replaying the successful changes in revision order must reproduce every
 * answer, every read and the final state (a serial order), and no client ever
 * sees the revision go backwards. On PostgreSQL the clients are spread over
 * two server processes sharing the database.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, onBackend, capturedLogs, startOn, startServer, type TestServer } from '../helpers/server.js';
import {
  assertErrorShape,
  assertNoLeaks,
  auditEvents,
  auditVerify,
  call,
  makeEnv,
  observe,
  rememberSecret,
  rng,
  secretValue,
  seedFromEnv,
} from './support.js';

const CLIENTS = 16;
const CAS_ROUNDS = 8;

type State = Map<string, { value: string | null; version: number }>;
type Op =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'delete'; key: string }
  | { kind: 'bulk'; set: Record<string, string>; del: string[] };

/** Applies one change to the model; returns the answer the server must have given. */
function apply(state: State, op: Op): Record<string, unknown> {
  if (op.kind === 'put') {
    const s = state.get(op.key);
    const version = (s?.version ?? 0) + 1;
    state.set(op.key, { value: op.value, version });
    return { key: op.key, version };
  }
  if (op.kind === 'delete') {
    const s = state.get(op.key);
    assert.ok(s && s.value !== null, `model: DELETE ${op.key} succeeded but the key was not live at that revision`);
    state.set(op.key, { value: null, version: s.version + 1 });
    return { key: op.key, version: s.version + 1, deleted: true };
  }
  const added: string[] = [];
  const changed: string[] = [];
  const unchanged: string[] = [];
  for (const [k, v] of Object.entries(op.set)) {
    const s = state.get(k);
    if (!s || s.value === null) added.push(k);
    else if (s.value === v) unchanged.push(k);
    else changed.push(k);
  }
  for (const k of op.del) {
    const s = state.get(k);
    assert.ok(s && s.value !== null, `model: bulk delete of ${k} succeeded but the key was not live at that revision`);
  }
  for (const k of [...added, ...changed]) state.set(k, { value: op.set[k], version: (state.get(k)?.version ?? 0) + 1 });
  for (const k of op.del) state.set(k, { value: null, version: state.get(k)!.version + 1 });
  return { added, changed, unchanged, deleted: op.del };
}

const live = (state: State) =>
  Object.fromEntries(
    [...state]
      .filter(([, s]) => s.value !== null)
      .map(([k, s]) => [k, s.value])
      .sort(([a], [b]) => (a! < b! ? -1 : 1)),
  );
const sorted = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));

const totals = { casRounds: 0, casLosers: 0, writes: 0, reads: 0 };

for (const backend of BACKENDS) {
  describe(`concurrency on ${backend}`, onBackend(backend), () => {
    let s: TestServer & { backend: string };
    let s2: TestServer | null = null;
    /** Base URLs the clients use: one server on SQLite, two sharing the database on PostgreSQL. */
    let urls: string[];
    let token: string;

    before(async () => {
      s = await startOn(backend, { 'rate-limit': '10000000', 'auth-fail-limit': '1000000' });
      token = s.rootToken;
      rememberSecret(token);
      urls = [s.url];
      if (backend === 'postgres') {
        s2 = await startServer({
          settings: {
            'database-url': s.config.databaseUrl,
            'master-key-file': join(s.dataDir, 'master.key'),
            'rate-limit': '10000000',
            'auth-fail-limit': '1000000',
          },
        });
        urls.push(s2.url);
      }
    });
    after(async () => {
      await s2?.close();
      await s.close();
    });

    it(`${CLIENTS} clients racing a cas write: exactly one wins per version, the rest get 409 cas_conflict`, async (t) => {
      await makeEnv(s.url, token, 'race', 'cas');
      const path = '/v1/projects/race/envs/cas/secrets/RACE';
      for (let version = 0; version < CAS_ROUNDS; version++) {
        const values = Array.from({ length: CLIENTS }, (_, i) => secretValue(`-r${version}c${i}`));
        const answers = await Promise.all(
          values.map((value, i) => call(urls[i % urls.length], 'PUT', path, { token, body: { value, cas: version } })),
        );
        const winners = answers.map((r, i) => ({ r, i })).filter(({ r }) => r.status === 200);
        assert.equal(winners.length, 1, `round ${version}: ${winners.length} winners; statuses ${answers.map((r) => r.status).join(',')}`);
        assert.equal(winners[0].r.body.version, version + 1);
        for (const r of answers.filter((x) => x.status !== 200)) {
          assert.equal(r.status, 409, r.text);
          assertErrorShape(r, 'cas loser');
          assert.equal(r.body.error.code, 'cas_conflict');
          assert.equal(r.body.error.details.current, version + 1);
          totals.casLosers++;
        }
        const back = await call(urls[version % urls.length], 'GET', path, { token });
        assert.equal(back.body.value, values[winners[0].i]);
        assert.equal(back.body.version, version + 1);
        totals.casRounds++;
      }
      const h = await call(s.url, 'GET', `${path}/versions`, { token });
      assert.equal(h.body.versions.length, CAS_ROUNDS, 'one version per round, no more');
      t.diagnostic(`${CAS_ROUNDS} rounds x ${CLIENTS} clients: ${CAS_ROUNDS} winners, ` + `${CAS_ROUNDS * (CLIENTS - 1)} cas_conflict`);
    });

    it(
      'bulk PATCHes racing PUTs and DELETEs leave the state of the serial order given by the revisions; ' +
        'no client sees the revision go back',
      async (t) => {
        const seed = seedFromEnv();
        const rand = rng(seed);
        await makeEnv(s.url, token, 'race', 'bulk');
        const base = '/v1/projects/race/envs/bulk';
        const KEYS = ['K0', 'K1', 'K2', 'K3', 'K4', 'K5', 'K6', 'K7'];
        const initial = Object.fromEntries(KEYS.slice(0, 6).map((k) => [k, secretValue(`-init-${k}`)]));
        const r0 = await call(s.url, 'PATCH', `${base}/secrets`, { token, body: { set: initial } });
        assert.equal(r0.status, 200, r0.text);
        const startRevision: number = r0.body.revision;
        const start: State = new Map(Object.entries(initial).map(([k, v]) => [k, { value: v, version: 1 }]));
        // A tiny value pool makes "unchanged" happen in bulk sets.
        const pool = [secretValue('-pool-a'), secretValue('-pool-b')];
        const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)];

        const done: { revision: number; op: Op; answer: any; client: number }[] = [];
        const reads: { revision: number; secrets: Record<string, string>; client: number }[] = [];
        const singleReads: { revision: number; key: string; version: number; value: string; client: number }[] = [];
        const perClient = new Map<number, { revision: number; write: boolean }[]>();
        const seen = (c: number, revision: number, write: boolean) => {
          if (!perClient.has(c)) perClient.set(c, []);
          perClient.get(c)!.push({ revision, write });
        };
        const rejected: string[] = [];
        /** Bulk PATCHes that changed nothing: they make no revision (docs/history.md) and answer the current one. */
        const noops: { revision: number; set: Record<string, string>; client: number }[] = [];
        let writersLeft = 0;

        const putClient = async (c: number) => {
          const url = urls[c % urls.length];
          for (let i = 0; i < 25; i++) {
            const key = pick(KEYS);
            if (rand() < 0.15) {
              const r = await call(url, 'DELETE', `${base}/secrets/${key}`, { token });
              if (r.status === 200) {
                done.push({ revision: r.body.revision, op: { kind: 'delete', key }, answer: r.body, client: c });
                seen(c, r.body.revision, true);
              } else if (r.status !== 404 || r.body.error.code !== 'secret_not_found')
                rejected.push(`DELETE ${key}: ${r.status} ${r.text}`);
              continue;
            }
            const value = rand() < 0.2 ? pick(pool) : secretValue(`-p${c}-${i}`);
            const r = await call(url, 'PUT', `${base}/secrets/${key}`, { token, body: { value } });
            if (r.status !== 200) {
              rejected.push(`PUT ${key}: ${r.status} ${r.text}`);
              continue;
            }
            done.push({ revision: r.body.revision, op: { kind: 'put', key, value }, answer: r.body, client: c });
            seen(c, r.body.revision, true);
          }
        };
        const bulkClient = async (c: number) => {
          const url = urls[c % urls.length];
          for (let i = 0; i < 15; i++) {
            const shuffled = [...KEYS].sort(() => rand() - 0.5);
            const nSet = 1 + Math.floor(rand() * 4);
            const nDel = Math.floor(rand() * 3);
            const set = Object.fromEntries(
              shuffled.slice(0, nSet).map((k) => [k, rand() < 0.3 ? pick(pool) : secretValue(`-b${c}-${i}-${k}`)]),
            );
            const del = shuffled.slice(nSet, nSet + nDel);
            const r = await call(url, 'PATCH', `${base}/secrets`, { token, body: { set, delete: del } });
            const nothing = r.status === 200 && !r.body.added.length && !r.body.changed.length && !r.body.deleted.length;
            if (nothing) {
              noops.push({ revision: r.body.revision, set, client: c });
              seen(c, r.body.revision, false);
            } else if (r.status === 200) {
              done.push({ revision: r.body.revision, op: { kind: 'bulk', set, del }, answer: r.body, client: c });
              seen(c, r.body.revision, true);
            } else if (r.status !== 404 || r.body.error.code !== 'secret_not_found') rejected.push(`PATCH: ${r.status} ${r.text}`);
          }
        };
        const readClient = async (c: number) => {
          const url = urls[c % urls.length];
          while (writersLeft > 0) {
            const r = await call(url, 'GET', `${base}/secrets`, { token });
            assert.equal(r.status, 200, r.text);
            reads.push({ revision: r.body.revision, secrets: r.body.secrets, client: c });
            seen(c, r.body.revision, false);
          }
        };
        const singleReadClient = async (c: number) => {
          const url = urls[c % urls.length];
          while (writersLeft > 0) {
            const key = pick(KEYS);
            const r = await call(url, 'GET', `${base}/secrets/${key}`, { token });
            if (r.status === 200) {
              singleReads.push({ revision: r.body.revision, key, version: r.body.version, value: r.body.value, client: c });
              seen(c, r.body.revision, false);
            } else assert.equal(r.status, 404, r.text);
          }
        };

        const writers = [...[0, 1, 2, 3].map((c) => putClient(c)), ...[4, 5].map((c) => bulkClient(c))];
        writersLeft = writers.length;
        const tracked = writers.map((w) =>
          w.finally(() => {
            writersLeft--;
          }),
        );
        await Promise.all([...tracked, readClient(6), readClient(7), singleReadClient(8), singleReadClient(9)]);
        assert.deepEqual(rejected, [], 'unexpected rejections');

        // Every successful change has its own revision, and together they fill the range with no gap.
        done.sort((a, b) => a.revision - b.revision);
        const revs = done.map((d) => d.revision);
        assert.deepEqual(
          revs,
          Array.from({ length: done.length }, (_, i) => startRevision + 1 + i),
          `revisions of successful changes are unique and contiguous (seed ${seed}: HUSH_TEST_SEED=${seed} replays the clients' choices)`,
        );

        // Replay in revision order: every answer must match the model.
        const state: State = new Map([...start].map(([k, v]) => [k, { ...v }]));
        const snapshots = new Map<number, Record<string, string>>([[startRevision, live(state)]]);
        const versionsAt = new Map<number, State>([[startRevision, new Map([...state].map(([k, v]) => [k, { ...v }]))]]);
        for (const d of done) {
          const want = apply(state, d.op);
          for (const [k, v] of Object.entries(want))
            assert.deepEqual(
              d.answer[k],
              v,
              `rev ${d.revision} ${d.op.kind}: ${k} answered ${JSON.stringify(d.answer[k])}, serial replay ` + `says ${JSON.stringify(v)}`,
            );
          snapshots.set(d.revision, live(state));
          versionsAt.set(d.revision, new Map([...state].map(([k, v]) => [k, { ...v }])));
        }

        // A PATCH that changed nothing found every value it set already in place at the revision it reports.
        for (const n of noops) {
          const want = snapshots.get(n.revision);
          assert.ok(want, `a PATCH that changed nothing reports revision ${n.revision}, which no change produced`);
          for (const [k, v] of Object.entries(n.set)) assert.equal(want[k], v, `no-op PATCH at revision ${n.revision}: ${k}`);
        }

        // Every read is exactly the state at the revision it reports.
        for (const r of reads) {
          const want = snapshots.get(r.revision);
          assert.ok(want, `a read reports revision ${r.revision}, which no change produced`);
          assert.deepEqual(
            sorted(r.secrets),
            want,
            `GET all at revision ${r.revision} (client ${r.client}) is not the state at that revision`,
          );
        }
        for (const r of singleReads) {
          const at = versionsAt.get(r.revision)?.get(r.key);
          assert.ok(at && at.value !== null, `GET ${r.key} answered v${r.version} at revision ${r.revision}, where it was not live`);
          assert.equal(r.version, at.version, `GET ${r.key} at revision ${r.revision}: version`);
          assert.equal(r.value, at.value, `GET ${r.key} at revision ${r.revision}: value`);
        }

        // Per client: writes strictly increase the revision, reads never see it go back.
        for (const [c, seq] of perClient) {
          for (let i = 1; i < seq.length; i++) {
            if (seq[i].write)
              assert.ok(
                seq[i].revision > seq[i - 1].revision,
                `client ${c}: write at revision ${seq[i].revision} after seeing ${seq[i - 1].revision}`,
              );
            else
              assert.ok(
                seq[i].revision >= seq[i - 1].revision,
                `client ${c}: revision went back from ${seq[i - 1].revision} to ${seq[i].revision}`,
              );
          }
        }

        // The final state (values and every key's version) is the replayed one.
        const final = await call(s.url, 'GET', `${base}/secrets`, { token });
        assert.equal(final.body.revision, startRevision + done.length);
        assert.deepEqual(sorted(final.body.secrets), live(state));
        for (const k of KEYS) {
          const h = await call(s.url, 'GET', `${base}/secrets/${k}/versions`, { token });
          const m = state.get(k);
          if (!m) {
            assert.equal(h.status, 404);
            continue;
          }
          assert.equal(h.body.versions.length, m.version, `${k}: number of versions`);
          assert.equal(h.body.current, m.value === null ? null : m.version, `${k}: current version`);
        }
        totals.writes += done.length;
        totals.reads += reads.length + singleReads.length;
        t.diagnostic(
          `${backend} (seed ${seed}): ${done.length} changes ` +
            `(${done.filter((d) => d.op.kind === 'bulk').length} bulk) replayed in revision order, ` +
            `${reads.length} full reads and ${singleReads.length} single reads matched their revision, ` +
            `${noops.length} bulk PATCHes changed nothing and found their values in place`,
        );
      },
    );

    it(
      'two server processes writing several environments at once: no deadlock, no 5xx (regression: ' +
        'group commit deadlocked on PostgreSQL)',
      { skip: backend !== 'postgres' && 'one process on SQLite' },
      async (t) => {
        // Each process commits batches of requests in one transaction. Two
        // batches bumping env revisions in opposite orders deadlocked
        // (PostgreSQL aborts one after deadlock_timeout: a 500 and a 1 s stall).
        for (const e of ['x', 'y', 'z']) await makeEnv(s.url, token, 'multi', e);
        const statuses = new Map<string, number>();
        const t0 = Date.now();
        await Promise.all(
          Array.from({ length: 24 }, async (_, c) => {
            for (let n = 0; n < 40; n++) {
              const env = ['x', 'y', 'z'][(c + n) % 3];
              const r = await call(urls[c % urls.length], 'PUT', `/v1/projects/multi/envs/${env}/secrets/K${n % 4}`, {
                token,
                body: { value: secretValue() },
              });
              const k = r.status === 200 ? '200' : `${r.status} ${r.body?.error?.code}`;
              statuses.set(k, (statuses.get(k) ?? 0) + 1);
            }
          }),
        );
        const ms = Date.now() - t0;
        t.diagnostic(`960 writes over 3 envs from 2 processes in ${ms} ms: ` + `${[...statuses].map(([k, n]) => `${k} x${n}`).join(', ')}`);
        assert.deepEqual([...statuses.keys()], ['200']);
      },
    );

    it('the audit chain verifies after the races', async () => {
      const v = await auditVerify(s.url, token);
      assert.equal(v.ok, true, v.reason ?? '');
      await auditEvents(s.url, token);
    });
  });
}

describe('concurrency: totals', () => {
  it('no secret value or token in any log line, error body or audit event', (t) => {
    for (const l of capturedLogs) observe('server log', l);
    t.diagnostic(
      `cas: ${totals.casRounds} rounds, ${totals.casLosers} losers got 409; ${totals.writes} racing ` +
        `changes, ${totals.reads} reads checked`,
    );
    assertNoLeaks(t, 'concurrency');
  });
});
