/**
 * Crash consistency: a real `hush server` process takes PUTs from 4 writers
 * and reads (whole env, single values, histories) from 2 readers, and is killed with SIGKILL at a random moment, then restarted on the same
 * data dir (and PostgreSQL database). Every acknowledged write must read back
 * with exactly its acknowledged value and version; a version beyond the last
 * acknowledged one may exist only if it is a write that was in flight at the
 * kill; the audit chain must verify; the server must start cleanly.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { BACKENDS, onBackend, freshPgDatabase, tempDir } from '../helpers/server.js';
import {
  NO_LIMITS,
  assertNoLeaks,
  auditEvents,
  auditVerify,
  call,
  makeEnv,
  masterKeyFile,
  rng,
  secretValue,
  seedFromEnv,
  sleep,
  spawnHush,
  type Spawned,
} from './support.js';

/** HUSH_TEST_CRASH_CYCLES: the soak run (scripts/soak.mjs) asks for 50 per engine. */
const CYCLES = Number(process.env.HUSH_TEST_CRASH_CYCLES ?? 5) || 5;
const WRITERS = 4;
const READERS = 2;
const OWN_KEYS = 4;
const BASE = '/v1/projects/crash/envs/prod/secrets';

interface Ack {
  key: string;
  value: string;
  version: number;
  revision: number;
  cycle: number;
  writer: number;
}

/** Runs `fn` over `items` with at most `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

/** The server's output after a restart holds nothing but the listening line, and no warning or error log line. */
function assertCleanStart(s: Spawned, label: string): void {
  const extra = s
    .stderr()
    .split('\n')
    .filter((l) => l.trim() && !/^hush server listening on /.test(l));
  assert.deepEqual(extra, [], `${label}: unexpected stderr at start`);
  const bad = s
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((o) => o.level >= 40);
  assert.deepEqual(bad, [], `${label}: warnings or errors logged at start`);
}

const totals = { cycles: 0, acked: 0, losses: 0, inflightCommitted: 0, inflightLost: 0, verifiedReads: 0, loadReads: 0 };

for (const backend of BACKENDS) {
  describe(`crash consistency on ${backend}`, onBackend(backend), () => {
    const cleanups: (() => Promise<void>)[] = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
    });

    it(`${CYCLES} kill -9 cycles under 4 concurrent writers and 2 readers lose no acknowledged write`, async (t) => {
      const seed = seedFromEnv();
      const rand = rng(seed);
      const dataDir = tempDir('hush-crash-');
      const pg = backend === 'postgres' ? await freshPgDatabase() : null;
      if (pg) cleanups.push(pg.drop);
      const args = [
        '--data-dir',
        dataDir,
        '--listen',
        '127.0.0.1:0',
        '--master-key-file',
        masterKeyFile(),
        '--log-level',
        'info',
        ...NO_LIMITS,
        ...(pg ? ['--database-url', pg.url] : []),
      ];
      let srv = await spawnHush(args, {}, { label: `crash ${backend} start` });
      cleanups.push(() => srv.kill9());
      const token = srv.rootToken!;
      assert.ok(token, 'the first start prints the root token');
      await makeEnv(srv.url, token, 'crash', 'prod');

      const acks: Ack[] = [];
      /** Per key, the latest version known to be durable (acknowledged, or found committed after a crash). */
      const durable = new Map<string, { version: number; value: string }>();
      const stats = {
        acked: 0,
        losses: 0,
        inflightCommitted: 0,
        inflightLost: 0,
        verifiedReads: 0,
        loadReads: 0,
        unexpected: [] as string[],
      };

      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const url = srv.url;
        const killAt = 300 + Math.floor(rand() * 1200);
        let stop = false;
        /** Writes sent whose answer never came: each may or may not have committed. */
        const unknown = new Map<string, Set<string>>();
        const cycleAcks: Ack[] = [];
        const writer = async (w: number) => {
          for (let n = 0; !stop; n++) {
            const key = rand() < 0.2 ? 'SHARED' : `W${w}_K${Math.floor(rand() * OWN_KEYS)}`;
            const value = secretValue(`-c${cycle}w${w}n${n}`);
            let r;
            try {
              r = await call(url, 'PUT', `${BASE}/${key}`, { token, body: { value }, timeoutMs: 15_000 });
            } catch {
              // The server died under this request: its outcome is unknown.
              if (!unknown.has(key)) unknown.set(key, new Set());
              unknown.get(key)!.add(value);
              return;
            }
            if (r.status === 200) {
              const a = { key, value, version: r.body.version, revision: r.body.revision, cycle, writer: w };
              cycleAcks.push(a);
              acks.push(a);
            } else if (srv.alive() && !stop) {
              stats.unexpected.push(`cycle ${cycle} writer ${w}: PUT ${key} -> ${r.status} ${r.text.slice(0, 200)}`);
            }
          }
        };
        // Mixed load: reads of the whole env, of one value and of a history run beside the writes; each
        // answers 200 (404 for a key not written yet) until the kill, never a 5xx.
        const reader = async (rd: number) => {
          for (let n = 0; !stop; n++) {
            const key = rand() < 0.3 ? 'SHARED' : `W${Math.floor(rand() * WRITERS)}_K${Math.floor(rand() * OWN_KEYS)}`;
            const path = n % 3 === 0 ? BASE : n % 3 === 1 ? `${BASE}/${key}` : `${BASE}/${key}/versions`;
            let r;
            try {
              r = await call(url, 'GET', path, { token, timeoutMs: 15_000 });
            } catch {
              return;
            }
            stats.loadReads++;
            if (r.status !== 200 && !(r.status === 404 && path !== BASE) && srv.alive() && !stop) {
              stats.unexpected.push(`cycle ${cycle} reader ${rd}: GET ${path} -> ${r.status} ${r.text.slice(0, 200)}`);
            }
          }
        };
        const running = [
          ...Array.from({ length: WRITERS }, (_, w) => writer(w)),
          ...Array.from({ length: READERS }, (_, rd) => reader(rd)),
        ];
        // The random moment is counted from the first acknowledged write, so a
        // slow machine cannot turn a cycle into a crash before any write.
        const t0 = Date.now();
        while (cycleAcks.length === 0 && Date.now() - t0 < 10_000) await sleep(5);
        await sleep(killAt);
        await srv.kill9();
        stop = true;
        await Promise.all(running);

        srv = await spawnHush(args, {}, { label: `crash ${backend} cycle ${cycle}` });
        assertCleanStart(srv, `cycle ${cycle}`);
        assert.equal((await call(srv.url, 'GET', '/v1/sys/health')).body.status, 'ok');

        // No two acknowledgements share a (key, version).
        const seen = new Set<string>();
        for (const a of cycleAcks) {
          const id = `${a.key}@${a.version}`;
          assert.ok(!seen.has(id), `two writes were acknowledged as ${id}`);
          seen.add(id);
        }
        // Revisions of acknowledged writes are unique and increase along each writer's own sequence.
        const revs = cycleAcks.map((a) => a.revision);
        assert.equal(new Set(revs).size, revs.length, 'two acknowledged writes share an env revision');

        // Every acknowledged write of this cycle reads back exactly, at its version.
        await pool(cycleAcks, 8, async (a) => {
          const r = await call(srv.url, 'GET', `${BASE}/${a.key}?version=${a.version}`, { token });
          stats.verifiedReads++;
          if (r.status !== 200 || r.body.value !== a.value || r.body.version !== a.version) {
            stats.losses++;
            assert.fail(`LOST: ${a.key} v${a.version} (cycle ${cycle}, writer ${a.writer}) reads back ${r.status} ` + `${r.body?.version}`);
          }
        });

        // Per key: history is contiguous, nothing acknowledged is missing, and
        // anything beyond the last acknowledged version is a write that was in flight.
        const keys = new Set([...durable.keys(), ...cycleAcks.map((a) => a.key), ...unknown.keys()]);
        for (const a of cycleAcks) {
          const d = durable.get(a.key);
          if (!d || a.version > d.version) durable.set(a.key, { version: a.version, value: a.value });
        }
        await pool([...keys], 8, async (key) => {
          const h = await call(srv.url, 'GET', `${BASE}/${key}/versions`, { token });
          const d = durable.get(key);
          if (h.status === 404) {
            assert.ok(!d, `LOST: ${key} has acknowledged versions but is gone`);
            stats.inflightLost += unknown.get(key)?.size ?? 0;
            return;
          }
          assert.equal(h.status, 200, h.text);
          const versions: number[] = h.body.versions.map((v: { version: number }) => v.version);
          assert.deepEqual(
            versions,
            Array.from({ length: versions.length }, (_, i) => versions.length - i),
            `${key}: history is not 1..N`,
          );
          const current: number = h.body.current;
          const floor = d?.version ?? 0;
          if (current < floor) {
            stats.losses++;
            assert.fail(`LOST: ${key} is at v${current}, but v${floor} was acknowledged`);
          }
          const pending = unknown.get(key) ?? new Set<string>();
          assert.ok(
            current - floor <= pending.size,
            `${key}: ${current - floor} versions beyond the last acknowledged one, but only ${pending.size} ` + `writes were in flight`,
          );
          for (let v = floor + 1; v <= current; v++) {
            const r = await call(srv.url, 'GET', `${BASE}/${key}?version=${v}`, { token });
            assert.equal(r.status, 200);
            assert.ok(pending.has(r.body.value), `${key} v${v} holds a value that was never written`);
            pending.delete(r.body.value);
            stats.inflightCommitted++;
            durable.set(key, { version: v, value: r.body.value });
          }
          stats.inflightLost += pending.size;
          // The current value is the latest durable one.
          const cur = await call(srv.url, 'GET', `${BASE}/${key}`, { token });
          assert.equal(cur.body.value, durable.get(key)!.value, `${key}: the current value is not the latest durable write`);
          stats.verifiedReads += 2;
        });

        const v = await auditVerify(srv.url, token);
        assert.equal(v.ok, true, `cycle ${cycle}: audit chain: ${v.reason}`);
        stats.acked += cycleAcks.length;
        t.diagnostic(
          `${backend} cycle ${cycle}: killed at ${killAt} ms, ${cycleAcks.length} acknowledged writes, ` +
            `${[...unknown.values()].reduce((n, s) => n + s.size, 0)} in flight, audit chain of ${v.checked} ` +
            `events verified`,
        );
        assert.ok(cycleAcks.length > 0, `cycle ${cycle}: no write was acknowledged before the kill`);
        totals.cycles++;
      }

      assert.deepEqual(stats.unexpected, []);
      // After the last restart: every acknowledged write of every cycle, once more, and its audit event.
      await pool(acks, 8, async (a) => {
        const r = await call(srv.url, 'GET', `${BASE}/${a.key}?version=${a.version}`, { token });
        stats.verifiedReads++;
        if (r.body?.value !== a.value) {
          stats.losses++;
          assert.fail(`LOST after ${CYCLES} restarts: ${a.key} v${a.version}`);
        }
      });
      const events = await auditEvents(srv.url, token);
      const written = new Set(
        events.filter((e) => e.action === 'secret.write' && e.outcome === 'ok').map((e) => `${e.target.key}@${e.target.version}`),
      );
      const unaudited = acks.filter((a) => !written.has(`${a.key}@${a.version}`));
      assert.deepEqual(
        unaudited.map((a) => `${a.key}@${a.version}`),
        [],
        'acknowledged writes without their audit event',
      );
      assert.equal(await srv.stop(), 0, 'SIGTERM after the last cycle exits 0');

      totals.acked += stats.acked;
      totals.losses += stats.losses;
      totals.inflightCommitted += stats.inflightCommitted;
      totals.inflightLost += stats.inflightLost;
      totals.verifiedReads += stats.verifiedReads;
      totals.loadReads += stats.loadReads;
      t.diagnostic(
        `${backend} (seed ${seed}): ${CYCLES} crash cycles, ${stats.acked} acknowledged writes, ` +
          `${stats.losses} lost; in flight at the kills: ${stats.inflightCommitted} committed, ` +
          `${stats.inflightLost} not; ${stats.verifiedReads} verifying reads, ${stats.loadReads} reads under load`,
      );
      console.log(
        `# RELIABILITY crash ${backend}: cycles=${CYCLES} acked=${stats.acked} losses=${stats.losses} ` +
          `reads=${stats.loadReads} seed=${seed}`,
      );
      assert.equal(stats.losses, 0);
    });
  });
}

describe('crash consistency: totals', () => {
  it('no secret value or token in any server log line, error body or audit event', (t) => {
    t.diagnostic(`${totals.cycles} crash cycles, ${totals.acked} acknowledged writes, ${totals.losses} losses`);
    assertNoLeaks(t, 'crash');
  });
});
