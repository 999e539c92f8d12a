/**
 * Two `hush server` nodes on one PostgreSQL database, sharing one master key,
 * behind a real HAProxy that health-checks them with GET /v1/sys/health (the
 * configuration docs/scaling.md shows). Faults, under load:
 * - kill -9 of one node: no acknowledged write is lost, the audit chain
 *   verifies, the other node keeps serving, HAProxy takes the dead one out;
 * - one node loses its path to PostgreSQL while the other keeps it: it
 *   answers 503 storage_unavailable, HAProxy takes it out and routes
 *   everything to the other, and takes it back once the path is back;
 * - a PostgreSQL server of the test's own is restarted under load from both
 *   nodes: both recover without a restart of their own;
 * - that server is stopped: both nodes answer 503 storage_unavailable, their
 *   health checks fail, HAProxy marks them down; started again, they are back;
 * - it is frozen (SIGSTOP): the health check still answers, 503, within its
 *   bound, instead of hanging on the database.
 * Times are printed as diagnostics, never asserted: waits are bounded only so
 * that a node that never recovers fails the test instead of hanging it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HAPROXY_SKIP, haproxyConfig, startHaproxy, type Haproxy } from '../helpers/haproxy.js';
import { closedPort } from '../helpers/http.js';
import { NEEDS_PG, freshPgDatabase, tempDir } from '../helpers/server.js';
import {
  BASE,
  NO_LIMITS,
  PRIVATE_PG_SKIP,
  assertErrorShape,
  assertNoLeaks,
  auditVerify,
  call,
  codesOf,
  load,
  makeEnv,
  masterKeyFile,
  privatePgCluster,
  secretValue,
  sleep,
  spawnHush,
  until,
  verifyAcks,
  type PrivatePg,
  type Spawned,
} from './support.js';

const CLUSTER_SKIP: string | false = NEEDS_PG.skip || HAPROXY_SKIP;
const summary: string[] = [];
const hostOf = (url: string) => new URL(url).host;

interface Cluster {
  node1: Spawned;
  node2: Spawned;
  token: string;
  lb: Haproxy;
  url: string;
  /** HAProxy, then every node still running (SIGTERM: their output goes to the leak scan as they exit). */
  stop(): Promise<void>;
}

/** Two nodes on `dbUrl` with one master key (node1 initialises the database), the env fault/prod, and HAProxy in front, both UP. */
async function startCluster(dbUrl: string, label: string, cleanups: (() => unknown)[], node1DbUrl = dbUrl): Promise<Cluster> {
  const key = masterKeyFile();
  const args = (url: string) => [
    '--data-dir',
    tempDir(),
    '--listen',
    '127.0.0.1:0',
    '--master-key-file',
    key,
    '--database-url',
    url,
    '--trust-proxy',
    '127.0.0.1/32',
    ...NO_LIMITS,
  ];
  const node1 = await spawnHush(args(node1DbUrl), {}, { label: `${label} node1` });
  cleanups.push(() => node1.kill9());
  const node2 = await spawnHush(args(dbUrl), {}, { label: `${label} node2` });
  cleanups.push(() => node2.kill9());
  const token = node1.rootToken!;
  await makeEnv(node1.url, token, 'fault', 'prod');
  const lb = await startHaproxy(tempDir('hush-lb-'), [
    {
      name: 'hush',
      bind: `127.0.0.1:${await closedPort()}`,
      servers: [
        { name: 'node1', address: hostOf(node1.url) },
        { name: 'node2', address: hostOf(node2.url) },
      ],
    },
  ]);
  cleanups.push(() => lb.stop());
  await lb.waitStatus('hush_nodes/node1', /^UP$/);
  await lb.waitStatus('hush_nodes/node2', /^UP$/);
  return {
    node1,
    node2,
    token,
    lb,
    url: lb.url.hush,
    async stop() {
      await lb.stop();
      for (const n of [node1, node2]) if (n.alive()) assert.equal(await n.stop(), 0);
    },
  };
}

/** GET /v1/sys/health answers 503 with the error code storage_unavailable. */
async function assertHealthUnavailable(url: string, what: string): Promise<void> {
  const h = await call(url, 'GET', '/v1/sys/health', { timeoutMs: 30_000 });
  assert.equal(h.status, 503, `${what}: health ${h.status} ${h.text}`);
  assert.equal(h.body.status, 'unavailable', what);
  assert.equal(h.body.error.code, 'storage_unavailable', what);
}

/** A request of each kind on a node that cannot reach its database: 503 storage_unavailable, in the JSON error shape. */
async function assertStorageUnavailable(url: string, token: string, what: string): Promise<void> {
  for (const [method, path, body] of [
    ['GET', BASE, undefined],
    ['GET', `${BASE}/BEFORE`, undefined],
    ['PUT', `${BASE}/DURING`, { value: secretValue() }],
    ['GET', '/v1/projects', undefined],
  ] as const) {
    const r = await call(url, method, path, { token, body, timeoutMs: 30_000 });
    assert.equal(r.status, 503, `${what}: ${method} ${path}: ${r.status} ${r.text}`);
    assertErrorShape(r, `${what}: ${method} ${path}`);
    assert.equal(r.body.error.code, 'storage_unavailable', `${what}: ${method} ${path}`);
  }
}

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      /* best effort */
    }
  }
});

describe('cluster: 2 nodes behind HAProxy on one PostgreSQL', { skip: CLUSTER_SKIP }, () => {
  it(
    'kill -9 of one node under a write load: no acknowledged write is lost, the chain verifies, the ' +
      'other node serves, HAProxy takes the dead one out',
    async (t) => {
      const db = (await freshPgDatabase())!;
      cleanups.push(db.drop);
      const c = await startCluster(db.url, 'cluster kill', cleanups);
      const l = load(() => c, c.token, { clients: 4, writesOnly: true, behindProxy: true });
      assert.ok(await until(async () => l.acks.length >= 100, 30_000, 20), 'no 100 acknowledged writes through HAProxy');
      const before = l.snapshot();

      const killedAt = Date.now();
      await c.node2.kill9();
      await c.lb.waitStatus('hush_nodes/node2', /^DOWN/);
      const downMs = Date.now() - killedAt;
      const okAtDown = l.counts.ok;
      assert.ok(
        await until(async () => l.counts.ok >= okAtDown + 100, 30_000, 20),
        'the surviving node did not take 100 more writes through HAProxy',
      );
      await l.stop();
      const failoverErrors = l.counts.gateway + l.counts.unavailable - before.gateway - before.unavailable;
      const lastErrorMs = l.lastErrorAt() > killedAt ? l.lastErrorAt() - killedAt : null;

      assert.deepEqual(l.failures.slice(0, 10), [], 'an answer that was neither 200, nor a clear 503, nor HAProxy reporting the dead node');
      assert.equal(c.node1.alive(), true, 'the surviving node stayed up');
      const { retried503 } = await verifyAcks(c.url, c.token, l.acks);
      const verify = await auditVerify(c.url, c.token);
      assert.equal(verify.ok, true, `audit verify: ${JSON.stringify(verify)}`);
      const stats = await c.lb.stats();
      assert.equal(stats.get('hush_nodes/node1')?.status, 'UP');
      assert.match(stats.get('hush_nodes/node2')?.status ?? '', /^DOWN/);
      assert.equal((await call(c.node1.url, 'GET', '/v1/sys/health')).status, 200);

      await c.stop();
      const d =
        `kill -9 of node2 under 4 writers through HAProxy: ${l.acks.length} acknowledged writes, all ` +
        `read back; ` +
        (`${failoverErrors} requests failed during failover (${codesOf(l.snapshot())}), the last ` +
          `${lastErrorMs ?? '-'} ms after the kill; `) +
        (`HAProxy marked node2 ${stats.get('hush_nodes/node2')?.status} ` +
          `(${stats.get('hush_nodes/node2')?.checkStatus}) ${downMs} ms after the kill; `) +
        (`${l.counts.ok - okAtDown} writes after that, all on node1; audit verify ok (${verify.checked} ` +
          `events)${retried503 ? `; ${retried503} read-backs retried after a 503` : ''}`);
      t.diagnostic(d);
      summary.push(d);
    },
  );

  it(
    'a node that loses its path to PostgreSQL answers 503 storage_unavailable, HAProxy routes ' +
      'everything to the other node, and takes it back when the path is back',
    async (t) => {
      const db = (await freshPgDatabase())!;
      cleanups.push(db.drop);
      // node1 reaches PostgreSQL through a TCP relay of the test's own, which can be cut.
      const pgAddr = new URL(db.url);
      const relay = await tcpRelay(pgAddr.hostname, Number(pgAddr.port || 5432));
      cleanups.push(() => relay.cut());
      const viaRelay = new URL(db.url);
      viaRelay.host = `127.0.0.1:${relay.port}`;
      const c = await startCluster(db.url, 'cluster partition', cleanups, viaRelay.toString());
      const l = load(() => c, c.token, { clients: 4, behindProxy: true });
      assert.ok(await until(async () => l.counts.ok >= 100, 30_000, 20), 'no load through HAProxy');

      await relay.cut();
      const cutAt = Date.now();
      await assertHealthUnavailable(c.node1.url, 'node1 without its database');
      await assertStorageUnavailable(c.node1.url, c.token, 'node1 without its database');
      await c.lb.waitStatus('hush_nodes/node1', /^DOWN/);
      const downAt = Date.now();
      const downMs = downAt - cutAt;
      const atDown = l.snapshot();
      await sleep(1000);
      const whileDown = l.snapshot();
      // Requests sent once HAProxy had node1 down all go to node2 (one sent just before may still have met node1).
      assert.equal(l.errorsSentSince(downAt), 0, 'errors through HAProxy for requests sent after node1 was taken out');
      assert.ok(whileDown.ok > atDown.ok, 'node2 served nothing while node1 was out');

      await relay.restore();
      const restoredAt = Date.now();
      await c.lb.waitStatus('hush_nodes/node1', /^UP$/);
      const upMs = Date.now() - restoredAt;
      assert.equal((await call(c.node1.url, 'GET', '/v1/sys/health')).status, 200);
      await sleep(500);
      await l.stop();

      assert.deepEqual(l.failures.slice(0, 10), []);
      const windowErrors = l.counts.unavailable + l.counts.gateway - l.errorsSentSince(downAt);
      await verifyAcks(c.url, c.token, l.acks);
      assert.equal((await auditVerify(c.url, c.token)).ok, true);
      await c.stop();
      const d =
        `node1 cut from PostgreSQL under load through HAProxy: ${windowErrors} requests answered 503 ` +
        `before HAProxy took it out (${codesOf(atDown)}), ` +
        (`taken out ${downMs} ms after the cut; then 0 errors for requests sent in the next 1 s, all ` +
          `served by node2 (${whileDown.ok - atDown.ok} ok); `) +
        (`back in ${upMs} ms after the path came back; ${l.acks.length} acknowledged writes intact; ` + `audit verify ok`);
      t.diagnostic(d);
      summary.push(d);
    },
  );
});

describe("cluster on a PostgreSQL server of the test's own", { skip: CLUSTER_SKIP || PRIVATE_PG_SKIP }, () => {
  let pg: PrivatePg;
  before(async () => {
    pg = await privatePgCluster();
    cleanups.push(() => pg.destroy());
  });

  it(
    'pg_ctl restart -m fast under load from both nodes: both recover without a restart of their own; ' +
      'nothing acknowledged is lost; the chain verifies',
    async (t) => {
      const db = (await freshPgDatabase(undefined, pg.url))!;
      const c = await startCluster(db.url, 'cluster pg restart', cleanups);
      const pids = [c.node1.child.pid, c.node2.child.pid];
      const l1 = load(() => c.node1, c.token, { clients: 3 });
      const l2 = load(() => c.node2, c.token, { clients: 3 });
      assert.ok(await until(async () => l1.acks.length >= 30 && l2.acks.length >= 30, 30_000, 20), 'no load on both nodes');

      const restartAt = Date.now();
      await pg.restart();
      const restartedAt = Date.now();
      const recovered: (number | null)[] = [null, null];
      assert.ok(
        await until(
          async () => {
            for (const [i, l] of [l1, l2].entries())
              if (recovered[i] === null && l.lastOkAt() > restartedAt) recovered[i] = l.lastOkAt() - restartedAt;
            return recovered.every((r) => r !== null);
          },
          30_000,
          20,
        ),
        `both nodes did not recover within 30 s of the restart (${JSON.stringify(recovered)})`,
      );
      await sleep(500);
      const afterRecovery = [l1.snapshot(), l2.snapshot()];
      await sleep(1000);
      await l1.stop();
      await l2.stop();

      for (const l of [l1, l2]) assert.deepEqual(l.failures.slice(0, 10), [], 'an answer that was neither 200 nor a clear 503, or a hang');
      assert.deepEqual([c.node1.child.pid, c.node2.child.pid], pids);
      assert.ok(c.node1.alive() && c.node2.alive(), 'a node exited');
      for (const [i, l] of [l1, l2].entries()) {
        assert.ok(l.counts.ok > afterRecovery[i].ok, `node${i + 1} served nothing after the recovery`);
        assert.equal(l.counts.unavailable, afterRecovery[i].unavailable, `node${i + 1}: 503s after the recovery`);
      }
      await verifyAcks(c.node2.url, c.token, [...l1.acks, ...l2.acks]);
      assert.equal((await auditVerify(c.node1.url, c.token)).ok, true);
      await c.lb.waitStatus('hush_nodes/node1', /^UP$/);
      await c.lb.waitStatus('hush_nodes/node2', /^UP$/);
      await c.stop();
      const d =
        `pg_ctl restart -m fast (took ${restartedAt - restartAt} ms) under 3 clients on each node: ` +
        (`node1 ${codesOf(l1.snapshot())}, node2 ${codesOf(l2.snapshot())}; first success ` +
          `${recovered[0]} ms / ${recovered[1]} ms after pg_ctl returned; `) +
        (`no restart of either node; ${l1.acks.length + l2.acks.length} acknowledged writes intact; ` + `audit verify ok`);
      t.diagnostic(d);
      summary.push(d);
    },
  );

  it(
    'PostgreSQL stopped: both nodes answer 503 storage_unavailable and fail their health checks, ' +
      'HAProxy marks them down; started again, they are back',
    async (t) => {
      const db = (await freshPgDatabase(undefined, pg.url))!;
      const c = await startCluster(db.url, 'cluster pg stop', cleanups);
      const before = secretValue();
      assert.equal((await call(c.url, 'PUT', `${BASE}/BEFORE`, { token: c.token, body: { value: before } })).status, 200);

      await pg.stop();
      const stoppedAt = Date.now();
      for (const [name, node] of [
        ['node1', c.node1],
        ['node2', c.node2],
      ] as const) {
        await assertHealthUnavailable(node.url, name);
        await assertStorageUnavailable(node.url, c.token, name);
      }
      await c.lb.waitStatus('hush_nodes/node1', /^DOWN/);
      await c.lb.waitStatus('hush_nodes/node2', /^DOWN/);
      const downMs = Date.now() - stoppedAt;
      const stats = await c.lb.stats();
      // No node up: HAProxy answers by itself.
      const viaLb = await call(c.url, 'GET', BASE, { token: c.token });
      assert.equal(viaLb.status, 503);

      await pg.start();
      const startedAt = Date.now();
      let healthyMs = 0;
      assert.ok(
        await until(
          async () => {
            const ok = (await Promise.all([c.node1, c.node2].map((n) => call(n.url, 'GET', '/v1/sys/health')))).every(
              (h) => h.status === 200,
            );
            if (ok) healthyMs = Date.now() - startedAt;
            return ok;
          },
          30_000,
          50,
        ),
        'the nodes did not report healthy within 30 s of the start',
      );
      await c.lb.waitStatus('hush_nodes/node1', /^UP$/);
      await c.lb.waitStatus('hush_nodes/node2', /^UP$/);
      const upMs = Date.now() - startedAt;
      const r = await call(c.url, 'GET', `${BASE}/BEFORE`, { token: c.token });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.value, before);
      assert.equal((await call(c.url, 'PUT', `${BASE}/AFTER`, { token: c.token, body: { value: secretValue() } })).status, 200);
      assert.equal((await auditVerify(c.url, c.token)).ok, true);
      assert.ok(c.node1.alive() && c.node2.alive());
      await c.stop();
      const d =
        `PostgreSQL stopped: both nodes answered 503 storage_unavailable (health and requests); HAProxy ` +
        `marked both down ` +
        (`(${stats.get('hush_nodes/node1')?.checkStatus} ${stats.get('hush_nodes/node1')?.checkCode}) ` +
          `${downMs} ms after the stop and answered 503 itself; `) +
        (`started again: healthy ${healthyMs} ms and UP in HAProxy ${upMs} ms after pg_ctl start ` + `returned, no restart of either node`);
      t.diagnostic(d);
      summary.push(d);
    },
  );

  it(
    'PostgreSQL frozen (SIGSTOP, as a hung host or a network that drops packets): the health check ' +
      'answers 503 storage_unavailable instead of hanging, HAProxy marks both nodes down; thawed, they ' +
      'are back',
    async (t) => {
      const db = (await freshPgDatabase(undefined, pg.url))!;
      const c = await startCluster(db.url, 'cluster pg frozen', cleanups);
      // Warm the pools: the probe then finds an open connection, and its query is what hangs.
      for (let i = 0; i < 5; i++) await Promise.all([c.node1, c.node2].map((n) => call(n.url, 'GET', BASE, { token: c.token })));
      const pids = pg.pids();
      const signal = (sig: NodeJS.Signals) => {
        for (const pid of pids) {
          try {
            process.kill(pid, sig);
          } catch {
            /* exited */
          }
        }
      };
      cleanups.push(() => signal('SIGCONT'));
      signal('SIGSTOP');
      let healthMs: number[];
      let downMs: number;
      try {
        const frozenAt = Date.now();
        healthMs = await Promise.all(
          [c.node1, c.node2].map(async (n, i) => {
            const t0 = Date.now();
            await assertHealthUnavailable(n.url, `node${i + 1} on a frozen database`);
            return Date.now() - t0;
          }),
        );
        await c.lb.waitStatus('hush_nodes/node1', /^DOWN/);
        await c.lb.waitStatus('hush_nodes/node2', /^DOWN/);
        downMs = Date.now() - frozenAt;
      } finally {
        signal('SIGCONT');
      }
      const thawedAt = Date.now();
      await c.lb.waitStatus('hush_nodes/node1', /^UP$/, 60_000);
      await c.lb.waitStatus('hush_nodes/node2', /^UP$/, 60_000);
      const upMs = Date.now() - thawedAt;
      const w = await call(c.url, 'PUT', `${BASE}/AFTER`, { token: c.token, body: { value: secretValue() } });
      assert.equal(w.status, 200, w.text);
      assert.equal((await auditVerify(c.url, c.token)).ok, true);
      await c.stop();
      const d =
        `PostgreSQL frozen: health answered 503 storage_unavailable after ${healthMs.join(' / ')} ms ` +
        `(its bound: 2000 ms), ` +
        (`HAProxy marked both nodes down ${downMs} ms after the freeze; thawed: both UP again ${upMs} ms ` + `later, no restart`);
      t.diagnostic(d);
      summary.push(d);
    },
  );
});

describe('docs/scaling.md', () => {
  it('shows the HAProxy configuration that the cluster tests run', () => {
    const doc = readFileSync(new URL('../../../docs/scaling.md', import.meta.url), 'utf8');
    const shown = haproxyConfig('/run/haproxy/admin.sock', [
      {
        name: 'hush',
        bind: '127.0.0.1:8400',
        servers: [
          { name: 'node1', address: '10.0.0.11:8420' },
          { name: 'node2', address: '10.0.0.12:8420' },
        ],
      },
    ]);
    assert.ok(doc.includes(shown), `docs/scaling.md should show, verbatim:\n${shown}`);
  });
});

describe('cluster: totals', () => {
  it('no secret value or token in any server output, error body or audit event', (t) => {
    for (const s of summary) t.diagnostic(s);
    assertNoLeaks(t, 'cluster');
  });
});

/**
 * A TCP relay to host:port, so one node's path to PostgreSQL can be cut
 * (listener closed, every relayed connection reset: connections are then
 * refused) and restored, while the other node keeps its own path.
 */
async function tcpRelay(host: string, port: number) {
  const sockets = new Set<Socket>();
  const listenPort = await closedPort();
  let server: Server | null = null;
  const open = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((inbound) => {
        const outbound = connect(port, host);
        for (const s of [inbound, outbound]) {
          sockets.add(s);
          s.on('error', () => {
            inbound.destroy();
            outbound.destroy();
          });
          s.on('close', () => {
            sockets.delete(s);
            inbound.destroy();
            outbound.destroy();
          });
        }
        inbound.pipe(outbound);
        outbound.pipe(inbound);
      });
      server.once('error', reject);
      server.listen(listenPort, '127.0.0.1', () => resolve());
    });
  await open();
  return {
    port: listenPort,
    async cut() {
      const s = server;
      server = null;
      for (const sock of sockets) sock.resetAndDestroy();
      if (s) await new Promise<void>((r) => s.close(() => r()));
    },
    restore: open,
  };
}
