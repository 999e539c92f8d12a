import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { HUSH_BIN } from '../helpers/cli.js';
import { onPty, PTY_SKIP } from '../helpers/pty.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { cli } from './helpers.js';

/** Runs the built `hush` on a terminal, typing `keys` once the screen shows `trigger`. */
function onTty(args: string[], keys: string, env: NodeJS.ProcessEnv, trigger = '(input hidden): ') {
  return onPty([process.execPath, HUSH_BIN, ...args], keys ? [{ when: trigger, send: keys }] : [], { PATH: process.env.PATH, ...env });
}

describe('hush on a terminal', { skip: PTY_SKIP }, () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
    await s.api('POST', '/v1/projects', { name: 'api' });
    await s.api('POST', '/v1/projects/api/envs', { name: 'dev' });
  });
  after(() => s.close());

  it('secrets set NAME reads the value at a hidden prompt: the value never appears on screen', async () => {
    const u = cli({ HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken, HUSH_PROJECT: 'api', HUSH_ENV: 'dev' });
    const r = await onTty(['secrets', 'set', 'TYPED'], 'Tr0ub4dor&3\r', u.env);
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, /Value for TYPED \(input hidden\): /);
    assert.doesNotMatch(r.screen, /Tr0ub4dor/);
    assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets/TYPED')).body.value, 'Tr0ub4dor&3');
    // get adds a newline on a terminal (and only there).
    const g = await onTty(['secrets', 'get', 'TYPED'], '', u.env);
    assert.equal(g.screen, 'Tr0ub4dor&3\r\n');
  });

  it('Ctrl-C at the hidden prompt cancels with exit 130 and stores nothing', async () => {
    const u = cli({ HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken, HUSH_PROJECT: 'api', HUSH_ENV: 'dev' });
    const r = await onTty(['secrets', 'set', 'CANCELLED'], 'abc\u0003', u.env);
    assert.equal(r.code, 130);
    assert.match(r.screen, /hush: cancelled/);
    assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets/CANCELLED')).status, 404);
  });

  it('login prompts for the token without echoing it, then saves the profile', async () => {
    const u = cli();
    const r = await onTty(['login', '--addr', s.url], `${s.rootToken}\r`, u.env);
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, /Hush API token \(input hidden\): /);
    assert.ok(!r.screen.includes(s.rootToken));
    assert.equal(JSON.parse(readFileSync(u.configFile, 'utf8')).profiles.default.token, s.rootToken);
  });

  it('deleting a project on a terminal asks for its name and deletes only when it matches', async () => {
    await s.api('POST', '/v1/projects', { name: 'scratch' });
    const u = cli({ HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken });
    const names = async () => (await s.api('GET', '/v1/projects')).body.projects.map((p: { name: string }) => p.name);
    const no = await onTty(['projects', 'delete', 'scratch'], 'wrong\r', u.env, 'to confirm: ');
    assert.equal(no.code, 2, no.screen);
    assert.match(no.screen, /Type "scratch" to confirm: /);
    assert.ok((await names()).includes('scratch'));
    const yes = await onTty(['projects', 'delete', 'scratch'], 'scratch\r', u.env, 'to confirm: ');
    assert.equal(yes.code, 0, yes.screen);
    assert.ok(!(await names()).includes('scratch'));
  });
});
