import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseDotenv } from 'dotenv';
import { parse as parseYaml } from 'yaml';
import { startServer, type TestServer } from '../helpers/server.js';
import { oneErrorLine, rootCli, TRICKY, writeFile, type Cli } from './helpers.js';

describe('hush secrets import and export', () => {
  let s: TestServer;
  let u: Cli;
  const target = (env: string) => ({ env: { HUSH_ENV: env } });

  before(async () => {
    s = await startServer({ settings: { 'max-value-bytes': 2048 } });
    await s.api('POST', '/v1/projects', { name: 'app' });
    for (const e of ['imp', 'atomic', 'tricky', 'copy', 'dock']) await s.api('POST', '/v1/projects/app/envs', { name: e });
    u = rootCli(s.url, s.rootToken, { HUSH_PROJECT: 'app' });
  });
  after(() => s.close());

  const values = async (env: string) => (await s.api('GET', `/v1/projects/app/envs/${env}/secrets`)).body.secrets as Record<string, string>;

  it('import parses with dotenv and reports added, changed and unchanged counts', async () => {
    await s.api('PATCH', '/v1/projects/app/envs/imp/secrets', { set: { KEEP: 'same', CHANGE: 'old' } });
    const f = writeFile(u.home, 'a.env', '# comment\nKEEP=same\nCHANGE="new value"\nexport NEW_ONE=\'1\'\nMULTI="l1\\nl2"\n');
    const r = await u.run(['secrets', 'import', f], target('imp'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Imported .*a\.env into app\/imp: 2 added, 1 changed, 1 unchanged \(revision \d+\)\.\n$/);
    assert.deepEqual(await values('imp'), { KEEP: 'same', CHANGE: 'new value', NEW_ONE: '1', MULTI: 'l1\nl2' });
    const again = await u.json(['secrets', 'import', f], target('imp'));
    assert.deepEqual(again.counts, { added: 0, changed: 0, unchanged: 4 });
    assert.deepEqual(again.unchanged.sort(), ['CHANGE', 'KEEP', 'MULTI', 'NEW_ONE']);
  });

  it('import reads stdin with -', async () => {
    const r = await u.json(['secrets', 'import', '-'], { ...target('imp'), input: 'FROM_STDIN=yes\n' });
    assert.deepEqual(r.counts, { added: 1, changed: 0, unchanged: 0 });
    assert.equal((await values('imp')).FROM_STDIN, 'yes');
  });

  it('import is atomic: when the server rejects one value, none of the file is stored', async () => {
    await s.api('PUT', '/v1/projects/app/envs/atomic/secrets/EXISTING', { value: 'before' });
    const f = writeFile(u.home, 'big.env', `EXISTING=after\nFIRST=1\nHUGE=${'x'.repeat(4096)}\nLAST=2\n`);
    const r = await u.run(['secrets', 'import', f], target('atomic'));
    assert.equal(r.code, 2);
    assert.match(oneErrorLine(r.stderr), /HUGE|too large|bytes/);
    assert.deepEqual(await values('atomic'), { EXISTING: 'before' });
  });

  it('import refuses invalid names up front and an empty file, importing nothing', async () => {
    const bad = await u.run(['secrets', 'import', writeFile(u.home, 'bad.env', 'GOOD=1\nbad.name=2\n')], target('atomic'));
    assert.equal(bad.code, 2);
    assert.match(oneErrorLine(bad.stderr), /invalid variable names.*bad\.name/);
    const empty = await u.run(['secrets', 'import', writeFile(u.home, 'empty.env', '# nothing\n')], target('atomic'));
    assert.equal(empty.code, 2);
    assert.deepEqual(await values('atomic'), { EXISTING: 'before' });
  });

  describe('tricky values survive export in every format', () => {
    const shellSafe = TRICKY;
    /** TRICKY as stored: a literal "${" is written "$${" (docs/lifecycle.md#references), so every read gives back TRICKY. */
    const stored = (v: Record<string, string>) =>
      Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x.replaceAll('${', () => '$${')]));
    before(async () => {
      const r = await s.api('PATCH', '/v1/projects/app/envs/tricky/secrets', { set: stored(TRICKY) });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    });

    it('dotenv: read back identically by dotenv.parse', async () => {
      const r = await u.run(['secrets', 'export', '--format', 'dotenv'], target('tricky'));
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(parseDotenv(r.stdout), TRICKY);
    });

    it('dotenv is the default format, and an exported file imports back unchanged', async () => {
      // --raw: the stored text, escapes included, so a literal "${" stays literal in the copy.
      const r = await u.run(['secrets', 'export', '--raw'], target('tricky'));
      const f = writeFile(u.home, 'tricky.env', r.stdout);
      const imp = await u.json(['secrets', 'import', f], target('copy'));
      assert.equal(imp.counts.added, Object.keys(TRICKY).length);
      assert.deepEqual(await values('copy'), TRICKY);
    });

    it('json: an object of every value (also with --json alone)', async () => {
      assert.deepEqual(JSON.parse((await u.run(['secrets', 'export', '--format', 'json'], target('tricky'))).stdout), TRICKY);
      assert.deepEqual(await u.json(['secrets', 'export'], target('tricky')), TRICKY);
    });

    it("shell: `export K='...'` lines that sh evaluates back to the exact bytes", async () => {
      const r = await u.run(['secrets', 'export', '--format', 'shell'], target('tricky'));
      assert.match(r.stdout, /^export BACKSLASH_N='/m);
      const f = writeFile(u.home, 'env.sh', r.stdout);
      for (const [k, v] of Object.entries(shellSafe)) {
        const out = spawnSync('sh', ['-c', `eval "$(cat "$1")"; printf %s "$${k}"`, 'sh', f], { encoding: 'utf8', env: {} });
        assert.equal(out.status, 0, out.stderr);
        assert.equal(out.stdout, v, k);
      }
    });

    it('yaml: double-quoted scalars that parse back to the same map', async () => {
      const r = await u.run(['secrets', 'export', '--format', 'yaml'], target('tricky'));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^"NEWLINES": "line1\\nline2\\n"$/m);
      assert.deepEqual(parseYaml(r.stdout), TRICKY);
    });

    it('docker: refuses multi-line values with exit 2 naming the key, writes single-line ones verbatim', async () => {
      const r = await u.run(['secrets', 'export', '--format', 'docker'], target('tricky'));
      assert.equal(r.code, 2);
      assert.match(oneErrorLine(r.stderr), /cannot export (CRLF|NEWLINES|PEM|QUOTES_AND_LINES) as docker: .*multi-line/);
      assert.equal(r.stdout, '');
      const single = Object.fromEntries(Object.entries(TRICKY).filter(([, v]) => !/[\r\n]/.test(v)));
      await s.api('PATCH', '/v1/projects/app/envs/dock/secrets', { set: stored(single) });
      const ok = await u.run(['secrets', 'export', '--format', 'docker'], target('dock'));
      assert.equal(ok.code, 0, ok.stderr);
      // docker --env-file semantics: each line is NAME=VALUE, split at the first "=", nothing unquoted or unescaped.
      const back = Object.fromEntries(
        ok.stdout
          .split('\n')
          .filter(Boolean)
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      assert.deepEqual(back, single);
    });

    it('--out writes a 0600 file; --only limits the names', async () => {
      const out = join(u.home, 'exported.env');
      const r = await u.run(['secrets', 'export', '--out', out, '--only', 'PLAIN,DQUOTE'], target('tricky'));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /Wrote 2 secrets from app\/tricky to .*exported\.env \(dotenv, mode 0600\)/);
      assert.equal(statSync(out).mode & 0o777, 0o600);
      assert.deepEqual(parseDotenv(readFileSync(out, 'utf8')), { PLAIN: TRICKY.PLAIN, DQUOTE: TRICKY.DQUOTE });
    });
  });
});
