/**
 * Finding 4 of issue 21: the command `hush run` starts must not be able to
 * read hush's token from /proc/$PPID/environ. Run as a non-root user
 * (nobody), exactly as the attack was made: as root, /proc is readable
 * anyway, and proves nothing.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { NOBODY, NOBODY_CLI, NOBODY_SKIP } from '../helpers/preconditions.js';
import { fixture, type RunFixture } from './util.js';
import { runProgram } from '../client/support.js';

/** hush run as `nobody`, with the token in HUSH_TOKEN; the command prints what it finds of it in its parent's environ. */
async function runAsNobody(
  f: RunFixture,
  command: string,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runProgram(
    process.execPath,
    [NOBODY_CLI, 'run', '--', 'sh', '-c', command],
    { ...f.env, ...extraEnv },
    { uid: NOBODY, gid: NOBODY },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("hush run: the command cannot read hush's credentials from its parent (finding 4)", { skip: NOBODY_SKIP }, () => {
  let f: RunFixture;
  before(async () => {
    f = await fixture({ APP_SECRET: 'the-value' });
    chmodSync(f.dir, 0o777);
  });
  after(async () => {
    await f.close();
  });

  it('as uid 65534: /proc/$PPID/environ holds no HUSH_TOKEN value', async () => {
    const r = await runAsNobody(f, 'id -u; tr "\\0" "\\n" </proc/$PPID/environ | grep ^HUSH_; echo "APP_SECRET=$APP_SECRET"');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], String(NOBODY), 'the command ran as nobody');
    assert.ok(!r.stdout.includes(f.token), `the token was readable: ${r.stdout.replace(f.token, '[TOKEN]')}`);
    assert.ok(!r.stdout.includes(f.token.slice(5, 25)), 'not even part of it');
    assert.ok(lines.includes('HUSH_TOKEN='), `the variable is there, blanked: ${JSON.stringify(lines)}`);
    assert.ok(lines.includes('HUSH_ADDR=' + f.env.HUSH_ADDR), 'other variables are left as they were');
    assert.ok(lines.includes('APP_SECRET=the-value'), 'and the command got its secrets');
    assert.equal(r.stderr, '', 'no warning: the blanking worked');
  });

  it('a JWT in HUSH_JWT is blanked too', async () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA';
    const r = await runAsNobody(f, 'tr "\\0" "\\n" </proc/$PPID/environ | grep ^HUSH_JWT', { HUSH_JWT: jwt });
    // Without HUSH_ROLE the JWT is not used (the token is), but it sat in hush's environment all the same.
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(jwt) && !r.stdout.includes('c2lnbmF0dXJl'), r.stdout);
    assert.deepEqual(r.stdout.split('\n').filter(Boolean), ['HUSH_JWT=']);
  });
});
