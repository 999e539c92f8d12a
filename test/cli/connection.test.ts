import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.js';
import { unknownToken } from '../sdk/helpers.js';
import { cli, closedPort, oneErrorLine, writeFile } from './helpers.js';

describe('hush login, profiles and connection precedence', () => {
  let s: TestServer;
  let dead: string;

  before(async () => {
    s = await startServer();
    dead = `http://127.0.0.1:${await closedPort()}`;
    for (const p of ['pflag', 'penv', 'pfile', 'pprof']) await s.api('POST', '/v1/projects', { name: p });
  });
  after(() => s.close());

  it('login --token-stdin checks the token, then saves a 0600 profile in a 0700 dir and makes it current', async () => {
    const u = cli();
    const r = await u.run(['login', '--addr', s.url, '--token-stdin'], { input: `${s.rootToken}\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^Logged in to http:\/\/127\.0\.0\.1:\d+ as root \(root\)\.\nProfile "default" saved in .*config\.json \(mode 0600\)/,
    );
    assert.doesNotMatch(r.stdout + r.stderr, /hush_/);
    assert.equal(statSync(u.configFile).mode & 0o777, 0o600);
    assert.equal(statSync(dirname(u.configFile)).mode & 0o777, 0o700);
    const saved = JSON.parse(readFileSync(u.configFile, 'utf8'));
    assert.deepEqual(saved, { current: 'default', profiles: { default: { addr: s.url, token: s.rootToken } } });
    // Later commands need no flags and no env.
    const who = await u.json(['whoami']);
    assert.equal(who.addr, s.url);
    assert.equal(who.token.name, 'root');
    assert.deepEqual(who.sources, { addr: 'profile default', token: 'profile default', project: 'none', env: 'none', caFile: 'none' });
    assert.equal((await u.run(['projects', 'list'])).code, 0);
  });

  it('login with a token the server does not know is exit 4 and saves nothing', async () => {
    const u = cli();
    const r = await u.run(['login', '--addr', s.url, '--token-stdin'], { input: unknownToken() });
    assert.equal(r.code, 4);
    assert.match(oneErrorLine(r.stderr), /^hush: login failed, nothing saved: /);
    assert.equal(existsSync(u.configFile), false);
  });

  it('login with a mistyped token is exit 4 without contacting the server', async () => {
    const u = cli();
    const r = await u.run(['login', '--addr', dead, '--token-stdin'], { input: 'hush_tooshort' });
    assert.equal(r.code, 4);
    assert.match(oneErrorLine(r.stderr), /token from stdin is not a valid Hush token/);
    assert.equal(existsSync(u.configFile), false);
  });

  it('login without a terminal and without --token-stdin is a usage error', async () => {
    const r = await cli().run(['login', '--addr', s.url]);
    assert.equal(r.code, 2);
    assert.match(oneErrorLine(r.stderr), /--token-stdin/);
  });

  it('several named profiles: --profile and HUSH_PROFILE select one; the token never shows in `hush profiles`', async () => {
    const u = cli();
    const t = await s.api('POST', '/v1/tokens', { name: 'second', scopes: ['list:pprof/*'], ttl: '1h' });
    assert.equal((await u.run(['login', '--addr', s.url, '--token-stdin'], { input: s.rootToken })).code, 0);
    const r = await u.run(['login', '--addr', s.url, '--profile', 'ro', '--token-stdin', '-p', 'pprof', '-e', 'dev'], {
      input: t.body.token,
    });
    assert.equal(r.code, 0, r.stderr);
    const file = JSON.parse(readFileSync(u.configFile, 'utf8'));
    assert.deepEqual(Object.keys(file.profiles).sort(), ['default', 'ro']);
    assert.equal(file.current, 'ro');
    assert.deepEqual(file.profiles.ro, { addr: s.url, token: t.body.token, project: 'pprof', env: 'dev' });
    assert.equal((await u.json(['whoami'])).token.name, 'second');
    assert.equal((await u.json(['whoami', '--profile', 'default'])).token.name, 'root');
    assert.equal((await u.json(['whoami'], { env: { HUSH_PROFILE: 'default' } })).token.name, 'root');
    const profiles = await u.run(['profiles']);
    assert.match(profiles.stdout, /^\s+NAME\s+ADDR\s+PROJECT\s+ENV\n/);
    assert.match(profiles.stdout, /^\*\s+ro\s+http/m);
    assert.doesNotMatch(profiles.stdout, /hush_/);
    assert.doesNotMatch(JSON.stringify(await u.json(['profiles'])), /hush_/);
    const unknown = await u.run(['whoami', '--profile', 'nope']);
    assert.equal(unknown.code, 2);
    assert.match(oneErrorLine(unknown.stderr), /no profile named "nope"/);
    const out = await u.run(['logout', '--profile', 'ro']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /Commands now use profile "default"\./);
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(u.configFile, 'utf8')).profiles), ['default']);
    // After logging out of the current profile, commands use "default", and `hush profiles` stars it (it showed no star).
    assert.equal((await u.json(['whoami'])).token.name, 'root');
    assert.match((await u.run(['profiles'])).stdout, /^\*\s+default\s+http/m);
    assert.deepEqual(
      (await u.json(['profiles'])).map((p: { name: string; current: boolean }) => [p.name, p.current]),
      [['default', true]],
    );
    assert.equal(statSync(u.configFile).mode & 0o777, 0o600);
  });

  it('project and env: flag beats HUSH_PROJECT/HUSH_ENV beats .hush.json (found in a parent dir) beats the profile', async () => {
    const u = cli();
    assert.equal((await u.run(['login', '--addr', s.url, '--token-stdin', '-p', 'pprof', '-e', 'eprof'], { input: s.rootToken })).code, 0);
    const work = join(u.home, 'repo');
    const deep = join(work, 'src', 'lib');
    mkdirSync(deep, { recursive: true });
    const who = (args: string[], env: NodeJS.ProcessEnv = {}, cwd = u.home) => u.json(['whoami', ...args], { env, cwd });

    let w = await who([]);
    assert.deepEqual([w.project, w.env, w.sources.project], ['pprof', 'eprof', 'profile default']);
    writeFileSync(join(work, '.hush.json'), JSON.stringify({ project: 'pfile', env: 'efile' }));
    w = await who([], {}, deep);
    assert.deepEqual([w.project, w.env, w.sources.project], ['pfile', 'efile', join(work, '.hush.json')]);
    w = await who([], { HUSH_PROJECT: 'penv', HUSH_ENV: 'eenv' }, deep);
    assert.deepEqual([w.project, w.env, w.sources.project], ['penv', 'eenv', 'HUSH_PROJECT']);
    w = await who(['-p', 'pflag', '--env', 'eflag'], { HUSH_PROJECT: 'penv', HUSH_ENV: 'eenv' }, deep);
    assert.deepEqual([w.project, w.env, w.sources.project, w.sources.env], ['pflag', 'eflag', 'flag', 'flag']);
  });

  it('address and token: flag beats HUSH_ADDR/HUSH_TOKEN beats the profile', async () => {
    const u = cli();
    // A profile pointing at a dead server with an unknown token...
    mkdirSync(dirname(u.configFile), { recursive: true, mode: 0o700 });
    writeFileSync(u.configFile, JSON.stringify({ current: 'default', profiles: { default: { addr: dead, token: unknownToken() } } }), {
      mode: 0o600,
    });
    assert.equal((await u.run(['projects', 'list'])).code, 7);
    // ...HUSH_ADDR wins over it, and HUSH_TOKEN wins over its token.
    assert.equal((await u.run(['projects', 'list'], { env: { HUSH_ADDR: s.url } })).code, 4);
    let w = await u.json(['whoami'], { env: { HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken } });
    assert.deepEqual(w.sources, { addr: 'HUSH_ADDR', token: 'HUSH_TOKEN', project: 'none', env: 'none', caFile: 'none' });
    // --addr beats HUSH_ADDR; --token-file beats HUSH_TOKEN.
    const tokFile = writeFile(u.home, 'root.token', s.rootToken);
    w = await u.json(['whoami', '--addr', s.url, '--token-file', tokFile], { env: { HUSH_ADDR: dead, HUSH_TOKEN: unknownToken() } });
    assert.deepEqual([w.sources.addr, w.sources.token, w.token.name], ['flag', '--token-file', 'root']);
  });

  it('a .hush.json holding a token is refused (exit 2), naming the file', async () => {
    const u = cli({ HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken });
    const dir = join(u.home, 'leaky');
    writeFile(dir, '.hush.json', JSON.stringify({ project: 'pfile', env: 'x', token: s.rootToken }));
    const r = await u.run(['secrets', 'list'], { cwd: dir });
    assert.equal(r.code, 2);
    assert.match(oneErrorLine(r.stderr), /leaky\/\.hush\.json contains a token/);
    assert.doesNotMatch(r.stderr, /hush_/);
  });
});
