/**
 * Issue 21, second outside review, item 9: the docs showed
 * `hush tokens create … > backup.token`, a 0644 file holding a token.
 * `--out FILE` writes it 0600, never over an existing file or through a
 * symbolic link, and nothing on stdout.
 */
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkTokenFormat } from 'hush-vault-sdk/token-format';
import { runHush } from '../helpers/cli.js';
import { startServer, tempDir, type TestServer } from '../helpers/server.js';

describe('hush tokens create --out FILE (review item 9)', () => {
  let s: TestServer;
  let env: NodeJS.ProcessEnv;
  const dir = tempDir('hush-token-out-');
  before(async () => {
    s = await startServer();
    env = { HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken };
  });
  after(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the token to a new 0600 file (umask 022 or not), nothing on stdout; the token works', async () => {
    const file = join(dir, 'backup.token');
    const r = await runHush(['tokens', 'create', '--name', 'backup-bot', '--scope', 'backup', '--out', file], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(lstatSync(file).mode & 0o777, 0o600);
    const token = readFileSync(file, 'utf8').trim();
    assert.ok(checkTokenFormat(token).ok);
    assert.match(r.stderr, /mode 0600/);
    assert.ok(!r.stderr.includes(token));
    const self = await runHush(['tokens', 'list', '--json'], { env: { HUSH_ADDR: s.url, HUSH_TOKEN: token } });
    assert.equal(self.code, 0, self.stderr);
  });

  it('refuses an existing file (exit 6) or a symlink (exit 2) before any token is made', async () => {
    const existing = join(dir, 'taken.token');
    writeFileSync(existing, 'keep me\n');
    const link = join(dir, 'link.token');
    symlinkSync(join(dir, 'elsewhere'), link);
    const before = (await s.api('GET', '/v1/tokens')).body.tokens.length;
    const a = await runHush(['tokens', 'create', '--name', 'x', '--scope', 'backup', '--out', existing], { env });
    assert.equal(a.code, 6, a.stderr);
    assert.match(a.stderr, /already exists.*no token was created/);
    assert.equal(readFileSync(existing, 'utf8'), 'keep me\n');
    const b = await runHush(['tokens', 'create', '--name', 'x', '--scope', 'backup', '--out', link], { env });
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /no token was created/);
    assert.ok(!existsSync(join(dir, 'elsewhere')), 'nothing was written through the link');
    assert.equal((await s.api('GET', '/v1/tokens')).body.tokens.length, before, 'no token was created');
  });

  it('a refused create leaves no file behind', async () => {
    const file = join(dir, 'refused.token');
    const r = await runHush(['tokens', 'create', '--name', 'x', '--scope', 'nonsense:scope', '--out', file], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.ok(!existsSync(file));
  });
});
