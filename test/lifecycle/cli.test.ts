import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.js';
import { cli, oneErrorLine, rootCli, type Cli } from '../cli/helpers.js';

describe('hush secrets generate / policy / stale and --raw, against a real server', () => {
  let s: TestServer;
  let root: Cli;
  const T = ['-p', 'api', '-e', 'prod'];

  before(async () => {
    s = await startServer({ settings: { 'rotation-check-interval': '0' } });
    root = rootCli(s.url, s.rootToken);
    await root.json(['projects', 'create', 'api']);
    await root.json(['envs', 'create', 'prod', '-p', 'api']);
    await root.json(['envs', 'create', 'shared', '-p', 'api']);
  });
  after(() => s.close());

  it('generate prints no value unless --show, and then the value alone on stdout', async () => {
    const quiet = await root.run(['secrets', 'generate', 'SESSION', '--charset', 'hex', '--length', '40', ...T]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stdout, /^Generated SESSION in api\/prod \(version 1, 40 hex characters, 160 bits; no rotation policy\)\.\n$/);
    const stored = (await root.run(['secrets', 'get', 'SESSION', ...T])).stdout;
    assert.match(stored, /^[0-9a-f]{40}$/);
    assert.ok(!quiet.stdout.includes(stored) && !quiet.stderr.includes(stored));
    const shown = await root.run(['secrets', 'generate', 'PHRASE', '--charset', 'words', '--length', '5', '--show', ...T]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^[a-z]+(-[a-z]+){4}$/);
    assert.match(shown.stderr, /Generated PHRASE/);
    assert.equal((await root.run(['secrets', 'get', 'PHRASE', ...T])).stdout, shown.stdout);
  });

  it('generate --auto without --rotate-every is a usage error; a bad length one readable line', async () => {
    const r = await root.run(['secrets', 'generate', 'X', '--auto', ...T]);
    assert.equal(r.code, 2);
    assert.match(oneErrorLine(r.stderr), /--auto needs --rotate-every/);
    const bad = await root.run(['secrets', 'generate', 'X', '--length', '3', ...T]);
    assert.equal(bad.code, 2);
    assert.match(oneErrorLine(bad.stderr), /length for charset alnum must be a whole number from 8 to 4096/);
  });

  it('policy sets and shows; stale lists nothing while nothing is due', async () => {
    const set = await root.run(['secrets', 'policy', 'SESSION', '--rotate-every', '90d', ...T]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /SESSION in api\/prod \(version 1\): rotates every 90d \(reminder\); due \d{4}-/);
    const shown = await root.json(['secrets', 'policy', 'SESSION', ...T]);
    assert.equal(shown.rotateEvery, '90d');
    const gen = await root.json(['secrets', 'generate', 'TOKEN_KEY', '--rotate-every', '7d', '--auto', ...T]);
    assert.equal(gen.policy.auto, true);
    assert.equal(gen.value, undefined);
    const stale = await root.run(['secrets', 'stale']);
    assert.equal(stale.code, 0, stale.stderr);
    assert.equal(stale.stdout, 'No overdue secrets.\n');
    assert.deepEqual((await root.json(['secrets', 'stale'])).secrets, []);
  });

  it('get, export and run resolve references; --raw gives the stored text; a forbidden reference is one error line', async () => {
    await root.run(['secrets', 'set', 'HOST=db.internal', ...T]);
    await root.run(['secrets', 'set', 'URL=postgres://${HOST}/app', 'LIT=a$${b}', ...T]);
    await root.run(['secrets', 'set', 'REGION=eu', '-p', 'api', '-e', 'shared']);
    await root.run(['secrets', 'set', 'ZONE=${shared.REGION}-1', ...T]);
    assert.equal((await root.run(['secrets', 'get', 'URL', ...T])).stdout, 'postgres://db.internal/app');
    assert.equal((await root.run(['secrets', 'get', 'URL', '--raw', ...T])).stdout, 'postgres://${HOST}/app');
    const exp = await root.run(['secrets', 'export', '--only', 'URL,LIT,ZONE', '--format', 'json', ...T]);
    assert.deepEqual(JSON.parse(exp.stdout), { LIT: 'a${b}', URL: 'postgres://db.internal/app', ZONE: 'eu-1' });
    const raw = await root.run(['secrets', 'export', '--only', 'URL,LIT', '--format', 'json', '--raw', ...T]);
    assert.deepEqual(JSON.parse(raw.stdout), { LIT: 'a$${b}', URL: 'postgres://${HOST}/app' });
    const run = await root.run([
      'run',
      ...T,
      '--',
      process.execPath,
      '-e',
      'process.stdout.write(process.env.URL + "|" + process.env.ZONE)',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'postgres://db.internal/app|eu-1');
    const runRaw = await root.run(['run', '--raw', ...T, '--', process.execPath, '-e', 'process.stdout.write(process.env.URL)']);
    assert.equal(runRaw.stdout, 'postgres://${HOST}/app');

    const t = await root.json(['tokens', 'create', '--name', 'prod-only', '--scope', 'read:api/prod', '--ttl', '1h']);
    const reader = cli({ HUSH_ADDR: s.url, HUSH_TOKEN: t.token });
    const denied = await reader.run(['secrets', 'get', 'ZONE', ...T]);
    assert.equal(denied.code, 4);
    assert.match(
      oneErrorLine(denied.stderr),
      /reference \$\{shared\.REGION\} in api\/prod\/ZONE names api\/shared, which this token may not read/,
    );
    assert.doesNotMatch(denied.stderr + denied.stdout, /eu/);
    const deniedRun = await reader.run(['run', ...T, '--', process.execPath, '-e', '0']);
    assert.notEqual(deniedRun.code, 0);
    assert.match(deniedRun.stderr, /reference \$\{shared\.REGION\}/);
    assert.equal((await reader.run(['secrets', 'get', 'ZONE', '--raw', ...T])).stdout, '${shared.REGION}-1');
  });
});
