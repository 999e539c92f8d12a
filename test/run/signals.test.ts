import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onPty, PTY_SKIP } from '../helpers/pty.js';
import { fixture, HUSH_BIN, startHush, type RunFixture } from './util.js';

let f: RunFixture;
before(async () => {
  f = await fixture({ DB_PASSWORD: 'pg-Secret-0042' });
});
after(async () => {
  await f.close();
});

/** A child that reports every signal it gets on stdout, and exits 7 on SIGTERM. */
const REPORTER = `
for (const s of ['SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH']) process.on(s, () => process.stdout.write('got ' + s + '\\n'));
process.on('SIGTERM', () => { process.stdout.write('got SIGTERM\\n'); process.exit(7); });
process.stdout.write('ready\\n');
setInterval(() => {}, 1000);
`;

describe('hush run: signals', () => {
  test('SIGTERM sent to hush reaches the child, which traps it, writes a marker and exits 0', async () => {
    const marker = join(f.dir, 'term-marker');
    const h = startHush(
      ['run', '--', 'sh', '-c', `trap 'echo got > ${marker}; exit 0' TERM; echo ready; while :; do sleep 0.05; done`],
      f.env,
    );
    await h.waitOut('ready');
    process.kill(h.child.pid!, 'SIGTERM');
    const r = await h.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(marker, 'utf8'), 'got\n');
  });

  test("HUP, USR1, USR2, WINCH, INT and QUIT are forwarded (no terminal); hush lives on; TERM ends with the child's code", async () => {
    const h = startHush(['run', '--', process.execPath, '-e', REPORTER], f.env);
    await h.waitOut('ready');
    for (const sig of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGINT', 'SIGQUIT'] as const) {
      process.kill(h.child.pid!, sig);
      await h.waitOut(`got ${sig}\n`);
    }
    process.kill(h.child.pid!, 'SIGTERM');
    const r = await h.done;
    assert.equal(r.code, 7);
    // Each signal exactly once.
    for (const sig of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGINT', 'SIGQUIT', 'SIGTERM']) {
      assert.equal(r.out.split(`got ${sig}\n`).length - 1, 1, `${sig} delivered once: ${r.out}`);
    }
  });

  test("Ctrl-C at a terminal reaches the child once, and hush exits with the child's code", { timeout: 20_000 }, async (t) => {
    if (spawnSync('script', ['--version']).status !== 0) {
      t.skip('util-linux script(1) is not installed');
      return;
    }
    const childFile = join(f.dir, 'count-sigint.js');
    writeFileSync(
      childFile,
      `
      let n = 0;
      process.on('SIGINT', () => { n++; if (n === 1) setTimeout(() => { process.stdout.write('sigints=' + n + '\\n'); process.exit(0); }, 700); });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `,
    );
    // script(1) gives hush a pseudo-terminal whose foreground process group holds hush and its child.
    const cmd = `exec '${process.execPath}' '${HUSH_BIN}' run -- '${process.execPath}' '${childFile}'`;
    const s = spawn('script', ['-qfec', cmd, '/dev/null'], { env: f.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    s.stdout.on('data', (d) => {
      out += d;
    });
    s.stderr.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => s.on('close', (code) => r(code)));
    const deadline = Date.now() + 10_000;
    while (!out.includes('ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.ok(out.includes('ready'), `child did not start: ${out}`);
    s.stdin.write('\x03');
    const code = await exited;
    s.stdin.end();
    assert.match(out, /sigints=1\r?\n/, `the child saw Ctrl-C exactly once: ${JSON.stringify(out)}`);
    assert.equal(code, 0);
  });

  test(
    'a window resize at a terminal reaches the child once (the terminal already sent it SIGWINCH)',
    { timeout: 30_000, skip: PTY_SKIP },
    async () => {
      const childFile = join(f.dir, 'count-winch.js');
      writeFileSync(
        childFile,
        `
      let n = 0;
      process.on('SIGWINCH', () => { n++; });
      process.on('SIGINT', () => { process.stdout.write('winch=' + n + '\\n'); process.exit(0); });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `,
      );
      // A pseudo-terminal whose foreground process group holds hush and its child; resizing it signals that group.
      // Ctrl-C follows 0.8 s later: a second SIGWINCH (forwarded by hush) would have arrived by then.
      const r = await onPty(
        [process.execPath, HUSH_BIN, 'run', '--', process.execPath, childFile],
        [
          { when: 'ready', afterMs: 0, resize: [31, 101] },
          { when: 'ready', afterMs: 800, send: '\x03' },
        ],
        f.env,
      );
      assert.match(r.screen, /winch=1\r?\n/, `the child saw the resize exactly once: ${JSON.stringify(r.screen)}`);
      assert.equal(r.code, 0);
    },
  );

  test('as PID 1 (unshare --pid): signals are still forwarded, and hush exits when the child does', { timeout: 20_000 }, async (t) => {
    if (spawnSync('unshare', ['--pid', '--fork', 'true']).status !== 0) {
      t.skip('unshare --pid needs root or user namespaces');
      return;
    }
    const marker = join(f.dir, 'pid1-marker');
    // The child asks PID 1 (hush) to stop: without handlers PID 1 would ignore SIGTERM and the child would loop forever.
    const script = `echo "ppid=$PPID"; trap 'echo got > ${marker}; exit 0' TERM; kill -TERM 1; while :; do sleep 0.05; done`;
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const c = spawn('unshare', ['--pid', '--fork', '--kill-child', process.execPath, HUSH_BIN, 'run', ...args], {
          env: f.env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        c.stdout.on('data', (d) => {
          out += d;
        });
        c.stderr.on('data', (d) => {
          err += d;
        });
        const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
        c.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, out, err });
        });
      });
    const a = await run(['--', 'sh', '-c', script]);
    assert.equal(a.code, 0, a.err);
    assert.match(a.out, /^ppid=1\n/, "hush was PID 1 and the child's parent");
    assert.ok(existsSync(marker), 'the child got the SIGTERM that PID 1 received');
    const b = await run(['--', 'sh', '-c', 'exit 5']);
    assert.equal(b.code, 5, b.err);
  });
});
