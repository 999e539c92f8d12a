import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SINGLE_FILE_CLI } from '../helpers/cli.js';
import { fixture, type RunFixture } from '../run/util.js';
import { BINARY, ensureBinary, runProgram } from './support.js';

const DIST = new URL('../../', import.meta.url).pathname;
const SERVER_ONLY =
  /^(vault|migrations)\/|node_modules\/(knex|fastify|@fastify|openpgp|better-sqlite3|pg|pino|croner|libsodium[^/]*|shamir-secret-sharing|@sinclair)\//;

let f: RunFixture;
let noNodePath: string;
before(async () => {
  f = await fixture({ DB_URL: 'postgres://db/app', API_KEY: 'k-123' });
  // A PATH with `env` and nothing else: no node on it.
  noNodePath = join(f.dir, 'bin');
  mkdirSync(noNodePath);
  symlinkSync('/usr/bin/env', join(noNodePath, 'env'));
});
after(async () => {
  await f.close();
});

/** Runs a client with only the variables a container would set, and no node on PATH. */
const clientRun = (argv0: string, args: string[]) =>
  runProgram(argv0, args, { PATH: noNodePath, HOME: f.dir, HUSH_ADDR: f.env.HUSH_ADDR, HUSH_TOKEN: f.token });

describe('the single-file client (dist/client/hush.cjs)', () => {
  test('bundles the client and nothing of the server', async () => {
    const inputs = JSON.parse(readFileSync(join(DIST, 'client', 'inputs.json'), 'utf8')) as { run: string[]; full: string[] };
    for (const part of ['run', 'full'] as const) {
      assert.ok(
        inputs[part].some((p) => p.startsWith('sdk/dist/')),
        `${part}: the SDK is bundled`,
      );
      assert.deepEqual(
        inputs[part].filter((p) => SERVER_ONLY.test(p)),
        [],
        `${part}: no server code`,
      );
    }
    assert.ok(!inputs.run.some((p) => p.includes('node_modules/yargs')), 'hush run never loads yargs');
  });

  test('runs with node given only the file (no node_modules, node not on PATH): hush run injects the secrets', async () => {
    assert.equal(spawnSync('/bin/sh', ['-c', 'command -v node'], { env: { PATH: noNodePath } }).status, 127, 'node is not on the PATH');
    const r = await clientRun(process.execPath, [SINGLE_FILE_CLI, 'run', '-p', 'app', '-e', 'prod', '--', 'env']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^DB_URL=postgres:\/\/db\/app$/m);
    assert.match(r.stdout, /^API_KEY=k-123$/m);
    assert.doesNotMatch(r.stdout, /HUSH_TOKEN/);
  });

  test('the other client commands work from the same file', async () => {
    const r = await clientRun(process.execPath, [SINGLE_FILE_CLI, 'secrets', 'list', '-p', 'app', '-e', 'prod', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /"API_KEY"/);
    assert.match(r.stdout, /"DB_URL"/);
    assert.equal((await clientRun(process.execPath, [SINGLE_FILE_CLI, '--version'])).stdout, '0.1.0 (client)\n');
  });

  test('server commands say where they are, in one line, exit 2', async () => {
    writeFileSync(join(f.dir, 'pass'), 'correct horse\n');
    writeFileSync(join(f.dir, 'b.pgp'), 'not a backup');
    for (const args of [
      ['server'],
      ['operator', 'init'],
      ['backup', 'verify', join(f.dir, 'b.pgp'), '--passphrase-file', join(f.dir, 'pass')],
    ]) {
      const r = await clientRun(process.execPath, [SINGLE_FILE_CLI, ...args]);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, /^hush: hush \S+( \S+)? needs the server package: install it with npm install -g hush-vault/, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
  });
});

describe('the single executable (npm run build:binary, dist/bin/hush)', () => {
  before(() => {
    ensureBinary();
  });

  test('hush run injects the secrets where no node is installed on PATH', async () => {
    const r = await clientRun(BINARY, ['run', '-p', 'app', '-e', 'prod', '--', 'env']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^DB_URL=postgres:\/\/db\/app$/m);
    assert.doesNotMatch(r.stdout, /HUSH_TOKEN/);
  });

  test('exit codes pass through, and errors are one line', async () => {
    assert.equal(
      (await clientRun(BINARY, ['run', '-p', 'app', '-e', 'prod', '--', 'env', 'sh', '-c', 'exit 42'])).status,
      127,
      'env: sh is not on this PATH',
    );
    const bad = await clientRun(BINARY, ['run', '-p', 'app', '-e', 'staging', '--', 'env']);
    assert.equal(bad.status, 4, 'the token reads app/prod only');
    assert.equal(bad.stderr, 'hush: this token lacks the grant read:app/staging; the command was not started\n');
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    assert.equal((await clientRun(BINARY, ['--version'])).stdout, '0.1.0 (client)\n');
  });
});
