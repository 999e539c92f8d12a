import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, hush, nodeChild, type RunFixture } from './util.js';

let f: RunFixture;
before(async () => {
  f = await fixture({ DB_PASSWORD: 'pg-Secret-0042', PORT: '8080' });
});
after(async () => {
  await f.close();
});

describe('hush run: exit status', () => {
  test("the child's exit code, exactly: 0, 1, 42", async () => {
    for (const code of [0, 1, 42]) {
      const r = await hush(['run', '--', 'sh', '-c', `exit ${code}`], f.env);
      assert.equal(r.code, code, `exit ${code}: ${r.stderr}`);
      assert.equal(r.stderr, '', 'hush adds nothing to stderr when all is well');
    }
  });

  test('death by a signal gives 128+N: SIGKILL → 137, SIGTERM → 143', async () => {
    const k = await hush(['run', '--', 'sh', '-c', 'kill -KILL $$'], f.env);
    assert.equal(k.code, 137);
    assert.equal(k.signal, null, 'hush itself exits normally');
    const t = await hush(['run', '--', 'sh', '-c', 'kill -TERM $$'], f.env);
    assert.equal(t.code, 143);
  });

  test('argv reaches the child byte for byte: spaces, quotes, $(...), ;, newlines, empty strings, numbers', async () => {
    const args = [
      'a b',
      '"double"',
      "'single'",
      '$(touch pwned)',
      '`id`',
      'x; rm -rf /',
      'l1\nl2',
      '',
      '  ',
      '007',
      '1e3',
      '--env',
      '-p',
      '--',
      'ünï©ødé',
      '*',
      '$HOME',
      '\\',
    ];
    const r = await hush(['run', '--', ...nodeChild('process.stdout.write(JSON.stringify(process.argv.slice(1)))'), ...args], f.env, {
      cwd: f.dir,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.out), args);
    assert.equal(existsSync(join(f.dir, 'pwned')), false, 'no shell ever saw the arguments');
  });

  test('--command runs a shell string; words after -- become $1, $2', async () => {
    const r = await hush(['run', '--command', 'printf "%s|" "$DB_PASSWORD" "$1" "$2"; exit 3', '--', 'one two', 'three'], f.env);
    assert.equal(r.code, 3);
    assert.equal(r.out, 'pg-Secret-0042|one two|three|');
  });

  test('command not found → 127, not executable → 126, with the reason on stderr', async () => {
    const nf = await hush(['run', '--', 'no-such-command-hush-test'], f.env);
    assert.equal(nf.code, 127);
    assert.match(nf.stderr, /^hush: no-such-command-hush-test: command not found; the command was not started\n$/);
    const file = join(f.dir, 'not-exec.sh');
    writeFileSync(file, '#!/bin/sh\necho hi\n');
    chmodSync(file, 0o644);
    const ne = await hush(['run', '--', file], f.env);
    assert.equal(ne.code, 126);
    assert.match(ne.stderr, /cannot execute \(EACCES\)/);
  });

  test('usage errors → 2: no command, a command without --, --no-env without --mount, a bad duration', async () => {
    const none = await hush(['run'], f.env);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no command given/);
    const stray = await hush(['run', 'echo', 'hi'], f.env);
    assert.equal(stray.code, 2);
    assert.match(stray.stderr, /put the command after --/);
    const noEnv = await hush(['run', '--no-env', '--', 'true'], f.env);
    assert.equal(noEnv.code, 2);
    const grace = await hush(['run', '--watch', '--watch-grace', 'soon', '--', 'true'], f.env);
    assert.equal(grace.code, 2);
    const target = await hush(['run', '--', 'true'], { ...f.env, HUSH_ENV: '' });
    assert.equal(target.code, 2);
    assert.match(target.stderr, /no environment given/);
  });

  test('auth failures → 4, a missing environment → 5; the child never starts', async () => {
    const marker = join(f.dir, 'started-auth');
    const cmd = ['--', 'sh', '-c', `touch ${marker}`];
    const noToken = await hush(['run', ...cmd], { ...f.env, HUSH_TOKEN: '' });
    assert.equal(noToken.code, 4);
    assert.match(noToken.stderr, /no API token/);
    const malformed = await hush(['run', ...cmd], { ...f.env, HUSH_TOKEN: 'hush_notARealToken' });
    assert.equal(malformed.code, 4);
    assert.match(malformed.stderr, /not a valid Hush token/);
    const forbidden = await hush(['run', '--env', 'staging', ...cmd], f.env);
    assert.equal(forbidden.code, 4, forbidden.stderr);
    await f.server.api('POST', '/v1/projects/app/envs', { name: 'empty' });
    const missing = await hush(['run', '--project', 'nope', ...cmd], { ...f.env, HUSH_TOKEN: f.server.rootToken });
    assert.equal(missing.code, 5, missing.stderr);
    assert.equal(existsSync(marker), false);
  });

  test('server unreachable, no fallback → 7 with a clear message; the child never starts', async () => {
    const marker = join(f.dir, 'started-down');
    const started = Date.now();
    const r = await hush(['run', '--', 'sh', '-c', `touch ${marker}`], { ...f.env, HUSH_ADDR: 'http://127.0.0.1:1' });
    assert.equal(r.code, 7);
    assert.match(
      r.stderr,
      /^hush: cannot reach the Hush server at http:\/\/127\.0\.0\.1:1 .*--fallback FILE.*the command was not started\n$/,
    );
    assert.equal(existsSync(marker), false);
    assert.ok(Date.now() - started < 10_000, 'retries are bounded');
  });
});
