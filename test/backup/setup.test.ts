/**
 * Backup setup errors surface before any work is done: a server with a bad
 * --backup-* setup refuses to start without initialising a vault (whose root
 * token would never be shown), a bad signing key or an empty key set is
 * refused before a database snapshot is opened, and a scheduled-style write
 * that fails audits the real reason.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../vault/config.js';
import { buildServer } from '../../vault/server.js';
import { createBackup, writeAtomically } from '../../vault/backup/backup-service.js';
import { SYSTEM_CONTEXT } from '../../vault/services/audit/audit-service.js';
import { logCapture, startServer, tempDir } from '../helpers/server.js';

describe('backup setup errors', () => {
  const work = tempDir('hush-bk-setup-');
  const passFile = join(work, 'pass.txt');
  writeFileSync(passFile, 'a passphrase\n', { mode: 0o600 });
  const notAKey = join(work, 'not-a-key.asc');
  writeFileSync(notAKey, 'hello\n');
  after(() => rmSync(work, { recursive: true, force: true }));

  const bad: [string, Record<string, unknown>][] = [
    ['an invalid schedule', { 'backup-schedule': 'not cron', 'backup-dir': join(work, 'b'), 'backup-passphrase-file': passFile }],
    ['no backup dir', { 'backup-schedule': '0 0 3 * * *', 'backup-passphrase-file': passFile }],
    ['no recipient and no passphrase', { 'backup-schedule': '0 0 3 * * *', 'backup-dir': join(work, 'b') }],
    [
      'a missing recipient file',
      { 'backup-schedule': '0 0 3 * * *', 'backup-dir': join(work, 'b'), 'backup-recipient': [join(work, 'nope.asc')] },
    ],
    ['an unusable recipient key', { 'backup-schedule': '0 0 3 * * *', 'backup-dir': join(work, 'b'), 'backup-recipient': [notAKey] }],
  ];
  it('an unknown backup time zone is refused when the configuration is read, before anything else', () => {
    assert.throws(() => loadConfig({ 'backup-timezone': 'Bad/Zone' }, {}), /^.*invalid --backup-timezone: not a time zone/);
    assert.equal(loadConfig({ 'backup-timezone': 'Europe/Berlin' }, {}).backupTimezone, 'Europe/Berlin');
  });

  for (const [what, settings] of bad) {
    it(`${what}: the server refuses to start and initialises nothing`, async () => {
      const dataDir = tempDir('hush-bk-setup-dd-');
      try {
        const cfg = loadConfig({ 'data-dir': dataDir, listen: '127.0.0.1:0', 'log-level': 'silent', ...settings }, {});
        await assert.rejects(buildServer(cfg, { logStream: logCapture() }), (e: any) => {
          assert.equal(e.code, 'config_invalid', e.message);
          assert.match(e.message, /--backup-|backup-schedule/, 'the message names the setting');
          return true;
        });
        assert.deepEqual(readdirSync(dataDir), [], 'no database or master.key was created');
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }

  it('a bad signing key, or neither recipients nor a passphrase, is refused before a snapshot is opened', async () => {
    const s = await startServer();
    try {
      let touched = 0;
      const c = new Proxy(s.server.container, {
        get(t, p, r) {
          if (p === 'db' || p === 'stores') touched++;
          return Reflect.get(t, p, r);
        },
      });
      await assert.rejects(createBackup(c, { passphrase: 'x', signingKey: { armored: 'not a key' } }, SYSTEM_CONTEXT), {
        code: 'backup_key_invalid',
      });
      await assert.rejects(createBackup(c, {}, SYSTEM_CONTEXT), { code: 'backup_key_invalid' });
      assert.equal(touched, 0, 'the database was not read');
    } finally {
      await s.close();
    }
  });

  it('a backup whose file cannot be written audits the write error, not a bare "closed early"', async () => {
    const s = await startServer();
    try {
      const blocker = join(work, 'blocker');
      writeFileSync(blocker, 'x');
      const run = await createBackup(s.server.container, { passphrase: 'x' }, SYSTEM_CONTEXT);
      await assert.rejects(writeAtomically(join(blocker, 'sub'), 'f.pgp', run.stream), { code: 'ENOTDIR' });
      await assert.rejects(run.done);
      const r = await s.api('GET', '/v1/audit?action=backup.create&outcome=error');
      assert.equal(r.status, 200);
      assert.equal(r.body.events.length, 1);
      assert.match(r.body.events[0].detail.error, /ENOTDIR/);
    } finally {
      await s.close();
    }
  });
});
