/**
 * Backups made by an earlier release restore. test/fixtures/backup-c7a66af.asc
 * is a format-1 backup written by commit c7a66af (before the store moved to
 * one SQL text per query): 2 projects, 5 environments (one empty), secrets
 * with history and deletions, tokens (a child, a revoked one) and a
 * single-chain audit log, encrypted with the passphrase below.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../vault/config.js';
import { createLogger } from '../../vault/server.js';
import { restoreBackupFile, verifyBackupFile } from '../../vault/backup/local.js';
import { freshPgDatabase, NEEDS_PG, tempDir } from '../helpers/server.js';
import { assertSameAsBackup, backupFileLines, storedDump } from './support.js';
import { openConfiguredDb } from '../../vault/vault.js';
import { historyStoreFactory } from '../../vault/store/history-store.js';
import { secretStoreFactory } from '../../vault/store/secret-store.js';
import type { Config } from '../../vault/config.js';

/** Env history after restoring a backup without revisions: every version has one, and each env's current revision rebuilds to its live secrets. */
async function assertHistoryRebuilt(cfg: Readonly<Config>): Promise<void> {
  const { db } = openConfiguredDb(cfg);
  try {
    const history = historyStoreFactory(db);
    const secrets = secretStoreFactory(db);
    assert.equal(Number((await db('secret_versions').whereNull('revision').count({ n: '*' }))[0].n), 0, 'every version has a revision');
    for (const e of await db('environments').select('id', 'revision')) {
      const live = (await secrets.listLive(e.id)).map((s) => `${s.name} v${s.version}`);
      const rebuilt = (await history.valuesAt(e.id, Number(e.revision))).map((v) => `${v.name} v${v.version}`);
      assert.deepEqual(rebuilt, live, `env ${e.id} at its revision ${e.revision}`);
      assert.deepEqual(await history.valuesAt(e.id, 0), [], 'revision 0 is empty');
    }
  } finally {
    await db.destroy();
  }
}

const FILE = new URL('../../../test/fixtures/backup-c7a66af.asc', import.meta.url).pathname;
const PASS = 'previous release backup';
const COUNTS = { projects: 2, envs: 5, secrets: 48, versions: 80, tokens: 5, audit: 35 };
const silent = createLogger('silent');

describe('a backup written by an earlier release (c7a66af)', () => {
  const work = tempDir('hush-bk-compat-');
  after(() => rmSync(work, { recursive: true, force: true }));

  it('verifies: header, counts, body hash and audit chain', async () => {
    const r = await verifyBackupFile(FILE, { passphrase: PASS });
    assert.deepEqual(r.counts, COUNTS);
    assert.equal(r.auditChecked, COUNTS.audit);
  });

  it('restores into SQLite and reads back line for line', async () => {
    const body = (await backupFileLines(FILE, { passphrase: PASS })).slice(1);
    const cfg = loadConfig({ 'data-dir': join(work, 'sqlite') }, {});
    const r = await restoreBackupFile(cfg, FILE, { passphrase: PASS }, silent);
    assert.equal(r.verified, true);
    assert.deepEqual(r.counts, COUNTS);
    assertSameAsBackup(body, await storedDump(cfg));
    await assertHistoryRebuilt(cfg);
  });

  it('restores into PostgreSQL and reads back line for line', NEEDS_PG, async () => {
    const body = (await backupFileLines(FILE, { passphrase: PASS })).slice(1);
    const db = (await freshPgDatabase())!;
    try {
      const cfg = loadConfig({ 'data-dir': join(work, 'pg'), 'database-url': db.url }, {});
      const r = await restoreBackupFile(cfg, FILE, { passphrase: PASS }, silent);
      assert.equal(r.verified, true);
      assertSameAsBackup(body, await storedDump(cfg));
      await assertHistoryRebuilt(cfg);
    } finally {
      await db.drop();
    }
  });
});
