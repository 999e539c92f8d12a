import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, hush, nodeChild, type RunFixture } from './util.js';

let f: RunFixture;
before(async () => {
  f = await fixture({ DB_PASSWORD: 'from-vault-db', API_KEY: 'from-vault-api', REGION: 'eu-west-1' });
});
after(async () => {
  await f.close();
});

const PRINT_ENV = nodeChild(
  'const e = process.env; process.stdout.write(JSON.stringify({ DB_PASSWORD: e.DB_PASSWORD, ' +
    'API_KEY: e.API_KEY, REGION: e.REGION, KEEP: e.KEEP, HUSH_TOKEN: e.HUSH_TOKEN ?? null, ' +
    'HUSH_TOKEN_FILE: e.HUSH_TOKEN_FILE ?? null, HUSH_ADDR: e.HUSH_ADDR ?? null }))',
);

async function childEnv(args: string[], extra: NodeJS.ProcessEnv = {}) {
  const r = await hush(['run', ...args, '--', ...PRINT_ENV], { ...f.env, ...extra });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.out) as Record<string, string | null>;
}

describe("hush run: the child's environment", () => {
  test('vault values override inherited variables; others are inherited', async () => {
    const e = await childEnv([], { DB_PASSWORD: 'inherited-db', API_KEY: 'inherited-api', KEEP: 'kept' });
    assert.equal(e.DB_PASSWORD, 'from-vault-db');
    assert.equal(e.API_KEY, 'from-vault-api');
    assert.equal(e.REGION, 'eu-west-1');
    assert.equal(e.KEEP, 'kept');
  });

  test('--preserve-env keeps every inherited variable that is set', async () => {
    const e = await childEnv(['--preserve-env'], { DB_PASSWORD: 'inherited-db', API_KEY: 'inherited-api' });
    assert.equal(e.DB_PASSWORD, 'inherited-db');
    assert.equal(e.API_KEY, 'inherited-api');
    assert.equal(e.REGION, 'eu-west-1', 'values not set in the environment still come from the vault');
  });

  test('--preserve-env=A keeps only A', async () => {
    const e = await childEnv(['--preserve-env=DB_PASSWORD'], { DB_PASSWORD: 'inherited-db', API_KEY: 'inherited-api' });
    assert.equal(e.DB_PASSWORD, 'inherited-db');
    assert.equal(e.API_KEY, 'from-vault-api');
  });

  test('HUSH_TOKEN (and HUSH_TOKEN_FILE) never reach the child, even with --preserve-env', async () => {
    const e = await childEnv(['--preserve-env'], { HUSH_TOKEN_FILE: '/run/secrets/hush' });
    assert.equal(e.HUSH_TOKEN, null);
    assert.equal(e.HUSH_TOKEN_FILE, null);
    assert.equal(e.HUSH_ADDR, f.server.url, 'the address is not a secret and stays');
  });

  test('--token-file reads the token from a file; it is not passed on', async () => {
    const file = join(f.dir, 'token');
    writeFileSync(file, `${f.token}\n`, { mode: 0o600 });
    const e = await childEnv(['--token-file', file], { HUSH_TOKEN: '' });
    assert.equal(e.DB_PASSWORD, 'from-vault-db');
    assert.equal(e.HUSH_TOKEN, null);
  });

  test('--only injects just those names and warns about names that do not exist', async () => {
    const r = await hush(['run', '--only', 'REGION,NOPE', '--', ...PRINT_ENV], f.env);
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.out);
    assert.equal(e.REGION, 'eu-west-1');
    assert.equal(e.DB_PASSWORD, undefined);
    assert.match(r.stderr, /warning: not in app\/prod: NOPE/);
  });

  test('flags name the target too, in every form (fast path and yargs alike)', async () => {
    const env = { ...f.env, HUSH_PROJECT: '', HUSH_ENV: '' };
    for (const form of [
      ['--project', 'app', '--env', 'prod'],
      ['-p', 'app', '-e', 'prod'],
      ['-p=app', '-e=prod'],
      ['--project=app', '--env=prod'],
    ]) {
      const r = await hush(['run', ...form, '--', ...PRINT_ENV], env);
      assert.equal(r.code, 0, `${form.join(' ')}: ${r.stderr}`);
      assert.equal(JSON.parse(r.out).REGION, 'eu-west-1');
    }
  });
});
