// hush secrets history / diff / rollback / copy, and the newcomer rough edges they fix:
// `diff` and `copy` exist, history names writers, a repeated import makes no revision.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.js';
import { seed } from '../helpers/seed.js';
import { createToken } from '../audit/util.js';
import { cli, oneErrorLine, rootCli, writeFile, type Cli } from './helpers.js';

describe('hush secrets history, diff, rollback, copy', () => {
  let s: TestServer;
  let root: Cli;
  let bot: Cli;

  before(async () => {
    s = await startServer();
    await seed(s.api, { api: { staging: {}, prod: { ONLY_PROD: 'p' } } });
    root = rootCli(s.url, s.rootToken, { HUSH_PROJECT: 'api', HUSH_ENV: 'staging' });
    bot = cli({
      HUSH_ADDR: s.url,
      HUSH_TOKEN: (await createToken(s, 'deploy-bot', ['write:api/*'])).token,
      HUSH_PROJECT: 'api',
      HUSH_ENV: 'staging',
    });
  });
  after(() => s.close());

  it('an import that changes nothing makes no revision; history names the writers', async () => {
    const file = writeFile(root.home, 'app.env', 'A=1\nB=2\n');
    assert.equal((await bot.json(['secrets', 'import', file])).revision, 1);
    const again = await bot.json(['secrets', 'import', file]);
    assert.deepEqual([again.revision, again.counts], [1, { added: 0, changed: 0, unchanged: 2 }]);
    assert.equal((await root.run(['secrets', 'set', 'A=10'])).code, 0);
    const r = await root.run(['secrets', 'history']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /^REVISION\s+CREATED\s+BY\s+SET\s+DELETED$/);
    assert.match(lines[1], /^2\s+.*\sroot\s+A\s+-$/);
    assert.match(lines[2], /^1\s+.*\sdeploy-bot\s+A, B\s+-$/);
    assert.equal(lines.length, 3, 'the repeated import is not a revision');
    assert.doesNotMatch(r.stdout, /tok_/);
    const one = await root.run(['secrets', 'history', 'A']);
    assert.match(one.stdout, /deploy-bot/);
    assert.doesNotMatch(one.stdout, /tok_/);
  });

  it('diff between revisions shows names; --values shows values', async () => {
    const r = await root.run(['secrets', 'diff', '--from-revision', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /api\/staging@1 -> api\/staging@2: 0 added, 0 removed, 1 changed, 1 the same/);
    assert.match(r.stdout, /~\s+A/);
    assert.doesNotMatch(r.stdout, /10/);
    const v = await root.json(['secrets', 'diff', '--from-revision', '1', '--values']);
    assert.deepEqual(v.values, { A: { from: '1', to: '10' } });
  });

  it('diff between two environments (no "did you mean list?")', async () => {
    const r = await root.run(['secrets', 'diff', 'api/staging', 'api/prod']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\+\s+ONLY_PROD/);
    assert.match(r.stdout, /-\s+A\n/);
    const bad = await root.run(['secrets', 'diff', 'api/staging']);
    assert.equal(bad.code, 2);
    assert.match(oneErrorLine(bad.stderr), /give two environments/);
    const badRef = await root.run(['secrets', 'diff', 'api', 'api/prod']);
    assert.equal(badRef.code, 2);
    assert.match(oneErrorLine(badRef.stderr), /must be PROJECT\/ENV/);
  });

  it("rollback --to-revision N writes a new revision with N's values; a missing revision is one clear line", async () => {
    const r = await bot.run(['secrets', 'rollback', '--to-revision', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Rolled api\/staging back to the values of revision 1 as revision 3/);
    assert.equal((await root.run(['secrets', 'get', 'A'])).stdout, '1');
    const none = await bot.run(['secrets', 'rollback', '--to-revision', '1']);
    assert.match(none.stdout, /nothing written \(revision 3\)/);
    const missing = await bot.run(['secrets', 'rollback', '--to-revision', '99']);
    assert.notEqual(missing.code, 0);
    assert.match(oneErrorLine(missing.stderr), /has no revision 99; its current revision is 3/);
    const noArg = await bot.run(['secrets', 'rollback']);
    assert.equal(noArg.code, 2);
    assert.match(oneErrorLine(noArg.stderr), /give --to-revision N/);
  });

  it('copy api/staging api/prod [--only] promotes values (no "Unknown argument")', async () => {
    const some = await root.run(['secrets', 'copy', 'api/staging', 'api/prod', '--only', 'B']);
    assert.equal(some.code, 0, some.stderr);
    assert.match(some.stdout, /Copied from api\/staging \(revision 3\) to api\/prod: 1 added, 0 changed, 0 unchanged/);
    const all = await root.json(['secrets', 'copy', 'api/staging', 'api/prod']);
    assert.deepEqual([all.added, all.unchanged], [['A'], ['B']]);
    const prod = await root.json(['secrets', 'export', '-e', 'prod']);
    assert.deepEqual(prod, { A: '1', B: '2', ONLY_PROD: 'p' });
    const missing = await root.run(['secrets', 'copy', 'api/staging', 'api/prod', '--only', 'NOPE']);
    assert.notEqual(missing.code, 0);
    assert.match(oneErrorLine(missing.stderr), /secret NOPE not found in api\/staging; nothing was copied/);
  });
});
