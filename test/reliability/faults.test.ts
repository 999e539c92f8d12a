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
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PG_URL, freshPgDatabase, tempDir, NEEDS_PG } from '../helpers/server.js';
import { openDb } from '../../vault/store/db.js';
import {
  BASE,
  NO_LIMITS,
  PRIVATE_PG_SKIP,
  assertNoLeaks,
  auditEvents,
  auditVerify,
  call,
  dbNameOf,
  load,
  makeEnv,
  masterKeyFile,
  pgAdmin,
  privatePgCluster,
  secretValue,
  sleep,
  spawnHush,
  terminateBackends,
  until,
  verifyAcks,
} from './support.js';

const isRoot = process.getuid?.() === 0;

const summary: string[] = [];

describe('the database becomes unwritable mid-run', () => {
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

  it(
    'SQLite: the disk fills up: 503 with a clear code, no corruption, recovery without a restart',
    { skip: !isRoot && 'needs root to mount a tmpfs' },
    async (t) => {
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

      const l = load(() => srv, token, { clients: 4, valueBytes: 4096 });
      await sleep(400);
      // Fill the file system: big chunks, then ever smaller ones, until not a byte fits.
      const filler = join(mnt, 'filler');
      const fd = openSync(filler, 'w');
      for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
        const buf = Buffer.alloc(size, 0x5a);
        try {
          for (;;) writeSync(fd, buf);
        } catch (e) {
          assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
        }
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
      const explain = () =>
        `\n${execFileSync('df', ['-k', mnt]).toString()}${execFileSync('ls', ['-l', dataDir]).toString()}last ` +
        `errors: ${srv
          .stdout()
          .split('\n')
          .filter((x) => /"level":5/.test(x))
          .slice(-2)
          .join('\n')}`;
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
      t.diagnostic(
        `disk full: ${during.ok} ok and ${during.unavailable} answered 503 (${codes}); recovered ` +
          `${recoveryMs} ms after space came back, no restart; ${l.acks.length} acknowledged writes ` +
          `intact; integrity_check ok`,
      );
      summary.push(`sqlite disk full: ${during.unavailable} x 503 (${codes}), 0 x 5xx other than 503, recovery ` + `${recoveryMs} ms`);
    },
  );

  it(
    'PostgreSQL: the database turns read-only: 503 with a clear code, no corruption, recovery without ' + 'a restart',
    NEEDS_PG,
    async (t) => {
      const pg = (await freshPgDatabase())!;
      const name = dbNameOf(pg.url);
      cleanups.push(pg.drop);
      const srv = await spawnHush(
        ['--data-dir', tempDir(), '--listen', '127.0.0.1:0', '--master-key-file', masterKeyFile(), '--database-url', pg.url, ...NO_LIMITS],
        {},
        { label: 'pg read-only' },
      );
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
      t.diagnostic(
        `read-only database: ${during.ok} ok, ${during.unavailable} answered 503 (${codes}); recovered ` +
          `${recoveryMs} ms after it was writable; ${l.acks.length} acknowledged writes intact`,
      );
      summary.push(`postgres read-only: ${during.unavailable} x 503 (${codes}), recovery ${recoveryMs} ms`);
    },
  );
});

describe('PostgreSQL: write privileges are revoked mid-run', NEEDS_PG, () => {
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
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
    };
    const srv = await spawnHush(
      [
        '--data-dir',
        tempDir(),
        '--listen',
        '127.0.0.1:0',
        '--master-key-file',
        masterKeyFile(),
        '--database-url',
        u.toString(),
        ...NO_LIMITS,
      ],
      {},
      { label: 'pg revoke' },
    );
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
    t.diagnostic(
      `privileges revoked: ${during.ok} ok, ${during.unavailable} answered 503 (${codes}); recovered ` +
        `${recoveryMs} ms after the grant, same connections, no restart`,
    );
    summary.push(`postgres privileges revoked: ${during.unavailable} x 503 (${codes}), recovery ${recoveryMs} ms`);
  });
});

describe('PostgreSQL connections are dropped under load', NEEDS_PG, () => {
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

  it('every backend is terminated 8 times in 2 s: no 500, no hang, recovery without restarting Hush', async (t) => {
    const pg = (await freshPgDatabase())!;
    cleanups.push(pg.drop);
    const srv = await spawnHush(
      ['--data-dir', tempDir(), '--listen', '127.0.0.1:0', '--master-key-file', masterKeyFile(), '--database-url', pg.url, ...NO_LIMITS],
      {},
      { label: 'pg terminate' },
    );
    cleanups.push(() => srv.kill9());
    const token = srv.rootToken!;
    await makeEnv(srv.url, token, 'fault', 'prod');
    const l = load(() => srv, token, { clients: 6 });
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
    t.diagnostic(
      `${terminated} backends terminated: ${during.ok} ok, ${during.unavailable} answered 503 ` +
        `(${codes}), 0 other errors; recovered in ${recoveryMs} ms; ${l.acks.length} acknowledged writes intact`,
    );
    summary.push(`postgres terminate x8: ${during.unavailable} x 503 (${codes}), recovery ${recoveryMs} ms`);
  });
});

describe('PostgreSQL restarts under load', { skip: PRIVATE_PG_SKIP }, () => {
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

  it('a fast restart, then 1.5 s down and a start: 503 while down, no 500, no hang, recovery without ' + 'restarting Hush', async (t) => {
    const pg = await privatePgCluster();
    cleanups.push(() => pg.destroy());
    const srv = await spawnHush(
      ['--data-dir', tempDir(), '--listen', '127.0.0.1:0', '--master-key-file', masterKeyFile(), '--database-url', pg.url, ...NO_LIMITS],
      {},
      { label: 'pg restart' },
    );
    cleanups.push(() => srv.kill9());
    const token = srv.rootToken!;
    await makeEnv(srv.url, token, 'fault', 'prod');
    const l = load(() => srv, token);
    await sleep(400);

    // 1. pg_ctl restart -m fast: every session is ended, the server is back within a moment.
    const okBeforeRestart = l.counts.ok;
    await pg.restart();
    const t1 = Date.now();
    assert.ok(await until(async () => l.lastOkAt() > t1 + 20, 15_000, 50), 'no recovery within 15 s of the restart');
    const restartRecoveryMs = l.lastOkAt() - t1;

    // 2. Stopped for 1.5 s under load (connections refused), then started.
    await pg.stop();
    const downAt = Date.now();
    await sleep(1500);
    const during = { ...l.counts, byCode: new Map(l.counts.byCode) };
    assert.ok(srv.alive(), 'Hush exited while its database was down');
    await pg.start();
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
    t.diagnostic(
      `postgres restart: recovered ${restartRecoveryMs} ms after pg_ctl restart; down ${t2 - downAt} ` +
        `ms: ${during.unavailable} answered 503 (${codes}); recovered ${recoveryMs} ms after the start, ` +
        `no restart of Hush; ${l.acks.length} acknowledged writes intact`,
    );
    summary.push(`postgres restart (private cluster): ${during.unavailable} x 503 (${codes}), recovery ${recoveryMs} ms`);
  });
});

describe('faults: totals', () => {
  it('no secret value or token in any server output, error body or audit event', (t) => {
    for (const s of summary) t.diagnostic(s);
    assertNoLeaks(t, 'faults');
  });
});
