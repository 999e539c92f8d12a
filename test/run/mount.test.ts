import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { dotenvLine } from '../../cli/run/mount.js';
import { fixture, hush, nodeChild, startHush, type RunFixture } from './util.js';

const SECRETS = {
  DB_PASSWORD: 'pg-Secret-0042',
  MULTI: 'line one\nline two',
  QUOTES: `it's "quoted" #not-a-comment`,
  BACKSLASH: 'C:\\path\\new \\n',
  SPACES: '  padded  ',
};
let f: RunFixture;
before(async () => {
  f = await fixture(SECRETS);
});
after(async () => {
  await f.close();
});

/** Prints the mount file's mode and content and its own env, as JSON. */
const INSPECT = nodeChild(`
  const fs = require('fs');
  const p = process.env.MOUNT;
  const st = fs.statSync(p);
  process.stdout.write(JSON.stringify({ mode: st.mode & 0o777, content: fs.readFileSync(p, 'utf8'), db: process.env.DB_PASSWORD ?? null }));
`);

describe('hush run --mount', () => {
  test('dotenv (default): a 0600 file that dotenv reads back exactly, removed when the child exits; env still set', async () => {
    const file = join(f.dir, 'run', 'secrets', 'app.env');
    const r = await hush(['run', '--mount', file, '--', ...INSPECT], { ...f.env, MOUNT: file });
    assert.equal(r.code, 0, r.stderr);
    const seen = JSON.parse(r.out);
    assert.equal(seen.mode, 0o600);
    assert.deepEqual(parseDotenv(seen.content), SECRETS);
    assert.equal(seen.db, SECRETS.DB_PASSWORD);
    assert.equal(existsSync(file), false, 'removed after exit');
  });

  test('json (by extension) with --no-env: values only in the file, not in the environment', async () => {
    const file = join(f.dir, 'app.json');
    const r = await hush(['run', '--mount', file, '--no-env', '--', ...INSPECT], { ...f.env, MOUNT: file });
    assert.equal(r.code, 0, r.stderr);
    const seen = JSON.parse(r.out);
    assert.equal(seen.mode, 0o600);
    assert.deepEqual(JSON.parse(seen.content), SECRETS);
    assert.equal(seen.db, null);
    assert.equal(existsSync(file), false);
  });

  test('raw: one bare value for *_FILE conventions (needs --only with one name)', async () => {
    const file = join(f.dir, 'db_password');
    const r = await hush(['run', '--only', 'DB_PASSWORD', '--mount', file, '--mount-format', 'raw', '--', ...INSPECT], {
      ...f.env,
      MOUNT: file,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.out).content, SECRETS.DB_PASSWORD);
    const many = await hush(['run', '--mount', file, '--mount-format', 'raw', '--', 'true'], f.env);
    assert.equal(many.code, 2);
    assert.match(many.stderr, /--only KEY/);
  });

  test('removed when hush is stopped by a signal and when the child dies by one', async () => {
    const file = join(f.dir, 'signal.env');
    const h = startHush(['run', '--mount', file, '--', 'sh', '-c', `trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done`], f.env);
    await h.waitOut('ready');
    assert.ok(existsSync(file));
    process.kill(h.child.pid!, 'SIGTERM');
    assert.equal((await h.done).code, 0);
    assert.equal(existsSync(file), false);
    const k = await hush(['run', '--mount', file, '--', 'sh', '-c', 'kill -KILL $$'], f.env);
    assert.equal(k.code, 137);
    assert.equal(existsSync(file), false);
  });

  test('a value no dotenv quoting can carry is refused, not written wrong', () => {
    assert.throws(() => dotenvLine('X', `a'b"c\`d`), /use --mount-format json/);
    assert.equal(parseDotenv(dotenvLine('X', `a'b"c`)).X, `a'b"c`);
  });
});
