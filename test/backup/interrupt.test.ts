/**
 * An interrupted restore (Ctrl-C: the CLI aborts the signal it passes to
 * restoreBackupFile) fails like any other restore error: the transaction
 * rolls back and what the restore created (SQLite file, data dir) is removed.
 * The same through a real `hush backup restore` process and a signal.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../vault/config.js';
import { createLogger } from '../../vault/server.js';
import { restoreBackupFile } from '../../vault/backup/local.js';
import { HUSH_BIN, waitExit, waitFor } from '../helpers/cli.js';
import { startServer, tempDir, type TestServer } from '../helpers/server.js';
import { backupOverHttp, listTree, seedVault } from './support.js';

const PASS = 'interrupt pass';

describe('interrupted restore', () => {
  let s: TestServer;
  const work = tempDir('hush-bk-int-');
  const file = join(work, 'b.pgp');
  before(async () => {
    s = await startServer();
    await seedVault(s, { projects: 1, envs: 2, secrets: 1500 });
    assert.equal((await backupOverHttp(s, file, { passphrase: PASS })).status, 200);
  });
  after(async () => {
    await s?.close();
    rmSync(work, { recursive: true, force: true });
  });

  for (const what of ['as the restore pass starts', 'once the restore has created its database'] as const) {
    const duringWrite = what !== 'as the restore pass starts';
    it(`an abort ${what} rejects with its reason and leaves nothing in the target`, async () => {
      const dir = join(work, `target-${duringWrite ? 'db' : 'start'}`);
      const ac = new AbortController();
      const reason = Object.assign(new Error('interrupted by test'), { code: 'interrupted' });
      let finished = false;
      let dbAtAbort = false;
      const abort = () => {
        dbAtAbort = existsSync(join(dir, 'hush.db'));
        ac.abort(reason);
      };
      await assert.rejects(
        restoreBackupFile(
          loadConfig({ 'data-dir': dir }, {}),
          file,
          { passphrase: PASS },
          createLogger('silent'),
          (phase) => {
            if (phase !== 'restore') return;
            // Aborts on what can be seen: the restore pass starting, or its SQLite file appearing (not after a guessed delay).
            if (!duringWrite) setImmediate(abort);
            else void waitFor(() => existsSync(join(dir, 'hush.db')), 'the restore to create its database', 60_000).then(abort);
          },
          ac.signal,
        ).then(() => {
          finished = true;
        }),
        (e) => e === reason,
      );
      assert.equal(finished, false);
      if (duringWrite) assert.equal(dbAtAbort, true, 'the abort came while the restore was writing its database');
      assert.deepEqual(listTree(dir), [], 'nothing left in the target data dir');
    });
  }

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(
      `${sig === 'SIGINT' ? 'Ctrl-C (SIGINT)' : 'SIGTERM'} to a running \`hush backup restore\` ` +
        `process: exit 130, one line, nothing left in the target`,
      async () => {
        const dir = join(work, `cli-${sig}`);
        const passFile = join(work, 'pass.txt');
        writeFileSync(passFile, PASS, { mode: 0o600 });
        const child = spawn(process.execPath, [HUSH_BIN, 'backup', 'restore', file, '--passphrase-file', passFile, '--data-dir', dir], {
          env: { PATH: process.env.PATH, HOME: process.env.HOME },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d) => {
          stderr += d;
        });
        child.stdout.resume();
        // The signal comes once the restore pass has created its database: the moment there is something to remove.
        await waitFor(() => existsSync(join(dir, 'hush.db')) || child.exitCode !== null, 'the restore to create its database', 60_000);
        child.kill(sig);
        const { code } = await waitExit(child, 60_000);
        assert.equal(code, 130, stderr);
        assert.equal(stderr.trim().split('\n').length, 1, stderr);
        assert.match(stderr, new RegExp(`^hush: restore interrupted by ${sig}; nothing was restored`));
        assert.deepEqual(listTree(dir), [], 'nothing left in the target data dir');
      },
    );
  }
});
