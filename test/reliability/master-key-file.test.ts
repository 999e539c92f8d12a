/**
 * The master key file is missing, unreadable, a directory, too open or not a
 * key, at the start of a real `hush server` process: one clear line on
 * stderr, non-zero exit, the database untouched.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { NOBODY, NOBODY_SKIP } from '../helpers/preconditions.js';
import { tempDir } from '../helpers/server.js';
import { assertNoLeaks, call, failingStart, makeEnv, masterKeyFile, secretValue, spawnHush } from './support.js';

const BASE = '/v1/projects/fault/envs/prod/secrets';

describe('the master key file is missing or unreadable at start', () => {
  let dataDir: string;
  let keyFile: string;
  let dbHash: string;
  const hashDb = () =>
    createHash('sha256')
      .update(readFileSync(join(dataDir, 'hush.db')))
      .digest('hex');

  /** One line on stderr, "hush: " first, no stack, non-zero exit, the database untouched. */
  async function refused(args: string[], pattern: RegExp, env: NodeJS.ProcessEnv = {}, opts: { uid?: number; gid?: number } = {}) {
    const r = await failingStart(['--data-dir', dataDir, '--listen', '127.0.0.1:0', ...args], env, opts);
    assert.notEqual(r.code, 0, `started anyway: ${r.stderr}`);
    assert.notEqual(r.code, null);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `more than one line on stderr:\n${r.stderr}`);
    assert.match(lines[0], /^hush: /);
    assert.match(lines[0], pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(r.stdout.trim(), '', 'nothing on stdout');
    assert.equal(hashDb(), dbHash, 'the database was modified');
    return lines[0];
  }

  // Every test below starts from this stopped vault, so each runs alone as well as in order.
  before(async () => {
    dataDir = join(tempDir('hush-mk-'), 'data');
    keyFile = masterKeyFile();
    const srv = await spawnHush(['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--master-key-file', keyFile], {}, { label: 'mk init' });
    await makeEnv(srv.url, srv.rootToken!, 'fault', 'prod');
    assert.equal((await call(srv.url, 'PUT', `${BASE}/K`, { token: srv.rootToken, body: { value: secretValue() } })).status, 200);
    assert.equal(await srv.stop(), 0);
    dbHash = hashDb();
  });

  it('missing (flag and HUSH_MASTER_KEY_FILE)', async () => {
    const gone = join(tempDir(), 'nope.key');
    await refused(['--master-key-file', gone], /master key file .*nope\.key does not exist/);
    await refused([], /master key file .*nope\.key does not exist/, { HUSH_MASTER_KEY_FILE: gone });
  });

  it('missing on an empty data dir: no vault is created with a fresh key instead', async () => {
    const empty = join(tempDir(), 'fresh');
    const r = await failingStart(['--data-dir', empty, '--listen', '127.0.0.1:0', '--master-key-file', join(empty, 'x.key')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr.trim(), /^hush: .*does not exist$/);
    assert.ok(!existsSync(join(empty, 'master.key')), 'a dev key was generated instead');
  });

  it('a directory, an empty file, not base64, the wrong length', async () => {
    const dir = tempDir();
    await refused(['--master-key-file', dir], /is not a regular file/);
    for (const [content, pattern] of [
      ['', /not base64|must decode to 32 bytes/],
      ['not a key!\n', /not base64/],
      [randomBytes(16).toString('base64'), /32 bytes/],
    ] as const) {
      const f = join(tempDir(), 'bad.key');
      writeFileSync(f, content, { mode: 0o600 });
      const line = await refused(['--master-key-file', f], pattern);
      if (content) assert.ok(!line.includes(content.trim()), 'the key file content is echoed');
    }
  });

  it('readable by group or others', async () => {
    const f = join(tempDir(), 'open.key');
    writeFileSync(f, readFileSync(keyFile));
    chmodSync(f, 0o644);
    await refused(['--master-key-file', f], /readable by group or others \(mode 644\); run: chmod 600/);
  });

  it('a systemd credential (0440, the ACL mask of newer systemd) is accepted inside $CREDENTIALS_DIRECTORY only, and never 0444', async () => {
    const creds = tempDir('hush-creds-');
    const f = join(creds, 'hush-master-key');
    writeFileSync(f, readFileSync(keyFile));
    chmodSync(f, 0o440);
    // Outside a credentials directory, 0440 is refused as before.
    await refused(['--master-key-file', f], /readable by group or others \(mode 440\)/);
    // A link from the credentials directory to a key elsewhere gets no exception.
    const elsewhere = join(tempDir(), 'k');
    writeFileSync(elsewhere, readFileSync(keyFile));
    chmodSync(elsewhere, 0o440);
    const other = tempDir('hush-creds-');
    symlinkSync(elsewhere, join(other, 'hush-master-key'));
    await refused(['--master-key-file', join(other, 'hush-master-key')], /mode 440/, { CREDENTIALS_DIRECTORY: other });
    chmodSync(f, 0o444);
    await refused(['--master-key-file', f], /mode 444/, { CREDENTIALS_DIRECTORY: creds });
    chmodSync(f, 0o440);
    const srv = await spawnHush(
      ['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--master-key-file', f],
      { CREDENTIALS_DIRECTORY: creds },
      { label: 'mk credential' },
    );
    // It opened the vault with that key (a wrong or refused key would have stopped the start).
    assert.equal((await call(srv.url, 'GET', '/v1/sys/health')).status, 200);
    assert.equal(await srv.stop(), 0);
    dbHash = hashDb();
  });

  it('unreadable by the server user (EACCES)', { skip: NOBODY_SKIP }, async () => {
    // The server runs as nobody; the key file stays root's, mode 0600.
    const nobody = NOBODY;
    const own = join(tempDir('hush-mk-nobody-'), 'data');
    cpSync(dataDir, own, { recursive: true });
    for (const f of ['', ...readdirSync(own)]) chownSync(join(own, f), nobody, nobody);
    chmodSync(join(own, '..'), 0o755);
    const saved = dataDir;
    dataDir = own;
    dbHash = hashDb();
    try {
      await refused(
        ['--master-key-file', keyFile],
        /cannot be read \(EACCES\)|permission denied/i,
        { HOME: '/tmp' },
        { uid: nobody, gid: nobody },
      );
    } finally {
      dataDir = saved;
      dbHash = hashDb();
    }
  });

  it('the wrong key: wrong_master_key, before anything is written', async () => {
    const other = masterKeyFile();
    await refused(['--master-key-file', other], /master key/i);
  });

  it('the right key still opens it', async () => {
    const srv = await spawnHush(
      ['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--master-key-file', keyFile],
      {},
      { label: 'mk reopen' },
    );
    assert.equal(await srv.stop(), 0);
  });
});

describe('master key file faults: totals', () => {
  it('no secret value or token in any server output or error', (t) => {
    assertNoLeaks(t, 'master key file');
  });
});
