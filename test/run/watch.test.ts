import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { fixture, setSecret, sleep, startHush, type RunFixture } from './util.js';

let f: RunFixture;
before(async () => { f = await fixture({ FLAG: 'one', OTHER: 'x' }); });
after(async () => { await f.close(); });

/** Prints its FLAG; on SIGTERM exits with a code that names the value it had. */
const CHILD = `
const codes = { one: 11, two: 22, three: 33 };
// The handler goes in before the value is printed: a test that signals as soon as it sees the value must not race it.
process.on('SIGTERM', () => process.exit(codes[process.env.FLAG] ?? 99));
process.stdout.write('value=' + process.env.FLAG + '\\n');
setInterval(() => {}, 1000);
`;

describe('hush run --watch', () => {
  test('a change restarts the child with the new value; stopping hush gives the last child\'s code', { timeout: 30_000 }, async () => {
    const h = startHush(['run', '--watch', '--only', 'FLAG', '--', process.execPath, '-e', CHILD], f.env);
    await h.waitOut('value=one\n');
    await sleep(300); // parked in a long-poll
    const changed = Date.now();
    await setSecret(f, 'FLAG', 'two');
    await h.waitOut('value=two\n');
    assert.ok(Date.now() - changed < 5000, 'the long-poll notices the change promptly');
    assert.match(h.stderr(), /hush: app\/prod changed \(revision \d+\); restarting/);
    // A change outside --only does not restart the child.
    await setSecret(f, 'OTHER', 'y');
    await sleep(800);
    assert.equal(h.stdout().split('value=').length - 1, 2, 'no restart for a name outside --only');
    process.kill(h.child.pid!, 'SIGTERM');
    const r = await h.done;
    assert.equal(r.code, 22, r.stderr);
    assert.equal(r.out, 'value=one\nvalue=two\n');
  });

  test('a child that ignores SIGTERM is killed after --watch-grace and restarted', { timeout: 30_000 }, async () => {
    await setSecret(f, 'FLAG', 'one');
    const stubborn = `process.stdout.write('value=' + process.env.FLAG + '\\n'); process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);`;
    const h = startHush(['run', '--watch', '--watch-grace', '300ms', '--', process.execPath, '-e', stubborn], f.env);
    await h.waitOut('value=one\n');
    await sleep(300);
    await setSecret(f, 'FLAG', 'three');
    await h.waitOut('value=three\n');
    assert.match(h.stderr(), /did not exit within 300 ms of SIGTERM; sending SIGKILL/);
    // The child ignores SIGTERM, so end the whole process group.
    process.kill(-h.child.pid!, 'SIGKILL');
    await h.done;
  });

  test('if the child exits by itself, hush run exits with its code (no restart)', async () => {
    const h = startHush(['run', '--watch', '--', 'sh', '-c', 'exit 4'], f.env);
    const r = await h.done;
    assert.equal(r.code, 4);
  });

  test('the watch survives a network outage: it backs off, reconnects, and still sees the next change', { timeout: 40_000 }, async () => {
    // A TCP proxy in front of the server stands in for the network: cutting it resets every connection.
    const target = new URL(f.server.url);
    const sockets = new Set<Socket>();
    let down = false;
    const proxy = createServer((client) => {
      if (down) { client.destroy(); return; }
      const upstream = connect(Number(target.port), target.hostname);
      for (const s of [client, upstream]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => undefined); }
      client.pipe(upstream).pipe(client);
    });
    const listen = () => new Promise<void>((r) => proxy.listen(port, '127.0.0.1', () => r()));
    let port = 0;
    await listen();
    port = (proxy.address() as AddressInfo).port;
    try {
      await setSecret(f, 'FLAG', 'one');
      const h = startHush(['run', '--watch', '--', process.execPath, '-e', CHILD], { ...f.env, HUSH_ADDR: `http://127.0.0.1:${port}` });
      await h.waitOut('value=one\n');
      await sleep(300);
      // Outage: refuse new connections and reset the long-poll in flight.
      down = true;
      await new Promise<void>((r) => { proxy.close(() => r()); for (const s of sockets) s.destroy(); });
      const deadline = Date.now() + 10_000;
      while (!/watch: .*retrying with backoff/.test(h.stderr()) && Date.now() < deadline) await sleep(50);
      assert.match(h.stderr(), /watch: cannot reach the Hush server .*retrying with backoff, the command keeps running/, h.stderr());
      await setSecret(f, 'FLAG', 'two'); // changed while hush cannot see the server
      await sleep(1500);
      assert.equal(h.stdout(), 'value=one\n', h.stderr());
      down = false;
      await listen();
      await h.waitOut('value=two\n', 20_000);
      assert.match(h.stderr(), /reconnected/);
      process.kill(h.child.pid!, 'SIGTERM');
      const r = await h.done;
      assert.equal(r.code, 22, r.stderr);
    } finally {
      for (const s of sockets) s.destroy();
      proxy.close();
    }
  });
});
