/**
 * Faults under load, against real `hush server` processes:
 * - the database becomes unwritable mid-run (SQLite: its tmpfs fills up;
 *   PostgreSQL: the database turns read-only): answers are 200 or a 503 with
 *   a clear code, never a 500 or a hang; nothing acknowledged is lost or
 *   corrupted; the server recovers by itself once the database is writable;
 * - PostgreSQL drops every connection repeatedly under load (what a restart
 *   does to clients), and a PostgreSQL cluster of the test's own is really
 *   restarted, then stopped and started again under load: the same, and
 *   recovery without restarting Hush;
 * (The master key file faults are in master-key-file.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, closeSync, existsSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PG_URL, freshPgDatabase, tempDir, NEEDS_PG } from '../helpers/server.js';
import { openDb } from '../../vault/store/db.js';
import {
  NO_LIMITS, assertErrorShape, assertNoLeaks, auditEvents, auditVerify, call, dbNameOf, makeEnv, masterKeyFile, pgAdmin,
  secretValue, sleep, spawnHush, terminateBackends, until, type Res, type Spawned,
} from './support.js';

const BASE = '/v1/projects/fault/envs/prod/secrets';
const CLEAR_503 = new Set(['storage_unavailable', 'audit_unavailable']);
const isRoot = process.getuid?.() === 0;

interface Ack { key: string; value: string; version: number }

/**
 * Clients writing and reading in a loop. Every answer is classified: 200, a
 * 503 with a clear code, or a failure (any other status, a hang, a dropped
 * connection while the server is up).
 */
function load(srv: () => Spawned, token: string, clients = 4, valueBytes = 256) {
  const acks: Ack[] = [];
  const written = new Set<string>();
  const failures: string[] = [];
  const counts = { ok: 0, unavailable: 0, byCode: new Map<string, number>() };
  let stop = false;
  let lastOkAt = Date.now();
  let last503At = 0;
  const classify = (r: Res, what: string) => {
    if (r.status === 200) { counts.ok++; lastOkAt = Date.now(); return true; }
    if (r.status === 503) {
      try { assertErrorShape(r, what); } catch (e) { failures.push((e as Error).message); return false; }
      counts.byCode.set(r.body.error.code, (counts.byCode.get(r.body.error.code) ?? 0) + 1);
      if (!CLEAR_503.has(r.body.error.code)) failures.push(`${what}: 503 with code ${r.body.error.code}`);
      counts.unavailable++;
      last503At = Date.now();
      return false;
    }
    failures.push(`${what}: ${r.status} ${r.text.slice(0, 300)}`);
    return false;
  };
  const run = async (c: number) => {
    for (let n = 0; !stop; n++) {
      const key = `C${c}_K${n % 6}`;
      const value = secretValue(`-${c}-${n}-` + 'v'.repeat(valueBytes));
      try {
        const w = await call(srv().url, 'PUT', `${BASE}/${key}`, { token, body: { value }, timeoutMs: 15_000 });
        if (classify(w, `PUT ${key}`)) { acks.push({ key, value, version: w.body.version }); written.add(key); }
        // One key, when it exists for sure; otherwise all of them.
        const r = await call(srv().url, 'GET', n % 3 !== 0 && written.has(key) ? `${BASE}/${key}` : BASE, { token, timeoutMs: 15_000 });
        classify(r, 'GET');
      } catch (e) {
        failures.push(`request failed (hang or dropped connection): ${(e as Error).message}`);
      }
      if (counts.unavailable > 0 && Date.now() - last503At < 50) await sleep(20);
    }
  };
  const running = Array.from({ length: clients }, (_, c) => run(c));
  return {
    acks, failures, counts,
    lastOkAt: () => lastOkAt,
    async stop() { stop = true; await Promise.all(running); },
  };
}

/**
 * Every acknowledged write reads back exactly, at its version. A read is an
 * audited request, so on a machine under load it may still meet a transient
 * 503 just after recovery: that is retried (and counted); a 404 or another
 * value is a loss.
 */
async function verifyAcks(url: string, token: string, acks: Ack[]): Promise<{ retried503: number }> {
  let retried503 = 0;
  for (let i = 0; i < acks.length; i += 16) {
    await Promise.all(acks.slice(i, i + 16).map(async (a) => {
      let r = await call(url, 'GET', `${BASE}/${a.key}?version=${a.version}`, { token });
      for (let n = 0; r.status === 503 && n < 10; n++) {
        retried503++;
        await sleep(200);
        r = await call(url, 'GET', `${BASE}/${a.key}?version=${a.version}`, { token });
      }
      assert.equal(r.status, 200, `LOST: ${a.key} v${a.version}: ${r.text}`);
      assert.equal(r.body.value, a.value, `CORRUPT: ${a.key} v${a.version}`);
    }));
  }
  return { retried503 };
}

const summary: string[] = [];

describe('the database becomes unwritable mid-run', () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

  it('SQLite: the disk fills up: 503 with a clear code, no corruption, recovery without a restart', { skip: !isRoot && 'needs root to mount a tmpfs' }, async (t) => {
    const mnt = tempDir('hush-tmpfs-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'tmpfs', mnt]);
    } catch (e) {
      t.skip(`cannot mount a tmpfs here: ${(e as Error).message}`);
      return;
    }
    cleanups.push(() => execFileSync('umount', ['-l', mnt]));
    const dataDir = join(mnt, 'data');
    const args = ['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--master-key-file', masterKeyFile(), ...NO_LIMITS];
    let srv = await spawnHush(args, {}, { label: 'sqlite disk-full' });
    cleanups.push(() => srv.kill9());
    const token = srv.rootToken!;
    await makeEnv(srv.url, token, 'fault', 'prod');
    const pid = srv.child.pid;

    const l = load(() => srv, token, 4, 4096);
    await sleep(400);
    // Fill the file system: big chunks, then ever smaller ones, until not a byte fits.
    const filler = join(mnt, 'filler');
    const fd = openSync(filler, 'w');
    for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
      const buf = Buffer.alloc(size, 0x5a);
      try { for (;;) writeSync(fd, buf); } catch (e) { assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC'); }
    }
    closeSync(fd);
    const sawUnavailable = await until(async () => l.counts.unavailable > 0, 15_000, 50);
    assert.ok(sawUnavailable, 'no 503 while the disk was full');
    await sleep(800); // keep the load on the full disk for a while
    const during = { ...l.counts, byCode: new Map(l.counts.byCode) };
    rmSync(filler);
    const t0 = Date.now();
    const recovered = await until(async () => l.lastOkAt() > t0 + 50, 15_000, 50);
    assert.ok(recovered, 'no successful request within 15 s after space came back');
    const recoveryMs = l.lastOkAt() - t0;
    // Stop the load at once: left running on a 6 MB file system it can fill the disk again (the WAL grows).
    await l.stop();
    assert.deepEqual(l.failures.slice(0, 10), [], 'answers other than 200 or a clear 503');
    assert.equal(srv.child.pid, pid);
    assert.ok(srv.alive(), 'the server stayed up');

    // Writes work again, everything acknowledged is intact, the chain verifies, the file is sound.
    const explain = () => `\n${execFileSync('df', ['-k', mnt]).toString()}${execFileSync('ls', ['-l', dataDir]).toString()}last errors: ${srv.stdout().split('\n').filter((x) => /"level":5/.test(x)).slice(-2).join('\n')}`;
    const after_ = await call(srv.url, 'PUT', `${BASE}/AFTER`, { token, body: { value: secretValue() } });
    assert.equal(after_.status, 200, after_.text + explain());
    let retried503 = 0;
    try {
      ({ retried503 } = await verifyAcks(srv.url, token, l.acks));
    } catch (e) {
      assert.fail(`${(e as Error).message}${explain()}`);
    }
    if (retried503) t.diagnostic(`${retried503} reads met a transient 503 after recovery and were retried${explain()}`);
    assert.equal((await auditVerify(srv.url, token)).ok, true);
    await auditEvents(srv.url, token);
    assert.equal(await srv.stop(), 0);
    const side = openDb({ url: `sqlite:${join(dataDir, 'hush.db')}` });
    try {
      const rows = await side.raw('pragma integrity_check');
      assert.deepEqual(rows, [{ integrity_check: 'ok' }]);
    } finally {
      await side.destroy();
    }
    // And it starts again on the same files.
    srv = await spawnHush(args, {}, { label: 'sqlite disk-full restart' });
    await verifyAcks(srv.url, token, l.acks.slice(-50));
    await srv.stop();
    const codes = [...during.byCode].map(([c, n]) => `${c} x${n}`).join(', ');
    t.diagnostic(`disk full: ${during.ok} ok and ${during.unavailable} answered 503 (${codes}); recovered ${recoveryMs} ms after space came back, no restart; ${l.acks.length} acknowledged writes intact; integrity_check ok`);
    summary.push(`sqlite disk full: ${during.unavailable} x 503 (${codes}), 0 x 5xx other than 503, recovery ${recoveryMs} ms`);
  });

  it('PostgreSQL: the database turns read-only: 503 with a clear code, no corruption, recovery without a restart', NEEDS_PG, async (t) => {
    const pg = (await freshPgDatabase())!;
    const name = dbNameOf(pg.url);
    cleanups.push(pg.drop);
    const srv = await spawnHush(['--data-dir', tempDir(), '--listen', '127.0.0.1:0', '--master-key-file', masterKeyFile(), '--database-url', pg.url, ...NO_LIMITS], {}, { label: 'pg read-only' });
    cleanups.push(() => srv.kill9());
    const token = srv.rootToken!;
    await makeEnv(srv.url, token, 'fault', 'prod');
    const l = load(() => srv, token);
    await sleep(400);
    // New sessions start read-only; the old ones are cut so the pool reconnects into that.
    await pgAdmin(`alter database "${name}" set default_transaction_read_only = on`);
    cleanups.push(() => pgAdmin(`alter database "${name}" reset default_transaction_read_only`));
    await terminateBackends(pg.url);
    assert.ok(await until(async () => l.counts.unavailable > 0, 15_000, 50), 'no 503 while the database was read-only');
    await sleep(800);
    const during = { ...l.counts, byCode: new Map(l.counts.byCode) };
    await pgAdmin(`alter database "${name}" reset default_transaction_read_only`);
    // Sessions opened while it was read-only keep that default: an operator's failback ends them too.
    await terminateBackends(pg.url);
    const t0 = Date.now();
    assert.ok(await until(async () => l.lastOkAt() > t0 + 50, 15_000, 50), 'no recovery within 15 s');
    const recoveryMs = l.lastOkAt() - t0;
    // Stop the load at once: left running on a 6 MB file system it can fill the disk again (the WAL grows).
    await l.stop();
    assert.deepEqual(l.failures.slice(0, 10), []);
    assert.ok(srv.alive());
    await verifyAcks(srv.url, token, l.acks);
    assert.equal((await auditVerify(srv.url, token)).ok, true);
    await auditEvents(srv.url, token);
    assert.equal(await srv.stop(), 0);
    const codes = [...during.byCode].map(([c, n]) => `${c} x${n}`).join(', ');
    t.diagnostic(`read-only database: ${during.ok} ok, ${during.unavailable} answered 503 (${codes}); recovered ${recoveryMs} ms after it was writable; ${l.acks.length} acknowledged writes intact`);
    summary.push(`postgres read-only: ${during.unavailable} x 503 (${codes}), recovery ${recoveryMs} ms`);
  });
});

describe('PostgreSQL: write privileges are revoked mid-run', NEEDS_PG, () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

  it('503 storage_unavailable while revoked; the same connections recover once granted again', async (t) => {
    // Hush connects as its own role, owner of its database, as in production.
    const role = `hush_rel_${process.pid}_${Date.now().toString(36)}`;
    await pgAdmin(`create role ${role} login`);
    cleanups.push(() => pgAdmin(`drop role if exists ${role}`));
    await pgAdmin(`create database ${role} owner ${role}`);
    cleanups.push(() => pgAdmin(`drop database if exists ${role} with (force)`));
    const u = new URL(PG_URL!);
    u.username = role;
    u.password = '';
    u.pathname = `/${role}`;
    const asSuper = async (sql: string) => {
      const { default: pg } = await import('pg');
      const su = new URL(PG_URL!);
      su.pathname = `/${role}`;
      const c = new pg.Client({ connectionString: su.toString() });
      await c.connect();
      try { await c.query(sql); } finally { await c.end(); }
    };
    const srv = await spawnHush(['--data-dir', tempDir(), '--listen', '127.0.0.1:0', '--master-key-file', masterKeyFile(), '--database-url', u.toString(), ...NO_LIMITS], {}, { label: 'pg revoke' });
    cleanups.push(() => srv.kill9());
    const token = srv.rootToken!;
    await makeEnv(srv.url, token, 'fault', 'prod');
    const l = load(() => srv, token);
    await sleep(300);
    await asSuper(`revoke insert, update, delete on all tables in schema public from ${role}`);
    assert.ok(await until(async () => l.counts.unavailable > 0, 10_000, 50), 'no 503 while privileges were revoked');
    await sleep(500);
    const during = { ...l.counts, byCode: new Map(l.counts.byCode) };
    await asSuper(`grant insert, update, delete on all tables in schema public to ${role}`);
    const t0 = Date.now();
    assert.ok(await until(async () => l.lastOkAt() > t0 + 50, 10_000, 50), 'no recovery within 10 s');
    const recoveryMs = l.lastOkAt() - t0;
    await sleep(300);
    await l.stop();
    assert.deepEqual(l.failures.slice(0, 10), []);
    assert.ok(srv.alive());
    await verifyAcks(srv.url, token, l.acks);
    assert.equal((await auditVerify(srv.url, token)).ok, true);
    await auditEvents(srv.url, token);
    assert.equal(await srv.stop(), 0);
    const codes = [...during.byCode].map(([c, n]) => `${c} x${n}`).join(', ');
    t.diagnostic(`privileges revoked: ${during.ok} ok, ${during.unavailable} answered 503 (${codes}); recovered ${recoveryMs} ms after the grant, same connections, no restart`);
    summary.push(`postgres privileges revoked: ${during.unavailable} x 503 (${codes}), recovery ${recoveryMs} ms`);
  });
});

describe('PostgreSQL connections are dropped under load', NEEDS_PG, () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

  it('every backend is terminated 8 times in 2 s: no 500, no hang, recovery without restarting Hush', async (t) => {
    const pg = (await freshPgDatabase())!;
    cleanups.push(pg.drop);
    const srv = await spawnHush(['--data-dir', tempDir(), '--listen', '127.0.0.1:0', '--master-key-file', masterKeyFile(), '--database-url', pg.url, ...NO_LIMITS], {}, { label: 'pg terminate' });
    cleanups.push(() => srv.kill9());
    const token = srv.rootToken!;
    await makeEnv(srv.url, token, 'fault', 'prod');
    const l = load(() => srv, token, 6);
    await sleep(300);
    let terminated = 0;
    for (let i = 0; i < 8; i++) {
      terminated += await terminateBackends(pg.url);
      await sleep(250);
    }
    const during = { ...l.counts, byCode: new Map(l.counts.byCode) };
    const t0 = Date.now();
    assert.ok(await until(async () => l.lastOkAt() > t0 + 50, 10_000, 50), 'no recovery within 10 s');
    const recoveryMs = l.lastOkAt() - t0;
    // After recovery (and a moment for the pool to drop connections that died idle) every request succeeds.
    await sleep(300);
    const okBefore = l.counts.ok;
    const unavailableBefore = l.counts.unavailable;
    await sleep(1000);
    await l.stop();
    assert.deepEqual(l.failures.slice(0, 10), []);
    assert.ok(l.counts.ok > okBefore);
    assert.equal(l.counts.unavailable, unavailableBefore, '503s after the database came back');
    assert.ok(srv.alive(), 'Hush stayed up');
    await verifyAcks(srv.url, token, l.acks);
    assert.equal((await auditVerify(srv.url, token)).ok, true);
    await auditEvents(srv.url, token);
    assert.equal(await srv.stop(), 0);
    const codes = [...during.byCode].map(([c, n]) => `${c} x${n}`).join(', ') || 'none';
    t.diagnostic(`${terminated} backends terminated: ${during.ok} ok, ${during.unavailable} answered 503 (${codes}), 0 other errors; recovered in ${recoveryMs} ms; ${l.acks.length} acknowledged writes intact`);
    summary.push(`postgres terminate x8: ${during.unavailable} x 503 (${codes}), recovery ${recoveryMs} ms`);
  });
});

/**
 * A PostgreSQL cluster of this test's own (initdb into a temp dir, its own
 * port), so that it can really be stopped and started while other test files
 * use the shared server. As root the server runs as the `postgres` user.
 */
function pgServerBin(): string | null {
  const dirs: string[] = [];
  try { dirs.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim()); } catch { /* not on PATH */ }
  try { for (const v of readdirSync('/usr/lib/postgresql').sort().reverse()) dirs.push(`/usr/lib/postgresql/${v}/bin`); } catch { /* none */ }
  return dirs.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}
const PG_BIN = pgServerBin();
const pgUser = (() => { if (!isRoot) return null; try { return Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })); } catch { return null; } })();

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const port = (s.address() as { port: number }).port; s.close(() => resolve(port)); });
  });
}

async function privatePgCluster() {
  const dir = tempDir('hush-pgc-');
  if (pgUser !== null) chownSync(dir, pgUser, pgUser);
  const data = join(dir, 'data');
  const port = await freePort();
  const pgRun = (tool: string, args: string[]) => execFileSync(
    pgUser !== null ? 'runuser' : join(PG_BIN!, tool),
    pgUser !== null ? ['-u', 'postgres', '--', join(PG_BIN!, tool), ...args] : args,
    { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, cwd: dir },
  );
  pgRun('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-instructions']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`;
  const ctl = (...args: string[]) => pgRun('pg_ctl', ['-D', data, '-l', join(dir, 'pg.log'), '-o', opts, '-w', '-t', '60', ...args]);
  ctl('start');
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: () => ctl('stop', '-m', 'fast'),
    start: () => ctl('start'),
    restart: () => ctl('restart', '-m', 'fast'),
    destroy: () => { try { ctl('stop', '-m', 'immediate'); } catch { /* already down */ } rmSync(dir, { recursive: true, force: true }); },
  };
}

describe('PostgreSQL restarts under load', { skip: (!PG_BIN && 'PostgreSQL server binaries (initdb, pg_ctl) not found') || (isRoot && pgUser === null && 'running as root, and there is no postgres user to run a cluster as') }, () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

  it('a fast restart, then 1.5 s down and a start: 503 while down, no 500, no hang, recovery without restarting Hush', async (t) => {
    const pg = await privatePgCluster();
    cleanups.push(pg.destroy);
    const srv = await spawnHush(['--data-dir', tempDir(), '--listen', '127.0.0.1:0', '--master-key-file', masterKeyFile(), '--database-url', pg.url, ...NO_LIMITS], {}, { label: 'pg restart' });
    cleanups.push(() => srv.kill9());
    const token = srv.rootToken!;
    await makeEnv(srv.url, token, 'fault', 'prod');
    const l = load(() => srv, token);
    await sleep(400);

    // 1. pg_ctl restart -m fast: every session is ended, the server is back within a moment.
    const okBeforeRestart = l.counts.ok;
    pg.restart();
    const t1 = Date.now();
    assert.ok(await until(async () => l.lastOkAt() > t1 + 20, 15_000, 50), 'no recovery within 15 s of the restart');
    const restartRecoveryMs = l.lastOkAt() - t1;

    // 2. Stopped for 1.5 s under load (connections refused), then started.
    pg.stop();
    const downAt = Date.now();
    await sleep(1500);
    const during = { ...l.counts, byCode: new Map(l.counts.byCode) };
    assert.ok(srv.alive(), 'Hush exited while its database was down');
    pg.start();
    const t2 = Date.now();
    assert.ok(await until(async () => l.lastOkAt() > t2 + 20, 15_000, 50), 'no recovery within 15 s of the start');
    const recoveryMs = l.lastOkAt() - t2;
    await sleep(300);
    const unavailableAfter = l.counts.unavailable;
    const okAfter = l.counts.ok;
    await sleep(1000);
    await l.stop();

    assert.deepEqual(l.failures.slice(0, 10), [], 'an answer that was neither 200 nor a clear 503, or a hang');
    assert.ok(during.unavailable > 0, 'no 503 while PostgreSQL was down');
    assert.ok(okBeforeRestart > 0 && l.counts.ok > okAfter, 'no successful requests before the restart or after the recovery');
    assert.equal(l.counts.unavailable, unavailableAfter, '503s after the database came back');
    assert.ok(srv.alive(), 'Hush stayed up');
    await verifyAcks(srv.url, token, l.acks);
    assert.equal((await auditVerify(srv.url, token)).ok, true);
    await auditEvents(srv.url, token);
    assert.equal(await srv.stop(), 0);
    const codes = [...during.byCode].map(([c, n]) => `${c} x${n}`).join(', ');
    t.diagnostic(`postgres restart: recovered ${restartRecoveryMs} ms after pg_ctl restart; down ${t2 - downAt} ms: ${during.unavailable} answered 503 (${codes}); recovered ${recoveryMs} ms after the start, no restart of Hush; ${l.acks.length} acknowledged writes intact`);
    summary.push(`postgres restart (private cluster): ${during.unavailable} x 503 (${codes}), recovery ${recoveryMs} ms`);
  });
});

describe('faults: totals', () => {
  it('no secret value or token in any server output, error body or audit event', (t) => {
    for (const s of summary) t.diagnostic(s);
    assertNoLeaks(t, 'faults');
  });
});
