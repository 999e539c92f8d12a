import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { runHush } from '../helpers/cli.js';
import { tempDir } from '../helpers/server.js';
import { EXIT } from '../../cli/output.js';

/**
 * Runs `hush ARGS` with a module-resolution hook that records every module
 * loaded, so the test can prove which dependencies a command pulls in.
 */
async function loadedModules(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; modules: string[]; stdout: string; stderr: string }> {
  const dir = tempDir('hush-trace-');
  const log = join(dir, 'modules.log');
  writeFileSync(log, '');
  writeFileSync(
    join(dir, 'hooks.mjs'),
    `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}`,
  );
  writeFileSync(
    join(dir, 'register.mjs'),
    `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});`,
  );
  const r = await runHush(args, { env: { NODE_OPTIONS: `--import=${pathToFileURL(join(dir, 'register.mjs')).href}`, HOME: dir, ...env } });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, modules: readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

// The SDK's import-free defaults and token-format modules (DEFAULT_ADDR, the token's shape for redaction, shared with
// the CLI) are the parts of it every command may load.
const HEAVY =
  /node_modules\/(knex|fastify|libsodium[^/]*|openpgp|better-sqlite3|pg|pino|dotenv)\/|\/sdk\/dist\/(?!(esm|cjs)\/(defaults|token-format)\.js$)|\/dist\/(vault|migrations)\//;

describe('hush startup', () => {
  it('hush --help loads no server, database, crypto or SDK module', async () => {
    const r = await loadedModules(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.modules.some((m) => m.includes('/yargs/')),
      'the trace hook saw yargs',
    );
    assert.deepEqual(
      r.modules.filter((m) => HEAVY.test(m)),
      [],
    );
    for (const cmd of ['run', 'login', 'projects', 'envs', 'secrets', 'tokens', 'audit', 'keys', 'backup', 'completion'])
      assert.match(r.stdout, new RegExp(`hush ${cmd}\\b`));
  });

  it('hush secrets export --help and hush run --help load none of them either', async () => {
    for (const args of [
      ['secrets', 'export', '--help'],
      ['run', '--help'],
    ]) {
      const r = await loadedModules(args);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        r.modules.filter((m) => HEAVY.test(m)),
        [],
        args.join(' '),
      );
    }
  });

  it('a command that talks to the server loads the SDK but not the server or libsodium', async () => {
    const r = await loadedModules(['projects', 'list'], { HUSH_ADDR: 'http://127.0.0.1:9', HUSH_TOKEN: 'hush_x' });
    assert.equal(r.code, EXIT.auth);
    assert.ok(r.modules.some((m) => m.includes('/sdk/dist/esm/client.js')));
    assert.deepEqual(
      r.modules.filter((m) => /node_modules\/(knex|fastify|libsodium[^/]*|openpgp|better-sqlite3)\/|\/dist\/(vault|migrations)\//.test(m)),
      [],
    );
  });

  it('--version prints the version; completion prints a yargs completion script', async () => {
    assert.equal((await runHush(['--version'])).stdout, '0.1.0\n');
    const c = await runHush(['completion']);
    assert.equal(c.code, 0);
    assert.match(c.stdout, /###-begin-hush-completions-###/);
    assert.match(c.stdout, /--get-yargs-completions/);
    // One-letter flags complete with one dash, whatever was typed so far (yargs offered --p and --e after "--").
    for (const typed of ['', '-', '--']) {
      const words = (await runHush(['--get-yargs-completions', 'run', typed])).stdout.split('\n').filter(Boolean);
      assert.ok(words.includes('-p') && words.includes('-e') && words.includes('--project'), `after "${typed}": ${words.join(' ')}`);
      assert.ok(!words.some((w) => /^--[A-Za-z]$/.test(w)), `after "${typed}": ${words.join(' ')}`);
    }
    const zsh = (await runHush(['--get-yargs-completions', 'secrets', 'list', '--'], { env: { SHELL: '/bin/zsh' } })).stdout;
    assert.match(zsh, /^-p:/m);
    assert.doesNotMatch(zsh, /^--[pe]:/m);
  });

  it('a usage error yargs words over several lines is still one line on stderr, exit 2', async () => {
    const r = await runHush(['secrets', 'export', '--format', 'xml'], { env: { HOME: tempDir('hush-usage-') } });
    assert.equal(r.code, EXIT.usage);
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^hush: Invalid values: Argument: format, Given: "xml", Choices: .*\(see --help\)$/);
  });

  it('completion suggests subcommands', async () => {
    const r = await runHush(['--get-yargs-completions', 'secrets', '']);
    assert.equal(r.code, 0, r.stderr);
    for (const sub of ['set', 'get', 'list', 'delete', 'history', 'import', 'export'])
      assert.match(r.stdout, new RegExp(`^${sub}\\b`, 'm'));
  });

  it('docs/cli.md documents every exit code and every command', () => {
    const doc = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');
    for (const [name, code] of Object.entries(EXIT)) assert.match(doc, new RegExp(`\\|\\s*${code}\\s*\\|`), `exit ${code} (${name})`);
    for (const cmd of [
      'login',
      'logout',
      'profiles',
      'whoami',
      'projects create',
      'projects list',
      'projects delete',
      'envs create',
      'envs list',
      'envs delete',
      'secrets set',
      'secrets get',
      'secrets list',
      'secrets delete',
      'secrets history',
      'secrets import',
      'secrets export',
      'tokens create',
      'tokens list',
      'tokens revoke',
      'audit list',
      'audit verify',
      'keys rotate',
      'keys rotate-master',
      'completion',
    ]) {
      assert.match(doc, new RegExp(`hush ${cmd}\\b`), cmd);
    }
  });
});
