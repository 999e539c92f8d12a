/**
 * Scheduled backups in the server: a 1-second croner schedule writes files
 * (0600, UTC timestamp names) atomically, retention keeps N, health shows
 * the last success or error, a failing run never stops the server, and
 * servers sharing a PostgreSQL database write one file per tick between them.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBackup, writeAtomically, BACKUP_FILE_RE } from '../../vault/backup/backup-service.js';
import { verifyBackupFile } from '../../vault/backup/local.js';
import { SYSTEM_CONTEXT } from '../../vault/services/audit/audit-service.js';
import { PROC_SKIP } from '../helpers/preconditions.js';
import { freshPgDatabase, startServer, tempDir, type TestServer, NEEDS_PG } from '../helpers/server.js';
import { seedVault } from './support.js';

const PASS = 'scheduled pass';
const EVERY_SECOND = '* * * * * *';
const NAME_RE = /^hush-backup-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\.pgp$/;

async function until<T>(what: string, fn: () => Promise<T | null | false> | T | null | false, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const backups = (dir: string) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => BACKUP_FILE_RE.test(f))
        .sort()
    : [];

async function auditCount(s: TestServer, outcome: 'ok' | 'error', token = s.rootToken): Promise<number> {
  const r = await s.api('GET', `/v1/audit?action=backup.create&outcome=${outcome}&limit=1000`, undefined, token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.events.length;
}

/**
 * Open SQLite connections of this process to the vault in `dataDir`: each
 * holds the WAL file open. (The main db file is no measure: SQLite keeps a
 * closed connection's descriptor for reuse while others hold POSIX locks.)
 */
function openDbFiles(dataDir: string): number {
  const wal = join(dataDir, 'hush.db-wal');
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === wal;
    } catch {
      return false;
    }
  }).length;
}

describe('scheduled backups', () => {
  const work = tempDir('hush-bk-sched-');
  const passFile = join(work, 'pass.txt');
  writeFileSync(passFile, `${PASS}\n`, { mode: 0o600 });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('a 1-second schedule writes 0600 files named by UTC tick, keeps 2, audits each run, and health shows lastBackupAt', async () => {
    const dir = join(work, 'backups');
    const s = await startServer({
      settings: { 'backup-schedule': EVERY_SECOND, 'backup-dir': dir, 'backup-keep': '2', 'backup-passphrase-file': passFile },
    });
    try {
      await seedVault(s, { projects: 1, envs: 1, secrets: 20 });
      await until('4 successful scheduled runs', async () => (await auditCount(s, 'ok')) >= 4);
      const h = await s.api('GET', '/v1/sys/health', undefined, null);
      assert.equal(h.status, 200);
      assert.ok(h.body.lastBackupAt && Date.now() - Date.parse(h.body.lastBackupAt) < 30_000, `lastBackupAt: ${h.body.lastBackupAt}`);
      assert.equal(h.body.lastBackupError, null);
      const ev = (await s.api('GET', '/v1/audit?action=backup.create&outcome=ok&order=desc&limit=1')).body.events[0];
      assert.equal(ev.actor.id, 'system');
      assert.ok(ev.detail.bytes > 0);
      assert.equal(ev.detail.counts.secrets, 20);
      // Closing waits for a run in progress; after that the dir holds what retention left.
      await s.close();
      const files = backups(dir);
      assert.equal(files.length, 2, `retention keeps 2: ${files.join(', ')}`);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      for (const f of files) {
        const m = NAME_RE.exec(f);
        assert.ok(m, `UTC timestamp name: ${f}`);
        const t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
        assert.ok(Math.abs(Date.now() - t) < 60_000, `${f} names a recent UTC second`);
        assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is 0600`);
      }
      assert.notEqual(files[0], files[1]);
      const r = await verifyBackupFile(join(dir, files[1]), { passphrase: PASS });
      assert.equal(r.ok, true);
      assert.deepEqual(
        readdirSync(dir).filter((f) => !BACKUP_FILE_RE.test(f)),
        [],
        'no temp file or anything else left in the dir',
      );
    } finally {
      await s.close();
    }
  });

  it(
    'a run that cannot write (backup dir under a regular file) leaves the server serving; health shows lastBackupError',
    { skip: PROC_SKIP },
    async () => {
      const blocker = join(work, 'not-a-dir');
      writeFileSync(blocker, 'x');
      const s = await startServer({
        settings: { 'backup-schedule': EVERY_SECOND, 'backup-dir': join(blocker, 'backups'), 'backup-passphrase-file': passFile },
      });
      try {
        await seedVault(s, { projects: 1, envs: 1, secrets: 5 });
        const fdsBefore = openDbFiles(s.dataDir);
        await until('3 failed runs audited', async () => (await auditCount(s, 'error')) >= 3);
        const h = await s.api('GET', '/v1/sys/health', undefined, null);
        assert.equal(h.status, 200, 'the server still serves');
        assert.equal(h.body.status, 'ok');
        assert.equal(h.body.lastBackupAt, null);
        assert.match(h.body.lastBackupError, /ENOTDIR/);
        const read = await s.api('GET', '/v1/projects/p0/envs/e0/secrets');
        assert.equal(read.status, 200, 'secrets still read');
        assert.equal(Object.keys(read.body.secrets).length > 0, true);
        assert.equal(openDbFiles(s.dataDir), fdsBefore, 'failed runs leave no database connection behind');
      } finally {
        await s.close();
      }
    },
  );

  it('regression: a backup whose file cannot be written still settles and releases its read snapshot', { skip: PROC_SKIP }, async () => {
    const s = await startServer();
    try {
      await seedVault(s, { projects: 1, envs: 1, secrets: 5 });
      const before = openDbFiles(s.dataDir);
      const blocker = join(work, 'blocker2');
      writeFileSync(blocker, 'x');
      for (let i = 0; i < 3; i++) {
        const run = await createBackup(s.server.container, { passphrase: 'x' }, SYSTEM_CONTEXT);
        assert.ok(openDbFiles(s.dataDir) > before, 'a SQLite backup reads through its own snapshot connection');
        await assert.rejects(writeAtomically(join(blocker, 'sub'), 'f.pgp', run.stream), { code: 'ENOTDIR' });
        const settled = await Promise.race([
          run.done.then(
            () => 'ok',
            () => 'failed',
          ),
          sleep(10_000).then(() => 'hung'),
        ]);
        assert.equal(settled, 'failed');
      }
      await until('the snapshot connections to close', () => openDbFiles(s.dataDir) === before, 20_000);
      assert.equal(await auditCount(s, 'error'), 3, 'each failed run is audited');
    } finally {
      await s.close();
    }
  });

  it('regression: a backup refused for a bad signing key releases the snapshot it opened', { skip: PROC_SKIP }, async () => {
    const s = await startServer();
    try {
      const before = openDbFiles(s.dataDir);
      for (let i = 0; i < 3; i++) {
        await assert.rejects(createBackup(s.server.container, { passphrase: 'x', signingKey: { armored: 'not a key' } }, SYSTEM_CONTEXT), {
          code: 'backup_key_invalid',
        });
      }
      await until('the snapshot connections to close', () => openDbFiles(s.dataDir) === before, 20_000);
    } finally {
      await s.close();
    }
  });

  it('two servers on one PostgreSQL database with the same schedule write exactly one file per tick', NEEDS_PG, async (t) => {
    const db = (await freshPgDatabase())!;
    const dirA = join(work, 'pg-a');
    const dirB = join(work, 'pg-b');
    const settings = { 'database-url': db.url, 'backup-schedule': EVERY_SECOND, 'backup-keep': '1000', 'backup-passphrase-file': passFile };
    const a = await startServer({ settings: { ...settings, 'backup-dir': dirA } });
    let b: TestServer | null = null;
    try {
      b = await startServer({ settings: { ...settings, 'backup-dir': dirB, 'master-key-file': join(a.dataDir, 'master.key') } });
      await seedVault(a, { projects: 1, envs: 1, secrets: 10 });
      await until('6 scheduled runs', async () => (await auditCount(a, 'ok')) >= 6, 20_000);
      await b.close();
      await a.close({ keepDir: true });
      const fa = backups(dirA);
      const fb = backups(dirB);
      t.diagnostic(`files written: server A ${fa.length}, server B ${fb.length}`);
      const both = fa.filter((f) => fb.includes(f));
      assert.deepEqual(both, [], 'no tick was written by both servers');
      const all = [...fa, ...fb];
      assert.ok(all.length >= 6, `files: A ${fa.length}, B ${fb.length}`);
      // Every successful run is one audit event in the shared log and one file.
      const s2 = await startServer({ settings: { 'database-url': db.url, 'master-key-file': join(a.dataDir, 'master.key') } });
      try {
        assert.equal(await auditCount(s2, 'ok', a.rootToken), all.length);
      } finally {
        await s2.close();
      }
    } finally {
      await b?.close();
      await a.close();
      await db.drop();
    }
  });
});
