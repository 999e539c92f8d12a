// A newcomer's path: hush setup, hush init's pointer, HUSH_TOKEN_FILE,
// --format env, tokens revoke by name, and server messages without regexes.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FULL_CLI } from '../helpers/cli.js';
import { onPty, PTY_SKIP } from '../helpers/pty.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { cli, oneErrorLine, rootCli } from './helpers.js';

describe("a newcomer's path", () => {
  let s: TestServer;

  before(async () => {
    s = await startServer();
    await s.api('POST', '/v1/projects', { name: 'api' });
    for (const e of ['dev', 'prod']) await s.api('POST', '/v1/projects/api/envs', { name: e });
    await s.api('PUT', '/v1/projects/api/envs/dev/secrets/GREETING', { value: 'hello dev' });
  });
  after(() => s.close());

  it(
    'hush setup -p -e --addr writes .hush.json (no token), checked against the server; later commands ' +
      'use it with the login saved for that server',
    async () => {
      const u = cli();
      assert.equal((await u.run(['login', '--addr', s.url, '--token-stdin'], { input: s.rootToken })).code, 0);
      const r = await u.run(['setup', '-p', 'api', '-e', 'dev', '--addr', s.url]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Wrote .*\.hush\.json: project api, environment dev, server http:\/\/127\.0\.0\.1:\d+\.\n/);
      assert.equal(r.stderr, '');
      const file = JSON.parse(readFileSync(join(u.home, '.hush.json'), 'utf8'));
      assert.deepEqual(file, { project: 'api', env: 'dev', addr: s.url });
      // No HUSH_ADDR, no flags: the directory's file names the server and the target.
      const run = await u.run(['run', '--', 'sh', '-c', 'echo "$GREETING"']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'hello dev\n');
      const who = await u.json(['whoami']);
      assert.equal(who.sources.addr, join(u.home, '.hush.json'));
    },
  );

  it('hush setup refuses a project or environment the server does not have, naming the ones it has, ' + 'and writes nothing', async () => {
    const u = cli({ HUSH_TOKEN: s.rootToken, HUSH_ADDR: s.url });
    const r = await u.run(['setup', '-p', 'api', '-e', 'prd']);
    assert.equal(r.code, 5);
    assert.equal(oneErrorLine(r.stderr), 'hush: project api has no environment prd (it has: dev, prod); nothing written');
    const p = await u.run(['setup', '-p', 'nosuch', '-e', 'prod']);
    assert.equal(p.code, 5);
    assert.equal(oneErrorLine(p.stderr), 'hush: the server has no project nosuch (it has: api); nothing written');
    assert.equal(existsSync(join(u.home, '.hush.json')), false);
    for (const [addr, msg] of [
      ['javascript:alert(1)', /must use http or https/],
      ['http://user:pw@127.0.0.1:1', /must not contain credentials/],
      [`${s.url}/${s.rootToken}`, /contains a token/],
    ] as [string, RegExp][]) {
      const bad = await u.run(['setup', '-p', 'api', '-e', 'dev', '--addr', addr]);
      assert.equal(bad.code, 2, addr);
      assert.match(oneErrorLine(bad.stderr), msg);
      assert.doesNotMatch(bad.stderr, /hush_[0-9A-Za-z]{20}/);
      assert.equal(existsSync(join(u.home, '.hush.json')), false);
    }
  });

  it('a committed .hush.json cannot send a token to a server it was not saved for', async () => {
    // A listener that records whatever reaches it, standing in for an attacker's server.
    const seen: string[] = [];
    const trap = createServer((req, res) => {
      seen.push(String(req.headers.authorization));
      res.end('{}');
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const trapUrl = `http://127.0.0.1:${(trap.address() as AddressInfo).port}`;
    try {
      const u = cli();
      assert.equal((await u.run(['login', '--addr', s.url, '--token-stdin'], { input: s.rootToken })).code, 0);
      writeFileSync(join(u.home, '.hush.json'), JSON.stringify({ project: 'api', env: 'dev', addr: trapUrl }));
      for (const env of [{}, { HUSH_TOKEN: s.rootToken }]) {
        for (const args of [['run', '--', 'true'], ['secrets', 'list'], ['whoami']]) {
          const r = await u.run(args, { env });
          assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
          assert.match(
            oneErrorLine(r.stderr),
            /names the server http:\/\/127\.0\.0\.1:\d+, but the token from (profile default|HUSH_TOKEN) was not saved for that server/,
          );
        }
      }
      assert.deepEqual(seen, [], 'nothing reached the other server');
      // The user's own choice of server is followed (and a profile saved for the file's server is used).
      assert.equal((await u.run(['secrets', 'list'], { env: { HUSH_ADDR: s.url } })).code, 0);
      writeFileSync(join(u.home, '.hush.json'), JSON.stringify({ project: 'api', env: 'dev', addr: s.url }));
      assert.equal((await u.run(['secrets', 'list'])).code, 0);
    } finally {
      trap.close();
    }
  });

  it(
    "hush setup on a terminal offers the server's projects and environments, and asks again after a " + 'bad answer',
    { skip: PTY_SKIP },
    async () => {
      const u = cli({ HUSH_TOKEN: s.rootToken, HUSH_ADDR: s.url });
      const r = await onPty(
        ['sh', '-c', `cd '${u.home}' && exec '${process.execPath}' '${FULL_CLI}' setup`],
        [
          { when: 'Project (api)', send: 'Bad Name\r' },
          { when: 'is not a valid project name', send: 'api\r' },
          { when: 'Environment (dev, prod)', send: 'dev\r' },
        ],
        { ...u.env, PATH: process.env.PATH },
      );
      assert.equal(r.code, 0, r.screen);
      assert.match(r.screen, /Wrote .*\.hush\.json: project api, environment dev/);
      assert.deepEqual(JSON.parse(readFileSync(join(u.home, '.hush.json'), 'utf8')), { project: 'api', env: 'dev', addr: s.url });
    },
  );

  it('hush setup without a terminal and without -p/-e is a usage error; an existing file is replaced ' + 'only with --yes', async () => {
    const u = cli({ HUSH_TOKEN: s.rootToken, HUSH_ADDR: s.url });
    const r = await u.run(['setup']);
    assert.equal(r.code, 2);
    assert.match(oneErrorLine(r.stderr), /^hush: no terminal to ask on: give the project and environment/);
    assert.equal((await u.run(['setup', '-p', 'api', '-e', 'dev'])).code, 0);
    const again = await u.run(['setup', '-p', 'api', '-e', 'prod']);
    assert.equal(again.code, 6);
    assert.match(oneErrorLine(again.stderr), /\.hush\.json exists; pass --yes to replace it$/);
    assert.equal((await u.run(['setup', '-p', 'api', '-e', 'prod', '--yes'])).code, 0);
    assert.equal(JSON.parse(readFileSync(join(u.home, '.hush.json'), 'utf8')).env, 'prod');
  });

  it('hush setup never stores a token, and works without one (unchecked, said so)', async () => {
    const u = cli();
    const r = await u.run(['setup', '-p', 'api', '-e', 'dev']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Not checked against the server/);
    assert.doesNotMatch(readFileSync(join(u.home, '.hush.json'), 'utf8'), /hush_|token/);
  });

  it('hush init creates nothing: one line pointing to hush setup and hush operator init, exit 2', async () => {
    const u = cli();
    for (const args of [['init'], ['init', '--data-dir', join(u.home, 'd')]]) {
      const r = await u.run(args);
      assert.equal(r.code, 2);
      assert.equal(
        r.stderr,
        'hush: hush init is gone: link this directory to a project with hush setup; create a vault with ' + 'hush operator init\n',
      );
      assert.equal(existsSync(join(u.home, 'd')), false);
      assert.equal(existsSync(join(u.home, 'hush-data')), false);
    }
  });

  it('a .hush.json with a token anywhere in it, or a value of the wrong type, is refused in one line', async () => {
    const u = cli({ HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken });
    for (const [content, msg] of [
      [{ project: 'api', env: 'dev', note: s.rootToken }, /contains a token; \.hush\.json may only hold project, env and addr/],
      [{ project: 'api', env: 'dev', addr: 42 }, /"addr" must be a string$/],
      [{ project: 1, env: 'dev' }, /"project" must be a string$/],
    ] as [unknown, RegExp][]) {
      writeFileSync(join(u.home, '.hush.json'), JSON.stringify(content));
      const r = await u.run(['secrets', 'list']);
      assert.equal(r.code, 2);
      assert.match(oneErrorLine(r.stderr), msg);
      assert.doesNotMatch(r.stderr, /hush_[0-9A-Za-z]{20}/);
    }
  });

  it('HUSH_TOKEN_FILE is read by the CLI (HUSH_TOKEN wins over it); an unreadable one is one line, ' + 'exit 2', async () => {
    const u = cli({ HUSH_ADDR: s.url });
    writeFileSync(join(u.home, 'token'), `${s.rootToken}\n`, { mode: 0o600 });
    const who = await u.json(['whoami'], { env: { HUSH_TOKEN_FILE: join(u.home, 'token') } });
    assert.equal(who.token.name, 'root');
    assert.equal(who.sources.token, `HUSH_TOKEN_FILE ${join(u.home, 'token')}`);
    const r = await u.run(['projects', 'list'], { env: { HUSH_TOKEN_FILE: join(u.home, 'nope') } });
    assert.equal(r.code, 2);
    assert.equal(oneErrorLine(r.stderr), `hush: cannot read HUSH_TOKEN_FILE ${join(u.home, 'nope')}: ENOENT`);
    // A device or a directory is refused in one line, without reading it into memory.
    for (const [file, msg] of [
      ['/dev/zero', 'HUSH_TOKEN_FILE /dev/zero is larger than 64 KiB; it is not a token file'],
      [u.home, `cannot read HUSH_TOKEN_FILE ${u.home}: EISDIR`],
    ]) {
      for (const args of [
        ['projects', 'list'],
        ['run', '-p', 'api', '-e', 'dev', '--', 'true'],
      ]) {
        const bad = await u.run(args, { env: { HUSH_TOKEN_FILE: file } });
        assert.equal(bad.code, 2, `${args[0]} ${file}`);
        assert.equal(oneErrorLine(bad.stderr), `hush: ${msg}`);
      }
    }
  });

  it('--format env is dotenv under another name (export and --mount-format)', async () => {
    const u = rootCli(s.url, s.rootToken, { HUSH_PROJECT: 'api', HUSH_ENV: 'dev' });
    const env = await u.run(['secrets', 'export', '--format', 'env']);
    const dotenv = await u.run(['secrets', 'export', '--format', 'dotenv']);
    assert.equal(env.code, 0, env.stderr);
    assert.equal(env.stdout, dotenv.stdout);
    assert.equal(env.stdout, 'GREETING="hello dev"\n');
    const mount = (format: string) =>
      u.run(['run', '--mount', join(u.home, `m-${format}`), '--mount-format', format, '--', 'cat', join(u.home, `m-${format}`)]);
    const m = await mount('env');
    assert.equal(m.code, 0, m.stderr);
    assert.equal(m.stdout, (await mount('dotenv')).stdout);
    assert.match(m.stdout, /^GREETING=.hello dev.\n$/);
  });

  it('tokens revoke takes a name when one live token has it, and refuses an ambiguous one with the ' + 'list', async () => {
    const u = rootCli(s.url, s.rootToken);
    const empty = await u.run(['tokens', 'revoke', '']);
    assert.equal(empty.code, 2, 'an empty name (an unset $NAME) never picks a token');
    assert.match(oneErrorLine(empty.stderr), /^hush: give the id or the name of the token to revoke/);
    const one = await u.json(['tokens', 'create', '--name', 'solo', '--scope', 'read:api/dev']);
    const r = await u.json(['tokens', 'revoke', 'solo']);
    assert.equal(r.id, one.id);
    const twins = [
      await u.json(['tokens', 'create', '--name', 'twin', '--scope', 'read:api/dev']),
      await u.json(['tokens', 'create', '--name', 'twin', '--scope', 'read:api/prod']),
    ];
    const amb = await u.run(['tokens', 'revoke', 'twin']);
    assert.equal(amb.code, 2);
    const line = oneErrorLine(amb.stderr);
    assert.match(line, /^hush: 2 live tokens are named "twin": /);
    for (const t of twins) assert.ok(line.includes(t.id), t.id);
    assert.match(line, /revoke one by its id$/);
    const listed = await u.json(['tokens', 'list', '--name', 'twin']);
    assert.equal(listed.length, 2, 'nothing was revoked');
    const idLike = await u.run(['tokens', 'create', '--name', 'tok_AAAAAAAAAAAAAAAAAAAA', '--scope', 'read:api/dev']);
    assert.equal(idLike.code, 2, 'a name shaped like an id would make revoke-by-name ambiguous');
    assert.equal(oneErrorLine(idLike.stderr), 'hush: a token name must not start with "tok_" (that is how token ids look)');
    const none = await u.run(['tokens', 'revoke', 'no-such-token']);
    assert.equal(none.code, 5);
    assert.match(oneErrorLine(none.stderr), /^hush: no live token has the id or name "no-such-token"/);
  });

  it(
    'every Object.prototype name is a variable like any other through run (--only, --preserve-env), ' +
      'every export format and the SDK (finding 5)',
    async () => {
      const names = Object.getOwnPropertyNames(Object.prototype).filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n));
      assert.ok(names.includes('__proto__') && names.includes('constructor') && names.includes('hasOwnProperty'));
      await s.api('POST', '/v1/projects/api/envs', { name: 'proto' });
      const u = rootCli(s.url, s.rootToken, { HUSH_PROJECT: 'api', HUSH_ENV: 'proto' });
      for (const n of names)
        assert.equal((await s.api('PUT', `/v1/projects/api/envs/proto/secrets/${n}`, { value: `v-${n}` })).status, 200, n);
      const printAll = `for n in ${names.join(' ')}; do printf '%s=%s\\n' "$n" "$(printenv "$n")"; done`;
      const expected = names.map((n) => `${n}=v-${n}`).join('\n') + '\n';
      const plain = await u.run(['run', '--', 'sh', '-c', printAll]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(plain.stdout, expected);
      const preserved = await u.run(['run', '--preserve-env', '--', 'sh', '-c', printAll]);
      assert.equal(preserved.stdout, expected, '--preserve-env keeps them too (none is inherited)');
      for (const n of names) {
        const only = await u.run(['run', '--only', n, '--', 'sh', '-c', `printenv ${n}`]);
        assert.equal(only.code, 0, only.stderr);
        assert.equal(only.stdout, `v-${n}\n`, `--only ${n}`);
        assert.equal(only.stderr, '', `no "not in" warning for --only ${n}`);
      }
      // dotenv (it was refused for __proto__), and every other format.
      const dotenv = await u.run(['secrets', 'export', '--format', 'dotenv']);
      assert.equal(dotenv.code, 0, dotenv.stderr);
      for (const n of names) assert.match(dotenv.stdout, new RegExp(`^${n}="v-${n}"$`, 'm'));
      const json = JSON.parse((await u.run(['secrets', 'export', '--format', 'json'])).stdout);
      assert.deepEqual(Object.keys(json).sort(), [...names].sort());
      for (const f of ['shell', 'docker', 'yaml']) {
        const r = await u.run(['secrets', 'export', '--format', f]);
        assert.equal(r.code, 0, `${f}: ${r.stderr}`);
        for (const n of names) assert.ok(r.stdout.includes(n) && r.stdout.includes(`v-${n}`), `${f} lacks ${n}`);
      }
      // The dotenv export reads back, through hush's own parser, with every name.
      const { parseEnvFile } = await import('../../cli/formats.js');
      const back = parseEnvFile(dotenv.stdout);
      assert.deepEqual(Object.keys(back).sort(), [...names].sort());
      for (const n of names) assert.equal(back[n], `v-${n}`);
      assert.equal(Object.getPrototypeOf(back), null);
      // The SDK: a prototype-free map, and loadEnv into an ordinary object defines every name as its own.
      const { createClient, loadEnv } = await import('hush-vault-sdk');
      const client = createClient({ addr: s.url, token: s.rootToken });
      const snap = await client.secrets.getAll('api', 'proto');
      assert.equal(Object.getPrototypeOf(snap.secrets), null);
      for (const n of names) assert.equal(snap.secrets[n], `v-${n}`);
      const target: Record<string, string | undefined> = {};
      const loaded = await loadEnv({ client, project: 'api', env: 'proto', target, override: false });
      assert.deepEqual(loaded.skipped, [], 'nothing counts as already set because Object.prototype has it');
      for (const n of names) assert.ok(Object.prototype.hasOwnProperty.call(target, n) && target[n] === `v-${n}`, `loadEnv: ${n}`);
      assert.equal(Object.getPrototypeOf(target), Object.prototype, 'the target kept its prototype');
    },
  );

  it("an import larger than the server's body limit names --body-limit and suggests splitting the " + 'file', async () => {
    const small = await startServer({ settings: { 'body-limit': '64KiB' } });
    try {
      await small.api('POST', '/v1/projects', { name: 'big' });
      await small.api('POST', '/v1/projects/big/envs', { name: 'prod' });
      const dir = mkdtempSync(join(tmpdir(), 'hush-import-'));
      const file = join(dir, 'big.env');
      writeFileSync(file, Array.from({ length: 40 }, (_, i) => `K${i}="${'x'.repeat(4000)}"`).join('\n'));
      const r = await rootCli(small.url, small.rootToken, { HUSH_PROJECT: 'big', HUSH_ENV: 'prod' }).run(['secrets', 'import', file]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(
        oneErrorLine(r.stderr),
        `hush: ${file} is too large to import at once (the server takes at most 65536 bytes per ` +
          `request): split it into smaller files and import them one by one, or raise the server's --body-limit`,
      );
      assert.deepEqual((await small.api('GET', '/v1/projects/big/envs/prod/secrets')).body.secrets, {}, 'nothing was imported');
    } finally {
      await small.close();
    }
  });

  it('control characters in what a user typed are escaped in error lines', async () => {
    const r = await cli().run(['setup', '-p', 'api\u001b[31mRED', '-e', 'dev']);
    assert.equal(r.code, 2);
    assert.ok(!r.stderr.includes('\u001b'), 'no raw ESC byte');
    assert.match(r.stderr, /api\\x1b\[31mRED/);
  });

  it('server validation errors are sentences, never a schema path and a regular expression', async () => {
    const u = rootCli(s.url, s.rootToken);
    const cases: [string[], RegExp][] = [
      [['secrets', 'history', 'K'.repeat(300), '-p', 'api', '-e', 'dev'], /the secret name in the URL path must be at most 256 characters/],
      [['secrets', 'list', '-p', 'Bad', '-e', 'dev'], /the project name in the URL path must be lower-case letters/],
      [
        ['tokens', 'create', '--name', 'n'.repeat(300), '--scope', 'read:api/dev'],
        /field "name" of the body must be at most 128 characters/,
      ],
    ];
    for (const [args, msg] of cases) {
      const r = await u.run(args);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, /must match pattern|params\/|body\/|querystring\/|\^\[/, r.stderr);
    }
    for (const [method, path, body] of [
      ['POST', '/v1/projects', { name: 'Bad Name' }],
      ['POST', '/v1/projects', { nam: 'x' }],
      ['GET', '/v1/audit?limit=abc', undefined],
      ['DELETE', '/v1/tokens/tok_-x', undefined],
    ] as const) {
      const r = await s.api(method, path, body);
      assert.equal(r.status, 400);
      assert.equal(r.body.error.code, 'invalid_request');
      assert.doesNotMatch(r.body.error.message, /must match pattern|params\/|body\/|querystring\/|\^\[/, r.body.error.message);
    }
    assert.equal(
      (await s.api('POST', '/v1/projects', { name: 'Bad Name' })).body.error.message,
      'field "name" of the body must be lower-case letters, digits, ".", "_" and "-", up to 63 ' +
        'characters, starting with a letter or digit',
    );
    assert.equal((await s.api('GET', '/v1/audit?limit=abc')).body.error.message, 'query parameter "limit" must be a whole number');
    const patch = await s.api('PATCH', '/v1/projects/api/envs/dev/secrets', { set: { '1BAD': 'x' } });
    assert.equal(patch.status, 400);
    assert.equal(
      patch.body.error.message,
      'invalid secret name "1BAD": use letters, digits and "_", not starting with a digit, at most 256 ' + 'characters',
    );
  });
});
