/**
 * Issue 21, second outside review, items 5 and 6: `hush backup restore
 * --data-dir /proc/x` never ended (Node's recursive mkdir retries forever
 * there), and other unusable data dirs printed raw errno text (ENOTDIR,
 * EACCES, EROFS). Each must end at once with one readable line naming the
 * path and what is wrong, exit 2, for `hush server` and `hush backup
 * restore`, with SQLite and (for its generated master.key) PostgreSQL.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runHush } from '../helpers/cli.js';
import { IS_ROOT, NOBODY, NOBODY_SKIP, PROC_SKIP } from '../helpers/preconditions.js';
import { freshPgDatabase, PG_URL, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { failingStart, masterKeyFile } from './support.js';

const work = tempDir('hush-datadir-');
const aFile = join(work, 'a-file');
writeFileSync(aFile, 'not a directory\n');

/** A read-only file system to point at (a tmpfs mounted ro), or why there is none here. */
const readOnly = join(work, 'ro');
mkdirSync(readOnly);
const RO_SKIP: string | false =
  IS_ROOT && spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', readOnly]).status === 0
    ? false
    : 'needs root and permission to mount a read-only tmpfs (EROFS)';

/** [case, data dir, what the line must say]. */
const CASES: [string, string, RegExp, string | false][] = [
  ['under /proc (the restore never ended)', '/proc/hush-x', /a directory cannot be made there/, PROC_SKIP],
  ['a file', aFile, /it exists and is not a directory/, false],
  ['under a file (ENOTDIR)', join(aFile, 'x'), /a part of the path is a file, not a directory/, false],
  ['on a read-only file system (EROFS)', join(readOnly, 'x'), /it is on a read-only file system/, RO_SKIP],
  ['a read-only file system itself (EROFS)', readOnly, /it is on a read-only file system/, RO_SKIP],
];

function assertOneLine(
  r: { code: number | null; signal?: NodeJS.Signals | null; stderr: string; stdout: string },
  dir: string,
  says: RegExp,
): void {
  assert.equal(r.signal ?? null, null, 'it ended by itself');
  assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(lines[0].includes(`data dir ${dir} cannot be used`), lines[0]);
  assert.match(lines[0], says);
  assert.doesNotMatch(lines[0], /\bE[A-Z]{3,}\b: |errno|at [a-zA-Z]+ \(/, 'no raw errno text or stack');
}

describe('unusable data dirs: one readable line, exit 2 (review items 5 and 6)', () => {
  let s: TestServer;
  let backup = '';
  const pass = join(work, 'pass');
  before(async () => {
    writeFileSync(pass, 'data dir test passphrase\n', { mode: 0o600 });
    s = await startServer();
    await s.api('POST', '/v1/projects', { name: 'web' });
    backup = join(work, 'b.hush');
    const r = await runHush(['backup', 'create', '--passphrase-file', pass, '--out', backup], {
      env: { HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken },
    });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await s?.close();
    if (!RO_SKIP) spawnSync('umount', [readOnly]);
    rmSync(work, { recursive: true, force: true });
  });

  for (const [name, dir, says, skip] of CASES) {
    it(`hush backup restore --data-dir ${name}`, { skip }, async () => {
      const r = await runHush(['backup', 'restore', backup, '--passphrase-file', pass, '--data-dir', dir], { timeoutMs: 60_000 });
      assertOneLine(r, dir, says);
    });

    it(`hush server --data-dir ${name}`, { skip }, async () => {
      assertOneLine(await failingStart(['--data-dir', dir, '--listen', '127.0.0.1:0']), dir, says);
    });
  }

  it('hush server --data-dir where the user may not write (EACCES), as nobody', { skip: NOBODY_SKIP }, async () => {
    const closed = join(work, 'closed');
    mkdirSync(closed, { mode: 0o700 });
    chmodSync(closed, 0o700);
    const dir = join(closed, 'x');
    assertOneLine(
      await failingStart(['--data-dir', dir, '--listen', '127.0.0.1:0'], {}, { uid: NOBODY, gid: NOBODY }),
      dir,
      /permission denied for this user \(uid 65534\)/,
    );
  });

  it(
    'on PostgreSQL, where the data dir holds only a generated master.key: server start and restore',
    { skip: PG_URL ? PROC_SKIP : 'PostgreSQL not tested: HUSH_TEST_PG_URL is not set' },
    async () => {
      const db = (await freshPgDatabase())!;
      try {
        assertOneLine(
          await failingStart(['--data-dir', '/proc/hush-x', '--database-url', db.url, '--listen', '127.0.0.1:0']),
          '/proc/hush-x',
          /a directory cannot be made there/,
        );
        const r = await runHush(
          ['backup', 'restore', backup, '--passphrase-file', pass, '--data-dir', join(aFile, 'x'), '--database-url', db.url],
          { timeoutMs: 60_000 },
        );
        assertOneLine(r, join(aFile, 'x'), /a part of the path is a file/);
        // A good key file and the same bad data dir: nothing needs the dir, the restore works.
        const ok = await runHush(
          ['backup', 'restore', backup, '--passphrase-file', pass, '--database-url', db.url, '--master-key-file', masterKeyFile()],
          { timeoutMs: 60_000 },
        );
        assert.equal(ok.code, 0, ok.stderr);
      } finally {
        await db.drop();
      }
    },
  );
});
