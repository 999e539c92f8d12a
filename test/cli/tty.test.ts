import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HUSH_BIN } from '../helpers/cli.js';
import { startServer, tempDir, type TestServer } from '../helpers/server.js';
import { cli } from './helpers.js';

/**
 * Runs the built `hush` on a pseudo-terminal (through Python's pty module,
 * which Node lacks), typing `keys` once the screen shows `trigger`.
 * Returns everything the terminal displayed.
 */
const PTY = `
import os, pty, sys, time, select
trigger = sys.argv[1].encode(); keys = sys.argv[2].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[3], sys.argv[3:])
out = b''; sent = not keys; deadline = time.time() + 20
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try: data = os.read(fd, 65536)
        except OSError: break
        if not data: break
        out += data
    if not sent and trigger in out:
        time.sleep(0.05); os.write(fd, keys); sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;
const hasPython = spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status === 0;

function onTty(args: string[], keys: string, env: NodeJS.ProcessEnv, trigger = '(input hidden): '): Promise<{ code: number | null; screen: string }> {
  const script = join(tempDir('hush-pty-'), 'drive_tty.py');
  writeFileSync(script, PTY);
  return new Promise((resolve) => {
    const child = spawn('python3', [script, trigger, keys, process.execPath, HUSH_BIN, ...args], { env: { PATH: process.env.PATH, TERM: 'dumb', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let screen = '';
    child.stdout.on('data', (d) => { screen += d; });
    child.on('close', (code) => resolve({ code, screen }));
  });
}

describe('hush on a terminal', { skip: !hasPython && 'python3 with pty is needed to drive a terminal' }, () => {
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
