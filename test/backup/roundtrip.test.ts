/**
 * Backup round trips through real servers: a vault with history is backed
 * up over HTTP and restored into a fresh SQLite data dir and a fresh
 * PostgreSQL database (and the reverse); the restored vault's logical dump
 * equals the backup body, and the old tokens keep working.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../vault/config.js';
import { createLogger } from '../../vault/server.js';
import { restoreBackupFile, verifyBackupFile } from '../../vault/backup/local.js';
import { freshPgDatabase, PG_URL, startOn, startServer, tempDir, type TestServer, NEEDS_PG } from '../helpers/server.js';
import { assertSameAsBackup, backupFileLines, backupOverHttp, seedVault, storedDump, type Seeded } from './support.js';

const PASS = 'correct horse battery staple';
const silent = createLogger('silent');

/** Reads p0/e0 with the old tokens and checks the values and the revoked token. */
async function assertTokensWork(s: TestServer, seeded: Seeded, rootToken: string): Promise<void> {
  const want = Object.fromEntries([...seeded.values.get('p0/e0')!].sort());
  for (const t of [seeded.reader, seeded.child]) {
    const r = await s.api('GET', '/v1/projects/p0/envs/e0/secrets', undefined, t.token);
    assert.equal(r.status, 200, `token ${t.id} reads after restore: ${JSON.stringify(r.body)}`);
    assert.deepEqual(Object.fromEntries(Object.entries(r.body.secrets).sort()), want);
  }
  const child = await s.api('GET', '/v1/tokens/self', undefined, seeded.child.token);
  assert.equal(child.body.parentId, seeded.reader.id, 'child token keeps its parent');
  assert.equal(
    (await s.api('GET', '/v1/projects/p1/envs/e1/secrets', undefined, seeded.revoked.token)).status,
    401,
    'a revoked token stays revoked',
  );
  const v = await s.api('GET', '/v1/audit/verify', undefined, rootToken);
  assert.equal(v.status, 200);
  assert.equal(v.body.ok, true, `audit chain verifies after restore: ${JSON.stringify(v.body)}`);
}

/** A PostgreSQL database whose default collation is ICU en-US (orders `a_b` before `ab`), unlike the C locale of the test cluster. */
async function icuPgDatabase(): Promise<{ url: string; drop: () => Promise<void> } | null> {
  const base = PG_URL;
  if (!base) return null;
  const { default: pg } = await import('pg');
  const name = `hush_icu_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`create database ${name} locale_provider icu icu_locale 'en-US' template template0`);
  } catch {
    return null;
  } finally {
    await admin.end();
  }
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

describe('backup round trip (3 projects x 3 envs x 200 secrets with history)', () => {
  let src: TestServer;
  let seeded: Seeded;
  const work = tempDir('hush-bk-rt-');
  const file = join(work, 'vault.pgp');
  let body: string[];

  before(async () => {
    src = await startServer();
    seeded = await seedVault(src);
    const r = await backupOverHttp(src, file, { passphrase: PASS });
    assert.equal(r.status, 200, JSON.stringify(r.error));
    body = (await backupFileLines(file, { passphrase: PASS })).slice(1);
  });
  after(async () => {
    await src?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('the backup holds every project, env, secret version, token and audit event, and verifies', async () => {
    const r = await verifyBackupFile(file, { passphrase: PASS });
    assert.deepEqual(r.counts, r.header.counts);
    assert.equal(r.counts.projects, 3);
    assert.equal(r.counts.envs, 10, '9 envs plus one empty one');
    assert.equal(r.counts.secrets, 1800);
    assert.ok(r.counts.versions > 1800 + 360, `history is there: ${r.counts.versions} versions`);
    assert.equal(r.counts.tokens, 5);
    assert.equal(r.auditChecked, r.counts.audit);
    const deleted = body.map((l) => JSON.parse(l)).filter((l) => l.t === 'version' && l.deleted);
    assert.ok(deleted.length > 0 && deleted.every((l) => l.value === null), 'deletions are versions without a value');
    const audit = await src.api('GET', '/v1/audit?action=backup.create');
    const ev = audit.body.events.at(-1);
    assert.equal(ev.outcome, 'ok');
    assert.deepEqual(ev.detail.counts, r.counts);
    assert.ok(ev.detail.bytes > 0);
  });

  it('restores into a fresh data dir; the dump is identical and the old tokens (and a child token) still read', async () => {
    const dir = join(work, 'restored-sqlite');
    const cfg = loadConfig({ 'data-dir': dir }, {});
    const r = await restoreBackupFile(cfg, file, { passphrase: PASS }, silent);
    assert.equal(r.verified, true);
    assert.equal(r.masterKeySource, 'generated');
    assert.equal(r.masterKeyFile, join(dir, 'master.key'));
    assertSameAsBackup(body, await storedDump(cfg));
    const s = await startServer({ dataDir: dir, settings: {} });
    try {
      assert.equal(s.server.init, null, 'the server opens the restored vault as is');
      await assertTokensWork(s, seeded, src.rootToken);
      const root = await s.api('GET', '/v1/tokens/self', undefined, src.rootToken);
      assert.equal(root.status, 200, 'the source root token works on the restored vault');
    } finally {
      await s.close();
    }
  });

  it('restores into a fresh PostgreSQL database; the dump is identical and the old tokens still read', NEEDS_PG, async () => {
    const db = (await freshPgDatabase())!;
    const dir = join(work, 'restored-pg-key');
    try {
      const cfg = loadConfig({ 'data-dir': dir, 'database-url': db.url }, {});
      const r = await restoreBackupFile(cfg, file, { passphrase: PASS }, silent);
      assert.equal(r.verified, true);
      assert.equal(r.masterKeyFile, join(dir, 'master.key'));
      assertSameAsBackup(body, await storedDump(cfg));
      const s = await startServer({ dataDir: dir, settings: { 'database-url': db.url } });
      try {
        await assertTokensWork(s, seeded, src.rootToken);
      } finally {
        await s.close();
      }
    } finally {
      await db.drop();
    }
  });

  it(
    'restores into PostgreSQL with a locale collation (en-US orders names differently than SQLite) and reads back identical',
    NEEDS_PG,
    async (t) => {
      const db = await icuPgDatabase();
      if (!db) {
        t.skip('this PostgreSQL cannot create an ICU database');
        return;
      }
      const dir = join(work, 'restored-icu-key');
      try {
        const cfg = loadConfig({ 'data-dir': dir, 'database-url': db.url }, {});
        const r = await restoreBackupFile(cfg, file, { passphrase: PASS }, silent);
        assert.equal(r.verified, true);
        assertSameAsBackup(body, await storedDump(cfg));
      } finally {
        await db.drop();
      }
    },
  );
});

describe('a PostgreSQL-sourced backup restores into SQLite', NEEDS_PG, () => {
  it('dump identical, old tokens read', async () => {
    const src = await startOn('postgres');
    const work = tempDir('hush-bk-pg2sq-');
    try {
      const seeded = await seedVault(src);
      const file = join(work, 'pg.pgp');
      const r = await backupOverHttp(src, file, { passphrase: PASS });
      assert.equal(r.status, 200, JSON.stringify(r.error));
      const body = (await backupFileLines(file, { passphrase: PASS })).slice(1);
      assert.equal(JSON.parse((await backupFileLines(file, { passphrase: PASS }))[0]).source, 'postgres');
      const dir = join(work, 'restored');
      const cfg = loadConfig({ 'data-dir': dir }, {});
      const res = await restoreBackupFile(cfg, file, { passphrase: PASS }, silent);
      assert.equal(res.verified, true);
      assertSameAsBackup(body, await storedDump(cfg));
      const s = await startServer({ dataDir: dir });
      try {
        await assertTokensWork(s, seeded, src.rootToken);
      } finally {
        await s.close();
      }
    } finally {
      await src.close();
      rmSync(work, { recursive: true, force: true });
    }
  });
});
